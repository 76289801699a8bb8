"""harness.sandbox.confine in this process: how a judge is launched for each confinement, the
jail's exact arguments (namespaces, binds, environment), bubblewrap's trial run, and handing
files over to the job user. (test_confine.py runs real judges in the jail.)"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kevolve.harness.sandbox import confine
from kevolve.harness.sandbox.confine import (
    Confinement,
    Launch,
    Mount,
    bwrap_arguments,
    bwrap_problem,
    hand_over,
    identity,
    launch,
    python_mounts,
    toolkit_mounts,
)

from tests.jobuser import ensure_job_user, reachable_dir

BWRAP = shutil.which("bwrap")
FALLBACK = (
    "the judge ran in the fallback jail (resource limits, own network namespace, no bubblewrap)"
)
CWD = Path("/tmp/judge")


@pytest.fixture(scope="module")
def job_user() -> str:
    return ensure_job_user()


@pytest.fixture(autouse=True)
def fresh_probe() -> Iterator[None]:
    """bubblewrap's trial run is remembered per path and user: each test tries afresh."""
    bwrap_problem.cache_clear()
    yield
    bwrap_problem.cache_clear()


def _after(args: list[str], flag: str) -> list[tuple[str, ...]]:
    """The operands of each `flag` in `args` (two for binds and links, one for the rest)."""
    width = 2 if flag in ("--ro-bind", "--bind", "--symlink", "--dev-bind", "--setenv") else 1
    return [tuple(args[i + 1 : i + 1 + width]) for i, a in enumerate(args) if a == flag]


def test_identity_is_the_users_ids_with_its_own_group_alone(job_user: str) -> None:
    entry = pwd.getpwnam(job_user)
    assert identity(job_user) == (entry.pw_uid, entry.pw_gid, [])
    assert identity(None) == (None, None, None)


def test_without_bubblewrap_the_judge_runs_in_the_fallback_jail_as_the_job_user(
    job_user: str,
) -> None:
    assert launch(Confinement(user=job_user), [], {}, CWD) == Launch(
        (), job_user, True, (f"no bubblewrap (bwrap) on this host: {FALLBACK} as user {job_user}",)
    )
    assert launch(Confinement(user="root"), [], {}, CWD) == Launch(
        (), None, True, (f"no bubblewrap (bwrap) on this host: {FALLBACK} as user root",)
    )
    missing = launch(Confinement(bwrap="/nonexistent/bwrap"), [], {}, CWD)
    assert missing.notes == (
        f"bubblewrap was not found at /nonexistent/bwrap: {FALLBACK} as user root",
    )


@pytest.mark.skipif(BWRAP is None, reason="needs bubblewrap")
def test_with_bubblewrap_the_judge_starts_inside_it(job_user: str) -> None:
    assert BWRAP is not None
    env = {"PATH": "/usr/bin", "KEVOLVE_X": "1"}
    started = launch(Confinement(user=job_user, bwrap=BWRAP), [], env, CWD)
    assert started == Launch(
        (BWRAP, *bwrap_arguments([], env, CWD)),
        job_user,
        False,
        (
            f"confined by bubblewrap as user {job_user}: own pid, mount, IPC and user namespaces, "
            "network isolated (no interfaces but loopback), read-only binds of code and the "
            "problem",
        ),
    )


def test_not_being_root_the_switch_is_sudo_keeping_the_channels(
    job_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 4321)  # a bot user with no name, not root
    started = launch(Confinement(user=job_user), [], {}, CWD, keep_fds=(5, 9))
    assert started.prefix == ("sudo", "-n", "-C", "10", "-u", job_user, "--")
    assert started.user is None and started.notes[0].endswith(f"as user {job_user}")
    plain = launch(Confinement(user=job_user), [], {}, CWD)
    assert plain.prefix == ("sudo", "-n", "-u", job_user, "--")
    assert launch(Confinement(), [], {}, CWD).notes[0].endswith("as user 4321")


