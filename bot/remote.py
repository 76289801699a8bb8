"""A git remote and its credential, passed to git per command, never written to disk."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

GIT_USER = "x-access-token"  # the user name GitHub expects beside an installation token
_USERINFO = re.compile(r"(://)[^/@\s]+@")


@dataclass(frozen=True)
class GitRemote:
    """A plain clone URL and the token git presents to it (empty: none needed)."""

    url: str
    token: str = ""

    def __repr__(self) -> str:
        return f"GitRemote(url={self.url!r}, token={'***' if self.token else ''!r})"

    def env(self) -> dict[str, str]:
        """The environment of one git command that authenticates to this remote.

        The header goes in `GIT_CONFIG_*` variables of that command alone: git keeps it out of
        `.git/config`, and unlike `-c` on the command line no other user can read it in /proc.
        It is scoped to the remote's origin, so a redirect elsewhere never carries it.
        """
        env = {"GIT_TERMINAL_PROMPT": "0"}
        if not self.token:
            return env
        parts = urlsplit(self.url)
        basic = base64.b64encode(f"{GIT_USER}:{self.token}".encode()).decode()
        return {
            **env,
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"http.{parts.scheme}://{parts.netloc}/.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }

    def redact(self, text: str) -> str:
        """`text` with the token, and any URL userinfo, replaced by `***`."""
        if self.token:
            text = text.replace(self.token, "***")
        return _USERINFO.sub(r"\1***@", text)
