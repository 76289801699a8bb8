"""Where the installed files are: the Jinja2 templates shipped as `kevolve.templates` and the
example repos shipped as `kevolve.examples`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TEMPLATE_PACKAGE = "kevolve.templates"
EXAMPLE_PACKAGE = "kevolve.examples"


def template_dir(kind: str) -> Path:
    """The folder of one kind of templates ("prompts", "github") in the installed package."""
    return _folder(TEMPLATE_PACKAGE, kind, "templates")


def example_dir(name: str) -> Path:
    """The folder of one example repo ("demo") in the installed package."""
    return _folder(EXAMPLE_PACKAGE, name, "example repo")


def _folder(package: str, name: str, what: str) -> Path:
    spec = importlib.util.find_spec(package)
    for place in (spec.submodule_search_locations or []) if spec else []:
        if (Path(place) / name).is_dir():
            return Path(place) / name
    raise FileNotFoundError(f"{package} has no {name!r} {what}; reinstall kevolve")
