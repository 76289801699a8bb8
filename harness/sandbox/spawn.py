"""Child processes that can always be killed: own process group, clean environment, scratch dir.

Standard library only, so the torch-free orchestrator and the judge share it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from kevolve.harness.sandbox import tether
from kevolve.harness.sandbox.confine import identity

# The only variables a child inherits; everything else (tokens, keys, cloud credentials) stays
# behind. Toolkit locations are kept so CUDA and Triton still find their compilers.
PASSTHROUGH = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_HOME",
    "CUDA_PATH",
    "LD_LIBRARY_PATH",
    "TRITON_PTXAS_PATH",
    "TRITON_CUOBJDUMP_PATH",
    "TRITON_NVDISASM_PATH",
    "TRITON_LIBCUDA_PATH",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "NCCL_NVLS_ENABLE",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST",
    "NVSHMEM_DISABLE_NVLS",
)


@dataclass(frozen=True)
class Limits:
    """Resource limits for a confined child; None leaves a limit as it is."""

    address_space_bytes: int | None = None  # only without CUDA: CUDA reserves huge address space
    cpu_seconds: int | None = None
    file_bytes: int | None = 256 * 2**20
    open_files: int | None = 1024
    isolate_network: bool = True


@dataclass
class Child:
    """A running child in its own session, with its stderr going to a log file."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    extra_fds: list[int] = field(default_factory=list)

    @property
    def stdin(self) -> IO[bytes]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    def kill(self) -> None:
        """SIGKILL the child's whole process group and reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def log_tail(self, limit: int = 3000) -> str:
        """The end of what the child wrote to stdout and stderr."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-limit:].decode(errors="replace")

    def exit_description(self) -> str:
        """How the child ended, in words ("killed by SIGSEGV", "exit status 1")."""
        code = self.proc.poll()
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"


def clean_env(extra: Mapping[str, str], source: Mapping[str, str]) -> dict[str, str]:
    """The passthrough variables of `source` plus `extra`; nothing else."""
    env = {k: source[k] for k in PASSTHROUGH if k in source}
    env.update(extra)
    return env


def scratch_dir(prefix: str) -> Path:
    """A fresh private directory for one child."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def spawn(
    module: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    limits: Limits | None,
    pass_fds: Sequence[int] = (),
    prefix: Sequence[str] = (),
    user: str | None = None,
) -> Child:
    """Start `python -m module args` in a new session, confined by `limits` if given.

    `prefix` (bubblewrap, sudo) goes before the command; `user` switches to that OS user (we are
    root). Behind a prefix the jail's parent is not us, so the prefix must bind the child's life
    to ours (bubblewrap's --die-with-parent); the tether binds the prefix to us from before it
    starts, and takes it and what it started along when we die.
    """
    argv = [sys.executable, "-m", module, *args]
    if limits is not None:
        parent = None if prefix else os.getpid()
        spec = json.dumps({**asdict(limits), "parent_pid": parent})
        argv = [sys.executable, "-m", "kevolve.harness.sandbox.jail", spec, "--", *argv]
    if prefix:
        argv = [*tether.command(os.getpid()), *prefix, *argv]
    uid, gid, groups = identity(user)
    log_path = cwd / f"{module.rsplit('.', 1)[-1]}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            pass_fds=tuple(pass_fds),
            start_new_session=True,
            close_fds=True,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
    return Child(proc, log_path)


def harness_dir() -> Path:
    """The folder of this `kevolve.harness` package: a jail binds it, so the judge that this
    interpreter starts imports this same code."""
    return Path(__file__).resolve().parent.parent
