"""The recorder: stores new webhook deliveries in batches, one transaction per batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from kevolve.bot.database import StorageError, deliveries_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class NewDelivery:
    """A webhook delivery to store: its payload is the JSON text exactly as GitHub sent it."""

    delivery_id: str
    event: str
    action: str | None
    payload: str
    installation_id: int | None = None  # the app installation it came through


def installation_in(payload: Mapping[str, Any]) -> int | None:
    """The id of the app installation a payload names; None when it names none (or not an int)."""
    installation = payload.get("installation")
    key = installation.get("id") if isinstance(installation, dict) else None
    return key if isinstance(key, int) and not isinstance(key, bool) and 0 < key < 2**63 else None


class DeliveryRecorder:
    """Stores new deliveries in batches over one connection it keeps; used by one thread."""

    def __init__(self, engine: sa.Engine, clock: Clock) -> None:
        self._engine, self._clock = engine, clock
        self._conn: sa.Connection | None = None

    def record(self, rows: Sequence[NewDelivery]) -> set[str]:
        """Store `rows` in one transaction; the ids that were new (the others were replays).

        Ids must be distinct within `rows`. A StorageError when the transaction failed: then
        nothing of `rows` was stored, and the next call starts on a fresh connection.
        """
        if not rows:
            return set()
        values = [self._values(row) for row in rows]
        try:
            conn = self._conn or self._engine.connect()
            self._conn = conn
            with conn.begin():
                return _insert_new(conn, values)
        except SQLAlchemyError as exc:
            self.close()
            where = self._engine.url.render_as_string(hide_password=True)
            raise StorageError(f"cannot store deliveries in {where}: {exc}") from exc

    def close(self) -> None:
        """Give the connection back (a broken one is discarded by the pool)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _values(self, row: NewDelivery) -> dict[str, Any]:
        """The table row of a new pending delivery, stamped with the time it is stored."""
        return {
            "delivery_id": row.delivery_id,
            "event": row.event,
            "action": row.action,
            "payload": row.payload,
            "installation_id": row.installation_id,
            "received_at": self._clock(),
            "status": "pending",
            "attempts": 0,
        }


def _insert_new(conn: sa.Connection, values: list[dict[str, Any]]) -> set[str]:
    """Insert the rows whose id is not stored yet, inside the caller's transaction; their ids.

    SQLite and PostgreSQL skip conflicting rows in one statement (ON CONFLICT DO NOTHING
    RETURNING), so a replay cannot fail its batch; other databases insert row by row, each in a
    savepoint.
    """
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        insert = sqlite.insert if name == "sqlite" else postgresql.insert
        statement = (
            insert(deliveries_table)
            .on_conflict_do_nothing(index_elements=["delivery_id"])
            .returning(deliveries_table.c.delivery_id)
        )
        return {str(key) for key in conn.execute(statement, values).scalars()}
    stored = set()
    for row in values:
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(deliveries_table).values(row))
        except IntegrityError:
            continue
        stored.add(str(row["delivery_id"]))
    return stored
