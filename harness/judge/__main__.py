"""`python -m kevolve.harness.judge RESULT_FD`: one request on stdin, one evaluation out."""

from kevolve.harness.judge.verdict import main

main()
