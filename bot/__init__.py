"""kevolve's GitHub App service and the `kevolve` command line."""
