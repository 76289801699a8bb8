"""bot.treepath at its edges: the exact refusals, the size cap at exactly its size, the modes of
what it makes, UTF-8 whatever the locale, and a link or directory swapped in between the check
and the open (the race the O_NOFOLLOW opens are there for)."""

from __future__ import annotations

import locale
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kevolve.bot import treepath
from kevolve.bot.treepath import MAX_READ_BYTES, TreePathError, checked, read_inside, write_inside


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "kernels").mkdir(parents=True)
    (root / "kernels" / "softmax.py").write_text("# kernel\n")
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.py"
    victim.write_text("the host's file\n")
    return victim


def refusal(action: Callable[[], object]) -> str:
    with pytest.raises(TreePathError) as info:
        action()
    return str(info.value)


def test_names_that_are_no_plain_path_are_refused_in_words(tree: Path) -> None:
    component = "(letters, digits, '_', '-', '.' and '+' only; no '..' and no .git)"
    assert refusal(lambda: write_inside(tree, "kernels\\k.py", "x")) == (
        "'kernels\\\\k.py' is not a path relative to the repository"
    )
    assert refusal(lambda: write_inside(tree, "kernels/.../k.py", "x")) == (
        f"'kernels/.../k.py': component '...' is not allowed {component}"
    )
    write_inside(tree, "kernels/X", "fine\n")  # a name of letters is a name
    assert read_inside(tree, "kernels/X") == "fine\n"


def test_a_file_on_the_way_is_named_as_not_a_directory(tree: Path) -> None:
    assert refusal(lambda: checked(tree, "kernels/softmax.py/deeper/k.py")) == (
        "'kernels/softmax.py/deeper/k.py': kernels/softmax.py is not a directory"
    )


def test_reading_what_is_not_there_names_it_and_makes_nothing(tree: Path) -> None:
    assert refusal(lambda: read_inside(tree, "kernels/missing.py")) == (
        "'kernels/missing.py' is not in the tree"
    )
    assert refusal(lambda: read_inside(tree, "new/dir/k.py")) == (
        "'new/dir' is not a directory of the tree: No such file or directory"
    )
    assert not (tree / "new").exists()


def test_a_file_of_exactly_the_cap_is_read_and_one_byte_more_is_not(tree: Path) -> None:
    (tree / "kernels" / "big.py").write_bytes(b"#" * MAX_READ_BYTES)
    assert len(read_inside(tree, "kernels/big.py")) == MAX_READ_BYTES
    (tree / "kernels" / "big.py").write_bytes(b"#" * (MAX_READ_BYTES + 1))
    assert refusal(lambda: read_inside(tree, "kernels/big.py")) == (
        f"'kernels/big.py' is over {MAX_READ_BYTES} bytes"
    )


def test_text_is_utf8_whatever_the_locale(tree: Path) -> None:
    (tree / "kernels" / "latin.py").write_bytes("é".encode("latin-1"))
    assert refusal(lambda: read_inside(tree, "kernels/latin.py")) == (
        "'kernels/latin.py' is not UTF-8 text"
    )
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # ASCII: a host whose locale is not UTF-8
    try:
        write_inside(tree, "kernels/accent.py", "# café\n")
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    assert (tree / "kernels" / "accent.py").read_bytes() == "# café\n".encode()


@pytest.fixture
def no_umask() -> Iterator[None]:
    """Modes exactly as asked for: the bot's own umask may be 0."""
    before = os.umask(0)
    yield
    os.umask(before)


def test_what_is_written_is_0644_in_directories_of_0755(tree: Path, no_umask: None) -> None:
    write_inside(tree, "made/here/k.py", "x\n")
    modes = [(tree / p).stat().st_mode & 0o777 for p in ("made", "made/here", "made/here/k.py")]
    assert modes == [0o755, 0o755, 0o644]


def test_writing_replaces_the_whole_file(tree: Path) -> None:
    write_inside(tree, "kernels/softmax.py", "a much longer first version\n")
    write_inside(tree, "kernels/softmax.py", "short\n")
    assert (tree / "kernels" / "softmax.py").read_text() == "short\n"


def test_writing_from_another_directory_stays_in_the_tree(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "kernels").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # holds a `kernels` of its own
    write_inside(tree, "kernels/new/k.py", "x\n")
    assert (tree / "kernels" / "new" / "k.py").read_text() == "x\n"
    assert list((elsewhere / "kernels").iterdir()) == []


def _swap_after_check(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    """Run `swap` just after treepath's own check passes, as an attacker racing it would."""
    real = treepath.checked

    def check_then_swap(root: Path, name: str) -> Path:
        path = real(root, name)
        swap()
        return path

    monkeypatch.setattr(treepath, "checked", check_then_swap)


def test_a_link_swapped_in_after_the_check_is_not_followed(
    tree: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tree / "kernels" / "softmax.py"

    def swap() -> None:
        target.unlink()
        target.symlink_to(outside)

    _swap_after_check(monkeypatch, swap)
    assert refusal(lambda: read_inside(tree, "kernels/softmax.py")) == (
        "'kernels/softmax.py' cannot be read: Too many levels of symbolic links"
    )
    target.unlink()
    target.write_text("# kernel\n")
    assert refusal(lambda: write_inside(tree, "kernels/softmax.py", "owned\n")) == (
        "'kernels/softmax.py' cannot be written: Too many levels of symbolic links"
    )
    assert outside.read_text() == "the host's file\n"


def test_a_device_swapped_in_after_the_check_is_not_read(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/dev/null's device node, made in the tree (as root, as the tests run)."""
    target = tree / "kernels" / "softmax.py"

    def swap() -> None:
        target.unlink()
        os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(1, 3))

    _swap_after_check(monkeypatch, swap)
    assert refusal(lambda: read_inside(tree, "kernels/softmax.py")) == (
        "'kernels/softmax.py' is not a regular file"
    )
