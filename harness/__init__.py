"""kevolve's search and evaluation harness: knows nothing of GitHub, HTTP or git."""
