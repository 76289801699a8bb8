"""`Confinement`: as whom and in what jail repo code and candidates run (DESIGN.md §7).

The judge imports repo code (reference, input maker, the current kernel) and starts the worker
that imports the candidate; both are confined by what this says. With bubblewrap the judge gets
its own pid, mount, network, IPC and user namespaces and sees only an allow-list of read-only
binds plus its scratch directory and its repository's compile cache: other processes'
`/proc/<pid>/environ` and the bot's files do not exist there. Without bubblewrap it falls back to
the home-made jail (`harness.sandbox.jail`: limits and a network namespace) plus the separate OS
user. Standard library only.
"""

from __future__ import annotations

import functools
import glob
import os
import pwd
import site
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# The system's own directories a Python and a C compiler (Triton's launcher stubs) need.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",  # Debian's /usr/bin/cc and friends point through here
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
)
# Variables that name toolkit directories or files a GPU judge reads.
_TOOLKIT_VARS = (
    "CUDA_HOME",
    "CUDA_PATH",
    "TRITON_PTXAS_PATH",
    "TRITON_CUOBJDUMP_PATH",
    "TRITON_NVDISASM_PATH",
    "TRITON_LIBCUDA_PATH",
)
_PROBE_S = 30.0  # seconds for bubblewrap's trial run
_FALLBACK = " (resource limits, own network namespace, no bubblewrap) "


@dataclass(frozen=True)
class Confinement:
    """The OS user and the bubblewrap jail for a judge; the defaults confine nothing extra."""

    user: str | None = None  # run the judge as this OS user (needs root, or sudo -n); None: as us
    bwrap: str | None = None  # bubblewrap's path; None: the home-made jail alone


@dataclass(frozen=True)
class Mount:
    """One entry of the jail's file system, applied in order: read-only, read-write, or empty."""

    kind: Literal["ro", "rw", "tmpfs"]
    path: Path


@dataclass(frozen=True)
class Launch:
    """How to start one confined judge: the command prefix, the user switch, what to tell."""

    prefix: tuple[str, ...]  # bubblewrap and/or sudo before the jail's own command
    user: str | None  # Popen switches to this user (we are root); None: no switch
    isolate_network: bool  # whether the home-made jail must cut the network itself
    notes: tuple[str, ...]  # for the verdict: how the judge was confined


def launch(
    confinement: Confinement,
    mounts: Sequence[Mount],
    env: Mapping[str, str],
    cwd: Path,
    keep_fds: Sequence[int] = (),
) -> Launch:
    """How to start a judge under `confinement`, seeing only `mounts`, with exactly `env`."""
    user, sudo = _switch(confinement.user, keep_fds)
    who = f"as user {confinement.user}" if user or sudo else f"as user {_me()}"
    if confinement.bwrap is None:
        problem: str | None = "no bubblewrap (bwrap) on this host"
    else:
        problem = bwrap_problem(confinement.bwrap, confinement.user)
    if problem is not None or confinement.bwrap is None:
        note = f"{problem}: the judge ran in the fallback jail{_FALLBACK}{who}"
        return Launch(tuple(sudo), user, True, (note,))
    argv = [*sudo, confinement.bwrap, *bwrap_arguments(mounts, env, cwd)]
    note = (
        f"confined by bubblewrap {who}: own pid, mount, IPC and user namespaces, "
        f"network isolated (no interfaces but loopback), read-only binds of code and the problem"
    )
    return Launch(tuple(argv), user, False, (note,))


