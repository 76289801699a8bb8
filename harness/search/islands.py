"""`Islands`: islands of elites, sampled by tempered softmax and refreshed by migration."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from kevolve.harness.search.candidate import Elite


@dataclass(frozen=True)
class IslandsConfig:
    """How many islands, how many elites each keeps, and how sampling and migration behave."""

    islands: int = 4
    elites_per_island: int = 8
    temperature: float = 0.3  # tempered softmax over scores relative to the island's best
    migration_interval: int = 4  # generations between migrations; 0 turns migration off
    reset_fraction: float = 0.25  # share of weakest islands reseeded from the best at migration

    def __post_init__(self) -> None:
        if self.islands < 1 or self.elites_per_island < 1:
            raise ValueError("islands and elites_per_island must be at least 1")
        if self.temperature <= 0 or self.migration_interval < 0:
            raise ValueError("temperature must be positive and migration_interval non-negative")
        if not 0.0 <= self.reset_fraction <= 1.0:
            raise ValueError("reset_fraction must lie in [0, 1]")


class Islands:
    """The correct candidates found so far, kept per island, best first."""

    def __init__(self, config: IslandsConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._registered: set[str] = set()
        self._islands: list[list[Elite]] = [[] for _ in range(config.islands)]
        # First-add order of every id, so ties break the same way in every island and after reload.
        self._order: dict[str, int] = {}
        self._added = 0
        self._next = 0

    def register(self, candidate_id: str) -> bool:
        """Mark an id as judged; False when it already was (a duplicate needs no evaluation)."""
        if candidate_id in self._registered:
            return False
        self._registered.add(candidate_id)
        return True

    def seen(self, candidate_id: str) -> bool:
        """Whether this id was registered before."""
        return candidate_id in self._registered

    def registered(self) -> frozenset[str]:
        """Every candidate id registered so far (judged or planned)."""
        return frozenset(self._registered)

    def add(self, elite: Elite) -> None:
        """Put a correct candidate into its island (`candidate.island`), keeping only the best."""
        island = elite.candidate.island
        if not 0 <= island < len(self._islands):
            raise ValueError(f"island {island} out of range 0..{len(self._islands) - 1}")
        if elite.candidate.id not in self._order:
            self._order[elite.candidate.id] = self._added
            self._added += 1
        self._insert(island, elite)

    def sample(self, island: int, k: int) -> list[Elite]:
        """Up to k distinct elites of an island, drawn by tempered softmax of score, best first."""
        pool = list(self._islands[island])
        if not pool or k <= 0:
            return []
        weights = self._weights([e.score for e in pool])
        chosen: list[int] = []
        indices = list(range(len(pool)))
        for _ in range(min(k, len(pool))):
            pick = self._rng.choices(range(len(indices)), weights=weights)[0]
            chosen.append(indices.pop(pick))
            weights.pop(pick)
        # The island is kept best first, so sorting the positions orders the draw best first.
        return [pool[i] for i in sorted(chosen)]

    def best(self) -> Elite | None:
        """The highest-scoring elite of all islands (ties: the earliest added)."""
        heads = [isl[0] for isl in self._islands if isl]
        return min(heads, key=self._rank) if heads else None

    def elites(self) -> list[Elite]:
        """Every elite of every island, once each, best first."""
        unique = {e.candidate.id: e for isl in self._islands for e in isl}
        return sorted(unique.values(), key=self._rank)

    def island_best(self, island: int) -> Elite | None:
        """The best elite of one island, or None when it is empty."""
        members = self._islands[island]
        return members[0] if members else None

    def next_island(self) -> int:
        """The island for the next proposal, round-robin."""
        island = self._next
        self._next = (self._next + 1) % len(self._islands)
        return island

    def end_generation(self, generation: int) -> None:
        """Migrate after every `migration_interval`-th generation (counted from 1)."""
        interval = self.config.migration_interval
        if interval and generation > 0 and generation % interval == 0:
            self._migrate()

    def islands_summary(self) -> list[dict[str, object]]:
        """Per island: how many elites, the best score and the best id (None when empty)."""
        summary: list[dict[str, object]] = []
        for i, members in enumerate(self._islands):
            head = members[0] if members else None
            summary.append(
                {
                    "island": i,
                    "count": len(members),
                    "best_score": head.score if head else None,
                    "best_id": head.candidate.id if head else None,
                }
            )
        return summary

    def to_dict(self) -> dict[str, object]:
        """The whole state as JSON-ready data; the elites themselves are stored elsewhere."""
        return {
            "registered": sorted(self._registered),
            "islands": [
                [{"id": e.candidate.id, "score": e.score} for e in members]
                for members in self._islands
            ],
            "order": dict(self._order),
            "next_island": self._next,
            "added": self._added,
        }

    @staticmethod
    def from_dict(
        data: Mapping[str, object],
        config: IslandsConfig,
        rng: random.Random,
        elites_by_id: Mapping[str, Elite],
    ) -> Islands:
        """Rebuild a database from `to_dict` output plus the stored elites."""
        islands = _as_list(data["islands"])
        if len(islands) != config.islands:
            raise ValueError(f"stored {len(islands)} islands, config wants {config.islands}")
        db = Islands(config, rng)
        db._registered = {str(i) for i in _as_list(data["registered"])}
        db._order = {str(k): _as_int(v) for k, v in _as_dict(data["order"]).items()}
        db._added = _as_int(data["added"])
        db._next = _as_int(data["next_island"]) % config.islands
        for i, entries in enumerate(islands):
            # Stored order is already best first; keep it verbatim rather than re-sorting.
            db._islands[i] = [elites_by_id[str(_as_dict(e)["id"])] for e in _as_list(entries)]
        return db

    def _rank(self, elite: Elite) -> tuple[float, int]:
        """Sort key: higher score first, then earlier added."""
        return (-elite.score, self._order.get(elite.candidate.id, self._added))

    def _insert(self, island: int, elite: Elite) -> None:
        """Add an elite to an island unless its id is there, then trim to the best few."""
        members = self._islands[island]
        if any(e.candidate.id == elite.candidate.id for e in members):
            return
        members.append(elite)
        members.sort(key=self._rank)
        del members[self.config.elites_per_island :]

    def _weights(self, scores: list[float]) -> list[float]:
        """Softmax weights of scores relative to the best, tempered by the island's spread."""
        top, spread = max(scores), max(scores) - min(scores)
        if spread <= 0 or not math.isfinite(spread):
            return [1.0] * len(scores)
        # Scaling by the spread makes the temperature mean the same for speedups and for 1.0s.
        scale = self.config.temperature * spread
        return [math.exp((s - top) / scale) for s in scores]

    def _migrate(self) -> None:
        """Reseed the weakest islands with the global best, then copy each best to the next."""
        champion = self.best()
        if champion is None:
            return
        n = len(self._islands)
        resets = int(n * self.config.reset_fraction)
        # Empty islands count as weakest; among equals the lower index goes first.
        order = sorted(range(n), key=lambda i: (bool(self._islands[i]), self._head_score(i), i))
        for i in order[:resets]:
            self._islands[i] = [champion]
        heads = [self.island_best(i) for i in range(n)]
        for i, head in enumerate(heads):
            if head is not None:
                self._insert((i + 1) % n, head)

    def _head_score(self, island: int) -> float:
        """The island's best score, or minus infinity when it is empty."""
        head = self.island_best(island)
        return head.score if head else -math.inf


def _as_list(value: object) -> list[object]:
    """The value as a list, or a ValueError naming what it was instead."""
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


def _as_dict(value: object) -> dict[str, object]:
    """The value as a dict, or a ValueError naming what it was instead."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a dict, got {type(value).__name__}")
    return value


def _as_int(value: object) -> int:
    """The value as an int, or a ValueError naming what it was instead."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"expected an int, got {type(value).__name__}")
    return value
