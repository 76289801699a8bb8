"""One module per `kevolve` subcommand, each with `add_parser` and `run`."""
