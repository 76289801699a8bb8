"""`Bundle`: an op's files packed to travel to a machine that may not share this filesystem.

A search on a Ray cluster packs the problem's root once; a node uses the root as it is when its
own copy holds exactly these files (a shared filesystem, or the same checkout), and otherwise
unpacks the bundle into a directory named by the files' digest, once per node.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Never needed to judge a candidate, and often large. Hidden directories (.git, .venv, .kevolve
# with its search state) are skipped too.
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "venv"})
MAX_BYTES = 64 * 2**20


class BundleError(Exception):
    """The op's files cannot be packed: names what is wrong and how to fix it."""


@dataclass(frozen=True)
class Manifest:
    """Which files a bundle holds: paths relative to `root`, each with its SHA-256."""

    root: Path  # where the files live on the machine that packed them
    files: tuple[tuple[str, str], ...]

    @property
    def digest(self) -> str:
        """A name for exactly this set of files and contents."""
        text = "\n".join(f"{path}\0{sha}" for path, sha in self.files)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def pack(root: Path, limit: int = MAX_BYTES) -> tuple[Manifest, bytes]:
    """The files under `root` (skipping hidden and cache directories) and a gzip tarball of them."""
    files: list[tuple[str, str]] = []
    total = 0
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in _files(root):
            data = path.read_bytes()
            total += len(data)
            if total > limit:
                raise BundleError(
                    f"{root} holds more than {limit / 2**20:g} MiB of files to send to the Ray "
                    f"nodes. Fix: keep large data out of the op's repository, or put the "
                    f"repository on a filesystem every node shares"
                )
            name = path.relative_to(root).as_posix()
            files.append((name, hashlib.sha256(data).hexdigest()))
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return Manifest(root, tuple(files)), buffer.getvalue()


def present(manifest: Manifest) -> bool:
    """True when `manifest.root` on this machine holds every file of the manifest, unchanged."""
    for name, sha in manifest.files:
        try:
            data = (manifest.root / name).read_bytes()
        except OSError:
            return False
        if hashlib.sha256(data).hexdigest() != sha:
            return False
    return True


def unpack(data: bytes, manifest: Manifest, into: Path) -> Path:
    """The directory under `into` holding the bundle's files, unpacked unless already there.

    Unpacked into a fresh directory and renamed into place, so concurrent tasks on one node never
    see half a tree: the first rename wins and the others drop their copy.
    """
    final = into / manifest.digest
    if final.is_dir():
        return final
    into.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{manifest.digest}-", dir=into))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(work, filter="data")
    try:
        os.rename(work, final)
    except OSError:  # another task on this node got there first
        shutil.rmtree(work, ignore_errors=True)
    return final


def _files(root: Path) -> list[Path]:
    """Regular files under `root`, in a stable order, outside hidden and skipped directories."""
    found: list[Path] = []
    for here, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        found += [Path(here) / n for n in sorted(names) if (Path(here) / n).is_file()]
    return found
