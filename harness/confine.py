"""`Confinement`: as whom and in what jail repo code and candidates run (DESIGN.md §7).

The judge imports repo code (reference, input maker, the current kernel) and starts the worker
that imports the candidate; both are confined by what this says. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Confinement:
    """The OS user and the bubblewrap jail for a judge; the defaults confine nothing extra."""

    user: str | None = None  # run the judge as this OS user (needs root, or sudo -n); None: as us
    bwrap: str | None = None  # bubblewrap's path; None: the home-made jail alone
