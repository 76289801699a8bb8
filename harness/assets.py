"""Where the installed text files are: the Jinja2 templates shipped as `kevolve.templates`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TEMPLATE_PACKAGE = "kevolve.templates"


def template_dir(kind: str) -> Path:
    """The folder of one kind of templates ("prompts", "github") in the installed package."""
    spec = importlib.util.find_spec(TEMPLATE_PACKAGE)
    for place in (spec.submodule_search_locations or []) if spec else []:
        if (Path(place) / kind).is_dir():
            return Path(place) / kind
    raise FileNotFoundError(f"{TEMPLATE_PACKAGE} has no {kind!r} templates; reinstall kevolve")
