"""The `kevolve` command (`cli`) and one module per subcommand, each with `add_parser` and `run`."""
