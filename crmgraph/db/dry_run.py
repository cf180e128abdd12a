"""A dry run: work run exactly as it would be, in a transaction rolled back.

:func:`rolled_back` opens one write transaction (BEGIN sent at once, never
lazy: nothing it runs may take the one-statement path that skips BEGIN),
lets the caller run in it whatever a real call runs (validation, guards,
plugin hooks, writes: every ``Database.run_transaction`` inside it joins
it), sends the writes still queued (what a commit would send first, so a
write that would fail fails here too) and rolls everything back. Nothing is
committed, so no after-commit work follows (``EventDispatcher.wake`` does
nothing while :func:`active`; the outbox's readers never see the rolled-back
events).

What the run would have written is read back inside the transaction, from
the tables the writes fill: :meth:`DryRun.written` returns the rows of
``audit_entry`` and ``event`` this transaction inserted. A row is this
transaction's when its id is at or above the mark taken at the start (the
lowest id a row inserted later can get: SQLite's next rowid, which no other
writer can take while this one holds the write lock; on PostgreSQL the
sequence's next value or the lowest id of this process's unused block,
:class:`~crmgraph.db.write_batch.IdBlocks`) and, on PostgreSQL, its ``xmin``
is this transaction (other writers commit rows above the mark meanwhile).
The ids the run took from this process's id blocks are given back, so the
real call that follows a dry run gets the same ids where ids come from
those blocks (rows inserted with the sequence's own default still take new
ones, as after any rolled-back transaction).
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from crmgraph.db.engine import Database, current_queue

# the tables a preview reads back: every write leaves its traces in them
PREVIEW_TABLES = ("audit_entry", "event")

_current: contextvars.ContextVar[DryRun | None] = contextvars.ContextVar(
    "crmgraph_dry_run", default=None
)


class _RollBack(Exception):
    """Raised at the end of a dry run's block: the transaction's own way of
    ending on an exception is a rollback, on both engines."""


@dataclass
class DryRun:
    """One dry run in progress: where each preview table's new rows start."""

    db: Database
    marks: dict[str, int] = field(default_factory=dict)

    async def mark(self) -> None:
        for table in PREVIEW_TABLES:
            self.marks[table] = await self._lowest_new_id(table)

    async def _lowest_new_id(self, table: str) -> int:
        if self.db.is_sqlite:
            return int(await self.db.read_value(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}"))
        last = await self.db.read_value(
            "SELECT pg_sequence_last_value(pg_get_serial_sequence({}, 'id')::regclass)", table
        )
        after_sequence = (last or 0) + 1
        return min([after_sequence, *self.db.ids.free.get(table, ())])

    async def written(self, table: str) -> list[dict[str, Any]]:
        """The rows of ``table`` (one of :data:`PREVIEW_TABLES`) inserted by
        this transaction so far, in id order (the writes queued are sent first)."""
        mine = "" if self.db.is_sqlite else " AND xmin = pg_current_xact_id()::xid"
        return await self.db.fetch(
            f"SELECT * FROM {table} WHERE id >= {{}}{mine} ORDER BY id", self.marks[table]
        )


def active() -> DryRun | None:
    """The dry run this task runs in, or None."""
    return _current.get()


@asynccontextmanager
async def rolled_back(db: Database) -> AsyncIterator[DryRun]:
    """Run the block in one transaction that is rolled back at its end (see
    the module's docstring); an exception from the block rolls it back too
    and propagates."""
    if db.in_transaction:
        raise RuntimeError("a dry run is a transaction of its own, not part of another")
    run = DryRun(db)
    token = _current.set(run)
    given: list[tuple[str, int]] = []
    try:
        async with db.transaction():
            await run.mark()
            yield run
            await db.flush_writes()
            queue = current_queue.get()
            given = list(queue.given) if queue is not None else []
            raise _RollBack
    except _RollBack:
        db.ids.give_back(given)
    finally:
        _current.reset(token)
