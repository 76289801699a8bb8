"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.standin.fixtures import World, build_world


@pytest.fixture
def github_standin(tmp_path: Path) -> Iterator[World]:
    """A running GitHub stand-in with app, installation, repo and users; fails on spec breaks."""
    world = build_world(tmp_path / "github")
    try:
        yield world
        world.standin.assert_clean()
    finally:
        world.standin.stop()