def test_bubblewrap_that_cannot_run_is_named_with_why(tmp_path: Path) -> None:
    assert bwrap_problem(str(tmp_path / "none"), None) == (
        f"bubblewrap was not found at {tmp_path / 'none'}"
    )
    failing = tmp_path / "bwrap"
    failing.write_text("#!/bin/sh\necho 'no user namespaces' >&2\nexit 3\n")
    failing.chmod(0o755)
    assert bwrap_problem(str(failing), None) == (
        f"bubblewrap at {failing} cannot run here (no user namespaces)"
    )
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\nexit 4\n")
    silent.chmod(0o755)
    assert bwrap_problem(str(silent), None) == (
        f"bubblewrap at {silent} cannot run here (exit status 4)"
    )
    chatty = tmp_path / "chatty"
    chatty.write_text("#!/bin/sh\nprintf 'x%.0s' $(seq 400) >&2\necho END >&2\nexit 1\n")
    chatty.chmod(0o755)
    assert bwrap_problem(str(chatty), None) == (
        f"bubblewrap at {chatty} cannot run here ({'x' * 297}END)"
    )


def test_a_trial_run_that_hangs_is_a_problem_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = tmp_path / "slow"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setattr(confine, "_PROBE_S", 0.3)
    problem = bwrap_problem(str(slow), None)
    assert problem is not None and problem.startswith(f"bubblewrap at {slow} cannot run here (")
    assert "timed out after 0.3 seconds" in problem


@pytest.mark.skipif(BWRAP is None, reason="needs bubblewrap")
def test_bubblewrap_that_runs_is_no_problem() -> None:
    assert BWRAP is not None
    assert bwrap_problem(BWRAP, None) is None


def test_bubblewraps_trial_runs_as_the_judges_user(job_user: str) -> None:
    with reachable_dir("kevolve-confine-trial-") as place:
        seen = place / "seen"
        seen.mkdir(mode=0o777)
        seen.chmod(0o777)
        fake = place / "bwrap"
        fake.write_text(f'#!/bin/sh\nid -u > {seen}/uid\necho "$@" > {seen}/args\n')
        fake.chmod(0o755)
        assert bwrap_problem(str(fake), job_user) is None
        uid, args = (seen / "uid").read_text(), (seen / "args").read_text()
    assert int(uid) == pwd.getpwnam(job_user).pw_uid
    assert args.split() == [
        "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"
    ]  # fmt: skip


def test_the_jail_shares_nothing_and_dies_with_its_parent() -> None:
    args = bwrap_arguments([], {}, CWD)
    assert args[:3] == ["--unshare-all", "--die-with-parent", "--new-session"]
    assert args[-4:] == ["--chdir", str(CWD), "--clearenv", "--"]
    at = args.index("--proc")
    assert args[at : at + 6] == ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]


