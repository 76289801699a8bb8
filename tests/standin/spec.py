"""Response checks against GitHub's REST OpenAPI description (vendored, trimmed)."""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaError
from openapi_core import Config, OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

# GitHub's REST description (npm @octokit/openapi), cut to what the stand-in serves by
# tests.standin.excerpt; vendor/LICENSE says whose it is.
DESCRIPTION = Path(__file__).resolve().parent / "vendor" / "api.github.com.json"
SERVER = "https://api.github.com"


class ResponseChecker:
    """Checks responses against the spec by operation (method and path) and status code."""

    def __init__(self, spec: dict[str, Any]) -> None:
        _admit_null(spec)
        self._api = OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))
        self._basic_error = OAS30Validator(spec["components"]["schemas"]["basic-error"])
        self._lock = threading.Lock()

    def problems(self, method: str, path: str, status: int, body: bytes) -> list[str]:
        """Return what is wrong with one JSON response; empty when it matches the spec."""
        request = MockRequest(SERVER, method.lower(), path)
        response = MockResponse(body, status_code=status, content_type="application/json")
        try:
            with self._lock:
                self._api.validate_response(request, response)
        except ResponseNotFound:
            return self._undocumented_error(status, body)
        except OpenAPIError as error:
            return [_describe(error)]
        return []

    def _undocumented_error(self, status: int, body: bytes) -> list[str]:
        """Check a status the operation does not list: only errors, shaped as `basic-error`."""
        if status < 400:
            return [f"status {status} is not documented for this operation"]
        errors = self._basic_error.iter_errors(json.loads(body))
        return [f"{e.json_path}: {e.message}" for e in errors]


def _admit_null(node: Any) -> None:
    """Add null to every `nullable` enum, in place.

    GitHub marks fields such as a check run's `conclusion` nullable and sends null, but its enums
    leave null out, which OpenAPI 3.0.3 validators read as forbidding it.
    """
    if isinstance(node, dict):
        enum = node.get("enum")
        if node.get("nullable") is True and isinstance(enum, list) and None not in enum:
            enum.append(None)
        for value in node.values():
            _admit_null(value)
    elif isinstance(node, list):
        for item in node:
            _admit_null(item)


def _describe(error: BaseException) -> str:
    """Return an error and the schema errors beneath it as text."""
    lines = [f"{type(error).__name__}: {error}"[:300]]
    cause = error.__cause__
    for sub in list(getattr(cause, "schema_errors", []))[:5]:
        if isinstance(sub, SchemaError):
            lines.append(f"  {sub.json_path}: {sub.message}"[:300])
    return "\n".join(lines)


@functools.cache
def checker() -> ResponseChecker:
    """Return the one checker of this process, loading the description on first use."""
    return ResponseChecker(json.loads(DESCRIPTION.read_text()))
