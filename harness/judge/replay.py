"""`python -m kevolve.harness.judge.replay REQUEST`: one call of a candidate, for a profiler.

Run under `ncu --profile-from-start off` (see `kevolve.harness.profile`): the candidate is loaded
and called twice first, so Triton's compiles and autotuning stay outside the profiled range, then
called once between cudaProfilerStart and cudaProfilerStop. It reports nothing itself: what comes
back is what the profiler measured, and a candidate that already passed the judge is the only
one replayed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from kevolve.harness.judge.inputs import InputMaker, Trial
from kevolve.harness.judge.subject import Subject
from kevolve.harness.spec.problem import problem_from_dict

WARMUP_CALLS = 2
SEED = 1  # any fixed seed: a profile is about the kernel's behaviour, not particular values


def main() -> None:
    """Replay the request named on the command line."""
    req = json.loads(Path(sys.argv[1]).read_text())
    problem = problem_from_dict(req["problem"])
    device = torch.device(req["device"])
    cuda = device.type == "cuda"  # on a CPU (tests) the same steps run, with nothing to profile
    if cuda:
        if device.index is None:  # "cuda": the first visible GPU, as the judge takes it
            device = torch.device("cuda", 0)
        torch.cuda.set_device(device)
    path = Path(req["candidate"])
    subject = Subject(problem, path, problem.entry, "_kevolve_candidate", device, 0)
    shape, dtype = tuple(req["shape"]), req["dtype"]
    inputs = InputMaker(problem, device)(shape, dtype, Trial(SEED, "normal"))
    subject.prepare(dtype)
    for _ in range(WARMUP_CALLS):
        subject(inputs, dtype)
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.profiler.start()  # type: ignore[no-untyped-call]
    subject(inputs, dtype)
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.profiler.stop()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
