"""Confine this process, then exec the real command: `python -m kevolve.harness.sandbox.jail
LIMITS -- CMD...`.

Limits are applied here, before exec, so the confined program (and the candidate it imports)
starts with them already in force. Standard library only: this runs before torch is imported.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


def apply_limits(limits: dict[str, Any]) -> None:
    """Set resource limits; a limit of None is left as it is."""
    table = {
        "address_space_bytes": resource.RLIMIT_AS,
        "cpu_seconds": resource.RLIMIT_CPU,
        "file_bytes": resource.RLIMIT_FSIZE,
        "open_files": resource.RLIMIT_NOFILE,
    }
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for key, which in table.items():
        value = limits.get(key)
        if value is not None:
            _, hard = resource.getrlimit(which)
            cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (cap, cap))


def die_with_parent(parent: int | None, signum: int = signal.SIGKILL) -> None:
    """Ask the kernel to send us `signum` (SIGKILL: to kill us) when the process that started us
    dies, and exit at once if it has died already (`parent` is no longer our parent)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # the parent died before the request to outlive it took effect


def non_dumpable() -> None:
    """Make this process's memory and `/proc/<pid>/environ` unreadable to others of its user.

    The kernel resets this at exec, so the children it starts are dumpable again.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def isolate_network() -> str:
    """Move into a fresh network namespace (loopback only); say what was achieved."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) == 0:
        return "network:isolated"
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
        _map_ids(uid, gid)
        return "network:isolated(userns)"
    return f"network:shared({os.strerror(ctypes.get_errno())})"


def _map_ids(uid: int, gid: int) -> None:
    """Keep our own uid/gid inside a new user namespace so file access is unchanged."""
    for path, text in (
        ("/proc/self/setgroups", "deny"),
        ("/proc/self/uid_map", f"{uid} {uid} 1"),
        ("/proc/self/gid_map", f"{gid} {gid} 1"),
    ):
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError:
            return


def main() -> None:
    """Apply the limits given as JSON in argv[1], then exec argv[3:] (argv[2] is '--')."""
    limits = json.loads(sys.argv[1])
    command = sys.argv[3:]
    die_with_parent(limits.get("parent_pid"))
    state = isolate_network() if limits.get("isolate_network", True) else "network:shared"
    apply_limits(limits)
    os.environ["KEVOLVE_SANDBOX"] = state
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
