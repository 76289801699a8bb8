"""How fast a worker's reply crosses to the judge: one blob of `--mib` MiB through a pipe between
two processes, framed as the worker frames it, with the pipe's default buffer and widened
(`channel.widen`, 1 MiB), alternating, `--reps` times each.

    python3 bench/scale/pipe.py [--mib 1024] [--reps 5] [--out pipe.json]

CPU only: the judge's checks at KernelBench's sizes spend most of their time here (a 6 GiB
output per reply), so the figure worth comparing is this one on the GPU host itself.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import statistics
import time

from kevolve.harness.sandbox import channel


def crossing_s(mib: int, widened: bool) -> float:
    """Seconds from the reader's first wait to the whole blob in its buffer."""
    read_fd, write_fd = os.pipe()
    if widened:
        channel.widen(read_fd)
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        blob = bytearray(mib * 2**20)
        with os.fdopen(write_fd, "wb") as writer:
            channel.send(writer, {"op": "run"}, [memoryview(blob)])
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        start = time.perf_counter()
        _, blobs = channel.recv(reader)
        took = time.perf_counter() - start
    os.waitpid(pid, 0)
    assert len(blobs[0]) == mib * 2**20
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"default": [], "widened": []}
    for _ in range(args.reps):
        for kind in times:
            times[kind].append(crossing_s(args.mib, kind == "widened"))
    probe_r, probe_w = os.pipe()
    default_bytes = fcntl.fcntl(probe_r, fcntl.F_GETPIPE_SZ)
    os.close(probe_r)
    os.close(probe_w)
    record = {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mib": args.mib,
        "pipe_bytes": {"default": default_bytes, "widened": channel.PIPE_BYTES},
        "seconds": times,
        "median_gb_s": {
            kind: round(args.mib * 2**20 / statistics.median(ts) / 1e9, 3)
            for kind, ts in times.items()
        },
    }
    print(json.dumps(record["median_gb_s"]))
    if args.out:
        with open(args.out, "w") as out:
            json.dump(record, out, indent=1)


if __name__ == "__main__":
    main()
