"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.standin.fixtures import World


@pytest.fixture
def github_standin(tmp_path: Path) -> Iterator[World]:
    """A running GitHub stand-in with app, installation, repo and users; fails on spec breaks."""
    # Imported here: a GPU host runs the harness tests without the web stack installed.
    from tests.standin.fixtures import build_world

    world = build_world(tmp_path / "github")
    try:
        yield world
        world.standin.assert_clean()
    finally:
        world.standin.stop()