def bwrap_arguments(mounts: Sequence[Mount], env: Mapping[str, str], cwd: Path) -> list[str]:
    """bubblewrap's arguments up to and including `--`: namespaces, binds, /proc, /dev, env."""
    args = ["--unshare-all", "--die-with-parent", "--new-session"]
    for name in _SYSTEM_DIRS:
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    args += [a for f in _SYSTEM_FILES if os.path.exists(f) for a in ("--ro-bind", f, f)]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    devices = sorted(glob.glob("/dev/nvidia*"))
    for node in devices:  # on GPU hosts: the driver's device nodes, and /sys it reads
        args += ["--dev-bind", node, node]
    if devices:
        args += ["--ro-bind", "/sys", "/sys"]
    bound = [d for d in _SYSTEM_DIRS if os.path.isdir(d)]  # a linked one too: /lib/x is there
    for mount in [*python_mounts(), *toolkit_mounts(env), *mounts]:
        path = str(mount.path)
        if mount.kind == "tmpfs":
            args += ["--tmpfs", path]
        elif mount.kind == "rw" and os.path.exists(path):
            args += ["--bind", path, path]
        elif mount.kind == "ro" and os.path.exists(path):
            args += _read_only(path, bound)
    args += ["--chdir", str(cwd), "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return [*args, "--"]


def _read_only(path: str, bound: list[str]) -> list[str]:
    """Bind `path` read-only where it really is (a link there too), unless already inside."""
    real = os.path.realpath(path)
    args = []
    if not any(real == b or real.startswith(b.rstrip("/") + "/") for b in bound):
        args += ["--ro-bind", real, real]
        bound.append(real)
    if real != path and not any(path.startswith(b.rstrip("/") + "/") for b in bound):
        args += ["--symlink", real, path]  # e.g. CUDA_HOME=/opt/cuda -> /opt/cuda-13.0
    return args


def python_mounts() -> list[Mount]:
    """Read-only binds of this Python: the interpreter's prefixes and its site-packages."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.update(site.getsitepackages())
    paths.add(str(Path(os.path.realpath(sys.executable)).parent.parent))
    return [Mount("ro", Path(p)) for p in sorted(paths)]


def toolkit_mounts(env: Mapping[str, str]) -> list[Mount]:
    """Read-only binds of the CUDA toolkit and libraries the judge's environment names."""
    paths = [env[v] for v in _TOOLKIT_VARS if env.get(v)]
    paths += [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    return [Mount("ro", Path(p)) for p in paths if os.path.isabs(p)]


@functools.lru_cache(maxsize=8)
def bwrap_problem(bwrap: str, user: str | None) -> str | None:
    """Why bubblewrap at `bwrap` cannot confine a judge here (as `user`); None when it can."""
    if not os.access(bwrap, os.X_OK):
        return f"bubblewrap was not found at {bwrap}"
    switch, sudo = _switch(user)
    trial = [*sudo, bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    try:
        uid, gid, groups = identity(switch)
        done = subprocess.run(
            trial,
            capture_output=True,
            text=True,
            timeout=_PROBE_S,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap at {bwrap} cannot run here ({exc})"
    if done.returncode != 0:
        why = (done.stderr.strip() or f"exit status {done.returncode}")[-300:]
        return f"bubblewrap at {bwrap} cannot run here ({why})"
    return None


def hand_over(paths: Iterable[Path], user: str) -> None:
    """Let `user` write these files and directories of ours: its own when we are root, else
    open to every user (sudo cannot give files away)."""
    if user == _me():
        return
    uid, gid, _ = identity(user)
    for path in paths:
        if os.geteuid() == 0:
            os.chown(path, uid or 0, gid or 0, follow_symlinks=False)
        elif path.is_dir() and not path.is_symlink():
            path.chmod(0o777)


def identity(user: str | None) -> tuple[int | None, int | None, list[int] | None]:
    """Popen's user, group and extra groups that start a child as `user` with its own group
    alone (all None: as us)."""
    if user is None:
        return None, None, None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid, []


def _switch(user: str | None, keep_fds: Sequence[int] = ()) -> tuple[str | None, list[str]]:
    """How to become `user`: (Popen's user, as root) or a sudo prefix (not root); none if us.

    sudo closes every descriptor above 2 unless told (`-C`, which needs `Defaults
    closefrom_override` in sudoers for the bot's user) to keep those `keep_fds` name.
    """
    if user is None or user == _me():
        return None, []
    if os.geteuid() == 0:
        return user, []
    keep = ["-C", str(max(keep_fds) + 1)] if keep_fds else []
    return None, ["sudo", "-n", *keep, "-u", user, "--"]


def _me() -> str:
    """This process's user name (its uid when it has none)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())
