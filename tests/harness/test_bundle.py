"""The op's files as they travel to Ray nodes: what is packed, when a node's copy will do."""

from __future__ import annotations

from pathlib import Path

import pytest
from kevolve.harness.search.bundle import BundleError, Manifest, pack, present, unpack


def repo(root: Path) -> Path:
    """A small op repository with the clutter a real checkout has."""
    for name, text in {
        "pyproject.toml": "[tool.kevolve.ops.x]\n",
        "ops/kernel.py": "K = 1\n",
        "ops/reference.py": "R = 2\n",
        ".git/HEAD": "ref: refs/heads/main\n",
        ".kevolve/x.sqlite": "state",
        "ops/__pycache__/kernel.cpython-311.pyc": "bytecode",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_ops_files_are_packed_without_vcs_state_or_caches(tmp_path: Path) -> None:
    manifest, _ = pack(repo(tmp_path / "repo"))
    assert [name for name, _ in manifest.files] == [
        "pyproject.toml",
        "ops/kernel.py",
        "ops/reference.py",
    ]
    assert manifest.root == tmp_path / "repo"


def test_a_nodes_copy_will_do_only_when_every_file_is_the_same(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    manifest, _ = pack(root)
    assert present(manifest)
    (root / "ops" / "reference.py").write_text("R = 3\n")  # another commit at the same path
    assert not present(manifest)
    (root / "ops" / "reference.py").unlink()
    assert not present(manifest)
    assert not present(Manifest(tmp_path / "elsewhere", manifest.files))


def test_unpacking_gives_the_same_files_once_per_digest(tmp_path: Path) -> None:
    manifest, data = pack(repo(tmp_path / "repo"))
    into = tmp_path / "node"
    first = unpack(data, manifest, into)
    assert first == into / manifest.digest
    assert present(Manifest(first, manifest.files))
    (first / "ops" / "kernel.py").write_text("touched")  # a second unpack leaves it alone
    assert unpack(data, manifest, into) == first
    assert (first / "ops" / "kernel.py").read_text() == "touched"
    assert [p.name for p in into.iterdir()] == [manifest.digest]  # no half-made trees left


def test_the_digest_names_contents_not_places(tmp_path: Path) -> None:
    a, _ = pack(repo(tmp_path / "a"))
    b, _ = pack(repo(tmp_path / "b"))
    assert a.digest == b.digest
    (tmp_path / "b" / "ops" / "kernel.py").write_text("K = 2\n")
    assert pack(tmp_path / "b")[0].digest != a.digest


def test_too_much_to_ship_is_refused_with_the_fix(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    (root / "weights.bin").write_bytes(b"\0" * 2**20)
    with pytest.raises(BundleError, match=r"holds more than 0.5 MiB of files to send to the Ray"):
        pack(root, limit=2**19)