def test_the_system_is_bound_read_only_as_it_is_laid_out() -> None:
    args = bwrap_arguments([], {}, CWD)
    for name in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            assert (os.readlink(name), name) in _after(args, "--symlink")
        elif os.path.isdir(name):
            assert (name, name) in _after(args, "--ro-bind")
        else:
            assert not any(name in pair for pair in _after(args, "--ro-bind"))
    files = ("/etc/ld.so.cache", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf")
    for name in files:
        assert ((name, name) in _after(args, "--ro-bind")) == os.path.exists(name)
    assert ("/etc/shadow", "/etc/shadow") not in _after(args, "--ro-bind")


def test_the_environment_is_exactly_the_one_given() -> None:
    args = bwrap_arguments([], {"A": "1", "PATH": "/usr/bin"}, CWD)
    assert _after(args, "--setenv") == [("A", "1"), ("PATH", "/usr/bin")]
    assert args.index("--clearenv") < args.index("--setenv")


def test_mounts_are_bound_by_kind_when_they_exist(tmp_path: Path) -> None:
    scratch, repo, real = tmp_path / "scratch", tmp_path / "repo", tmp_path / "cuda-13.0"
    for folder in (scratch, repo, real):
        folder.mkdir()
    link = tmp_path / "cuda"
    link.symlink_to(real)
    mounts = [
        Mount("tmpfs", Path("/tmp/cache")),
        Mount("rw", scratch),
        Mount("rw", tmp_path / "missing-rw"),
        Mount("ro", repo),
        Mount("ro", tmp_path / "missing-ro"),
        Mount("ro", Path("/usr/share")),  # inside /usr, bound already
        Mount("ro", link),
        Mount("ro", real),  # bound already, through the link
    ]
    args = bwrap_arguments(mounts, {}, CWD)
    assert args[:3] == ["--unshare-all", "--die-with-parent", "--new-session"]
    assert ("/tmp/cache",) in _after(args, "--tmpfs")
    assert _after(args, "--bind") == [(str(scratch), str(scratch))]
    ro = _after(args, "--ro-bind")
    assert (str(repo), str(repo)) in ro and (str(real), str(real)) in ro
    assert ro.count((str(real), str(real))) == 1
    assert not any("missing" in a for pair in ro for a in pair)
    assert ("/usr/share", "/usr/share") not in ro
    assert (str(real), str(link)) in _after(args, "--symlink")


def test_this_python_is_bound_read_only() -> None:
    paths = {str(m.path) for m in python_mounts()}
    assert {m.kind for m in python_mounts()} == {"ro"}
    assert {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix} <= paths
    assert str(Path(os.path.realpath(sys.executable)).parent.parent) in paths
    ro = _after(bwrap_arguments([], {}, CWD), "--ro-bind")
    real = os.path.realpath(sys.prefix)
    assert real.startswith("/usr/") or (real, real) in ro


def test_the_toolkit_the_environment_names_is_bound_read_only() -> None:
    env = {
        "CUDA_HOME": "/opt/cuda",
        "TRITON_PTXAS_PATH": "/opt/cuda/bin/ptxas",
        "CUDA_PATH": "",
        "LD_LIBRARY_PATH": "/opt/lib:relative/lib::/usr/local/lib",
    }
    assert toolkit_mounts(env) == [
        Mount("ro", Path("/opt/cuda")),
        Mount("ro", Path("/opt/cuda/bin/ptxas")),
        Mount("ro", Path("/opt/lib")),
        Mount("ro", Path("/usr/local/lib")),
    ]
    assert toolkit_mounts({}) == []


def test_files_are_handed_to_the_job_user_and_not_through_links(
    tmp_path: Path, job_user: str
) -> None:
    entry = pwd.getpwnam(job_user)
    folder, file, target = tmp_path / "work", tmp_path / "state.sqlite", tmp_path / "target"
    folder.mkdir()
    file.write_text("")
    target.write_text("")
    link = tmp_path / "link"
    link.symlink_to(target)
    hand_over([folder, file, link], job_user)
    for path in (folder, file):
        assert (path.stat().st_uid, path.stat().st_gid) == (entry.pw_uid, entry.pw_gid)
    assert link.lstat().st_uid == entry.pw_uid and target.stat().st_uid == os.geteuid()
    mine = tmp_path / "mine"
    mine.write_text("")
    hand_over([mine], "root")  # to ourselves: nothing to do
    assert mine.stat().st_uid == os.geteuid()


def test_not_being_root_folders_are_opened_to_all_and_files_left_alone(
    tmp_path: Path, job_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, file, inner = tmp_path / "work", tmp_path / "state.sqlite", tmp_path / "inner"
    folder.mkdir(mode=0o700)
    inner.mkdir(mode=0o700)
    file.write_text("")
    file.chmod(0o600)
    link = tmp_path / "link"
    link.symlink_to(inner)
    monkeypatch.setattr(os, "geteuid", lambda: 4321)
    hand_over([folder, file, link], job_user)
    modes = [p.stat().st_mode & 0o777 for p in (folder, file, inner)]
    assert modes == [0o777, 0o600, 0o700]


def test_bubblewrap_is_tried_as_the_judges_user(
    job_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(confine, "bwrap_problem", lambda bwrap, user: f"{bwrap} refuses {user}")
    started = launch(Confinement(user=job_user, bwrap="/opt/bwrap"), [], {}, CWD)
    assert started.notes == (f"/opt/bwrap refuses {job_user}: {FALLBACK} as user {job_user}",)


def test_on_a_gpu_host_the_driver_nodes_and_sys_are_in_the_jail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nodes = ["/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia-uvm"]
    found = {"/dev/nvidia*": nodes}
    monkeypatch.setattr(glob, "glob", lambda pattern: list(found.get(pattern, [])))
    args = bwrap_arguments([], {}, CWD)
    assert args[:3] == ["--unshare-all", "--die-with-parent", "--new-session"]
    assert _after(args, "--dev-bind") == [(n, n) for n in sorted(nodes)]
    assert ("/sys", "/sys") in _after(args, "--ro-bind")
    assert args.index("--dev") < args.index("--dev-bind") < args.index("/sys")
    found.clear()  # a host without the driver: no device nodes, no /sys
    bare = bwrap_arguments([], {}, CWD)
    assert "--dev-bind" not in bare and "/sys" not in bare


def test_a_path_under_a_linked_system_folder_is_there_already(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usr, lib = tmp_path / "usr", tmp_path / "lib"
    (usr / "lib" / "x86_64").mkdir(parents=True)
    lib.symlink_to(usr / "lib")  # merged /usr: /lib -> usr/lib
    missing = tmp_path / "lib32"
    monkeypatch.setattr(confine, "_SYSTEM_DIRS", (str(usr), str(lib), str(missing)))
    args = bwrap_arguments([Mount("ro", lib / "x86_64"), Mount("ro", missing)], {}, CWD)
    assert _after(args, "--symlink") == [(str(usr / "lib"), str(lib))]
    assert (str(usr), str(usr)) in _after(args, "--ro-bind")
    assert not any(str(lib / "x86_64") in a or str(missing) in a for a in args)


def test_inside_what_is_bound_already_nothing_more_is_bound_or_linked(tmp_path: Path) -> None:
    repo, real, outside = tmp_path / "repo", tmp_path / "cuda-13.0", tmp_path / "boX"
    for folder in (repo, real, outside, tmp_path / "bo" / "lib"):
        folder.mkdir(parents=True)
    (repo / "cuda").symlink_to(real)
    near = tmp_path / "bo" / "cuda"  # next to boX, not inside it
    near.symlink_to(real)
    args = bwrap_arguments(
        [
            Mount("ro", repo),
            Mount("ro", real),
            Mount("ro", repo / "cuda"),  # a link inside a bound folder: it comes with it
            Mount("ro", outside),
            Mount("ro", tmp_path / "bo" / "lib"),
            Mount("ro", near),
        ],
        {},
        CWD,
    )
    ro, links = _after(args, "--ro-bind"), _after(args, "--symlink")
    for folder in (repo, real, outside, tmp_path / "bo" / "lib"):
        assert ro.count((str(folder), str(folder))) == 1
    assert (str(real), str(near)) in links
    assert not any(link in (str(repo / "cuda"), str(repo)) for _, link in links)


def test_with_the_root_bound_everything_is_inside_it(tmp_path: Path) -> None:
    repo, real = tmp_path / "repo", tmp_path / "real"
    repo.mkdir()
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    mounts = [Mount("ro", Path("/")), Mount("ro", repo), Mount("ro", tmp_path / "link")]
    args = bwrap_arguments(mounts, {}, CWD)
    assert ("/", "/") in _after(args, "--ro-bind")
    assert str(repo) not in args and str(real) not in args and str(tmp_path / "link") not in args


def test_this_pythons_home_is_found_through_its_executable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "executable", "/opt/kevolve-python/bin/python3")
    paths = [m.path for m in python_mounts()]
    assert Path("/opt/kevolve-python") in paths
    assert all(p.is_absolute() for p in paths)


def test_a_second_root_account_gets_files_as_uid_and_gid_zero(
    tmp_path: Path, job_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = pwd.getpwnam(job_user)
    file = tmp_path / "state.sqlite"
    file.write_text("")
    os.chown(file, entry.pw_uid, entry.pw_gid)
    monkeypatch.setattr(confine, "identity", lambda user: (0, 0, []))  # e.g. "toor", uid 0
    hand_over([file], "toor")
    assert (file.stat().st_uid, file.stat().st_gid) == (0, 0)
