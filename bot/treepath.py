"""Files inside a working tree, read and written without following a symlink or leaving the tree.

A repo may commit symlinks, and a path may come from its config: `kernels -> /home/bot` plus
`kernels/softmax.py` would write the bot's files. Every component of a path is checked with
`lstat`, and each directory is opened with `O_NOFOLLOW` from the one above it, so a link swapped
in between the check and the write is refused too.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path, PurePosixPath

MAX_READ_BYTES = 4 * 1024 * 1024  # a kernel module is far smaller
_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,255}")  # one component: no spaces, quotes or backticks
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class TreePathError(ValueError):
    """A path the bot will not read or write in a tree: names the path and why."""


def parts_of(name: str) -> tuple[str, ...]:
    """The components of a repo-relative path; TreePathError unless it is a plain one."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or "\\" in name:
        raise TreePathError(f"{name!r} is not a path relative to the repository")
    for part in path.parts:
        if part in ("..", ".git") or not _NAME.fullmatch(part) or part.strip(".") == "":
            raise TreePathError(
                f"{name!r}: component {part!r} is not allowed (letters, digits, '_', '-', '.' "
                "and '+' only; no '..' and no .git)"
            )
    return path.parts


def checked(root: Path, name: str) -> Path:
    """`root / name` once every existing component is a real directory (the last a regular
    file), none a symlink; TreePathError otherwise."""
    parts = parts_of(name)
    here = root
    for i, part in enumerate(parts):
        here = here / part
        try:
            mode = here.lstat().st_mode
        except FileNotFoundError:
            return root.joinpath(*parts)
        last = i == len(parts) - 1
        if stat.S_ISLNK(mode):
            raise TreePathError(f"{name!r}: {'/'.join(parts[: i + 1])} is a symlink")
        if not last and not stat.S_ISDIR(mode):
            raise TreePathError(f"{name!r}: {'/'.join(parts[: i + 1])} is not a directory")
        if last and not stat.S_ISREG(mode):
            raise TreePathError(f"{name!r} is not a regular file")
    return root.joinpath(*parts)


def read_inside(root: Path, name: str) -> str:
    """The UTF-8 text of the tree's file `name`; TreePathError when it is missing or unsafe."""
    checked(root, name)
    parts = parts_of(name)
    parent = _open_dirs(root, parts[:-1], create=False)
    try:
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except FileNotFoundError:
        raise TreePathError(f"{name!r} is not in the tree") from None
    except OSError as exc:
        raise TreePathError(f"{name!r} cannot be read: {exc.strerror}") from None
    finally:
        os.close(parent)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise TreePathError(f"{name!r} is not a regular file")
        data = file.read(MAX_READ_BYTES + 1)
    if len(data) > MAX_READ_BYTES:
        raise TreePathError(f"{name!r} is over {MAX_READ_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TreePathError(f"{name!r} is not UTF-8 text") from None


def write_inside(root: Path, name: str, text: str) -> None:
    """Write `text` to the tree's file `name`, making its directories; TreePathError if unsafe."""
    checked(root, name)
    parts = parts_of(name)
    parent = _open_dirs(root, parts[:-1], create=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(parts[-1], flags, 0o644, dir_fd=parent)
    except OSError as exc:
        raise TreePathError(f"{name!r} cannot be written: {exc.strerror}") from None
    finally:
        os.close(parent)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def _open_dirs(root: Path, parts: tuple[str, ...], create: bool) -> int:
    """A descriptor of the directory `parts` under `root`, each step opened without following
    a link (made first when `create`)."""
    fd = os.open(root, _DIR)
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            step = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = step
    except OSError as exc:
        os.close(fd)
        where = "/".join(parts)
        raise TreePathError(f"{where!r} is not a directory of the tree: {exc.strerror}") from None
    return fd
