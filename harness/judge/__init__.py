"""The judge: the trusted process that checks and times one candidate against the reference.

`python -m kevolve.harness.judge RESULT_FD` runs it (see `verdict`); the candidate itself runs
only in the confined worker (`kevolve.harness.judge.worker`) that the judge drives.
"""
