"""Posting a job's result to the bot: `POST {bot}/jobs/{id}/result` with the dispatch's token.

A token posts once. When a try failed in transit (the bot may have stored it and the answer was
lost), a retry the bot refuses as already spent means the result is in: that is success.
Standard library only, so a GPU runner needs nothing beyond kevolve's core and its torch.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from kevolve.runners.runner import RunnerError

_RETRYABLE = {408, 429, 500, 502, 503, 504}


def post_result(
    bot_url: str,
    job_id: int,
    token: str,
    result: dict[str, Any],
    attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """POST the result; the HTTP status (409: an earlier try was stored). Retries transient
    failures; RunnerError when refused."""
    url = f"{bot_url.rstrip('/')}/jobs/{job_id}/result"
    body = json.dumps(result).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    last = ""
    for attempt in range(attempts):
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            if last and exc.code == 409 and _spent(detail):
                return 409
            if exc.code not in _RETRYABLE:
                raise RunnerError(
                    f"the bot refused job {job_id}'s result ({exc.code}): {detail}"
                ) from None
            last = f"{exc.code}: {detail}"
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        sleep(2.0**attempt)
    raise RunnerError(
        f"could not post job {job_id}'s result to {url} after {attempts} tries: {last}"
    )


def _spent(detail: str) -> bool:
    """Whether the bot's refusal says the token was used already."""
    try:
        answer = json.loads(detail)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("spent") is True
