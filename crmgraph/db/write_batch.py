"""Writes a transaction does not wait for, sent to PostgreSQL together.

A write used to cost a round trip per statement: the row, its audit entry,
its outbox event, each an INSERT whose answer nobody needed before the commit.
Inside a PostgreSQL write transaction (``Database.transaction``) those
statements are queued here instead and sent as one statement, a
data-modifying ``WITH``, when the transaction next reads (so every read sees
every write before it) or just before it commits. A row's primary key is
handed out before its INSERT (:class:`IdBlocks`), so the audit entry and the
event that name it are built, in Python and exactly as before, without
waiting for the row.

Two rules keep a batch equal to the statements one by one:

- the statements of one ``WITH`` see one snapshot and run in no set order,
  so a table is touched by one statement per batch: INSERTs of one table with
  the same columns become one multi-row INSERT (its rows, and their serial
  ids, in the order they were queued); any other second statement on a table
  starts a new batch;
- a statement queued with ``expect`` (an UPDATE guarded by a version) has its
  rows counted: a count other than the one expected raises the error given
  with it, rolling back the transaction as the statement itself would have.

A batch may also keep the row of one INSERT (``keep``): its ``RETURNING *``
is the statement's answer, so a payload shows the row as written without
reading it again.

A queue may be *lazy* (its transaction has not sent BEGIN: crmgraph.db.lazy):
then a write that read nothing before its writes is one statement and no
transaction around it. What it would have read first, the customer it writes
to, locked and checked live, goes into that statement as a *guard*: a
locking read whose rows must number one, or ``crmgraph_refuse`` aborts the
statement (SQLSTATE ``CRG01``) and the write runs again the ordinary way,
which refuses it with the exact user error.

Considered and refused: a pipelined batch (asyncpg has no pipeline mode;
psycopg 3 has, but a second driver for one feature is more than this module);
SQLite gets nothing here: it is in the process, a statement costs no round
trip.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Parameters one batch binds at the most (PostgreSQL takes 32767): an import
# queueing thousands of audit entries sends them a few hundred at a time.
MAX_BATCH_PARAMS = 4000

# How many ids of a table one process takes from its sequence at a time: a
# round trip per this many rows; a restarted process leaves a gap (ids are
# unique, never dense, as PostgreSQL's sequences already are after a rollback).
ID_BLOCK = 32

Fetch = Callable[..., Awaitable[list[dict[str, Any]]]]

# The SQLSTATE of crmgraph_refuse (migration crmgraph_0033): a guard failed.
GUARD_FAILED = "CRG01"

# A statement that writes rows (a locking read's FOR UPDATE is not one)
CHANGES_ROWS = re.compile(
    r"\b(INSERT\s+INTO|DELETE\s+FROM|MERGE\s+INTO|UPDATE\s+\w+(\s+(AS\s+)?\w+)?\s+SET)\b",
    re.IGNORECASE,
)


# Tables whose trigger-kept counts read one another's rows (crmgraph.db.
# stage_flow: an entry's measures read its customer's kind and deletion and its
# role's dates). Changed in one statement, each table's trigger already sees
# the other's change and both count it, so such changes go in separate batches;
# a change no such trigger reads (an INSERT of a customer, of a role without
# dates: a primary kind's; an UPDATE setting other columns: a version, a role's
# stage) still shares one.
LINKED_COLUMNS = {
    "stage_change": None,  # every change
    "customer_role": ("customer", "kind", "added_at", "ended_at"),
    "customer": ("kind", "deleted_at"),
}
SET_CLAUSE = re.compile(r"\bSET\b(.*?)(\bWHERE\b|\bFROM\b|\bRETURNING\b|$)", re.I | re.S)


def counted_change(statement: Statement) -> bool:
    """Whether ``statement`` changes what a linked table's trigger reads."""
    if statement.guard or statement.table not in LINKED_COLUMNS:
        return False
    columns = LINKED_COLUMNS[statement.table]
    if columns is None:
        return True
    if statement.is_insert:  # a customer's: no trigger; a role's: read once dated
        dated = [i for i, c in enumerate(statement.columns) if c in ("added_at", "ended_at")]
        return statement.table == "customer_role" and any(
            row[i] is not None for row in statement.rows for i in dated
        )
    set_clause = SET_CLAUSE.search(statement.sql)
    if set_clause is None:  # a DELETE
        return True
    return any(re.search(rf"\b{c}\s*=", set_clause.group(1), re.I) for c in columns)


@dataclass
class Statement:
    """One queued statement on ``table``: an INSERT of ``rows`` (each a
    tuple in ``columns`` order), or any other statement as ``sql`` with
    ``{}`` placeholders and its ``args``."""

    table: str
    columns: tuple[str, ...] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    sql: str = ""
    args: tuple[Any, ...] = ()
    keep: bool = False  # its RETURNING * rows answer the batch
    expect: tuple[int, Exception] | None = None  # (row count, error otherwise)
    guard: bool = False  # a locking read that must find one row (module docstring)

    @property
    def is_insert(self) -> bool:
        return not self.sql

    @property
    def params(self) -> int:
        return len(self.columns) * len(self.rows) if self.is_insert else len(self.args)

    def render(self) -> tuple[str, list[Any]]:
        if not self.is_insert:
            return self.sql, list(self.args)
        row = "(" + ", ".join("{}" for _ in self.columns) + ")"
        values = ", ".join(row for _ in self.rows)
        sql = f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES {values}"
        return sql, [value for row_values in self.rows for value in row_values]


@dataclass
class Batch:
    """Statements that go in one round trip."""

    statements: list[Statement] = field(default_factory=list)

    def takes(self, statement: Statement) -> bool:
        """Whether ``statement`` may join: no other statement on its table
        (bar an INSERT with the same columns, merged), no other change of a
        linked table (``LINKED_COLUMNS``), one kept row at most."""
        if statement.keep and any(s.keep for s in self.statements):
            return False
        if self.params + statement.params > MAX_BATCH_PARAMS:
            return False
        linked = counted_change(statement)
        return all(
            s.table != statement.table and not (linked and counted_change(s))
            for s in self.statements
        )

    @property
    def params(self) -> int:
        return sum(s.params for s in self.statements)

    def merge(self, statement: Statement) -> bool:
        """Add an INSERT's rows to the last INSERT of the same table and
        columns queued here, if that is the last statement on the table."""
        if not statement.is_insert or statement.keep or statement.expect:
            return False
        if self.params + statement.params > MAX_BATCH_PARAMS:
            return False
        for queued in reversed(self.statements):
            if queued.table != statement.table:
                continue
            same = queued.is_insert and queued.columns == statement.columns
            if same and not queued.keep and not queued.expect:
                queued.rows.extend(statement.rows)
                return True
            return False
        return False

    def parts(self) -> tuple[list[str], list[Any]]:
        """Every queued statement as a WITH part (``crmgraph_w<n> AS (...)``)
        and the arguments of them all, in order."""
        parts, args = [], []
        for number, statement in enumerate(self.statements):
            sql, values = statement.render()
            returning = " RETURNING *" if statement.keep else " RETURNING 1"
            parts.append(f"crmgraph_w{number} AS ({sql}{'' if statement.guard else returning})")
            args.extend(values)
        return parts, args

    def render(self) -> tuple[str, list[Any]]:
        """One statement: every queued one as a WITH part, then a row of the
        counts asked for, joined to the kept rows (or one row alone)."""
        parts, args = self.parts()
        counts = [
            f"(SELECT COUNT(*) FROM crmgraph_w{number}) AS crmgraph_count_{number}"
            for number, statement in enumerate(self.statements)
            if statement.expect is not None
        ] + [
            f"CASE WHEN (SELECT COUNT(*) FROM crmgraph_w{number}) = 1 THEN 1 "
            f"ELSE crmgraph_refuse('guard crmgraph_w{number}') END AS crmgraph_guard_{number}"
            for number, statement in enumerate(self.statements)
            if statement.guard
        ]
        kept = next(
            (f"crmgraph_w{n}" for n, statement in enumerate(self.statements) if statement.keep),
            None,
        )
        counted = f"SELECT {', '.join(counts) or '1 AS crmgraph_none'}"
        main = f"SELECT n.* FROM ({counted}) n"
        if kept:
            main = f"SELECT k.*, n.* FROM ({counted}) n LEFT JOIN {kept} k ON TRUE"
        return f"WITH {', '.join(parts)} {main}", args

    def rides_on(self, sql: str) -> bool:
        """Whether this batch may go in the same statement as ``sql``, as WITH
        parts before it: ``sql`` only reads (a statement that changes rows
        could reach the batch's tables without naming them, by a cascade),
        it names none of the batch's tables (so seeing them as they were
        before the batch, as one statement's parts do, is seeing them as they
        are), and nothing of the batch is read back (no kept row, no count)."""
        if any(s.keep or s.expect or s.guard for s in self.statements):
            return False
        if CHANGES_ROWS.search(sql):
            return False
        return not any(
            re.search(rf"\b{re.escape(s.table)}\b", sql, re.IGNORECASE) for s in self.statements
        )

    def check(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Raise the error of a statement whose count is not the expected one;
        the kept rows (without the count columns) otherwise."""
        first = rows[0] if rows else {}
        for number, statement in enumerate(self.statements):
            if statement.expect is None:
                continue
            wanted, error = statement.expect
            if first.get(f"crmgraph_count_{number}") != wanted:
                raise error
        if not any(s.keep for s in self.statements):
            return []
        return [
            {k: v for k, v in row.items() if not k.startswith("crmgraph_")}
            for row in rows
            if row.get("id") is not None
        ]


@dataclass
class WriteQueue:
    """The statements one transaction has queued and not yet sent, and the
    rows kept from those it sent, by (table, id)."""

    batches: list[Batch] = field(default_factory=list)
    kept: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    # two tasks of one transaction (a payload's loaders) reading at once: the
    # second waits for the first one's flush, so both read after every write
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # ids handed out to this transaction's rows (IdBlocks.give_back)
    given: list[tuple[str, int]] = field(default_factory=list)
    # called with a kept row once its batch is sent, by (table, id)
    waiting: dict[tuple[str, int], list[Callable[[dict[str, Any]], object]]] = field(
        default_factory=dict
    )

    def keeps(self, table: str, pk: int) -> bool:
        """Whether a queued, unsent INSERT of ``table`` keeps row ``pk``."""
        for batch in self.batches:
            for s in batch.statements:
                if s.keep and s.table == table and "id" in s.columns:
                    at = s.columns.index("id")
                    if any(row[at] == pk for row in s.rows):
                        return True
        return False

    def when_sent(self, table: str, pk: int, callback: Callable[[dict[str, Any]], object]) -> None:
        """Call ``callback`` with kept row ``pk`` of ``table`` once it is sent."""
        self.waiting.setdefault((table, pk), []).append(callback)

    def add(self, statement: Statement) -> None:
        last = self.batches[-1] if self.batches else None
        if last is not None and last.merge(statement):
            return
        if last is None or not last.takes(statement):
            last = Batch()
            self.batches.append(last)
        last.statements.append(statement)

    def insert(self, table: str, values: dict[str, Any], keep: bool = False) -> None:
        self.add(Statement(table, tuple(values), [tuple(values.values())], keep=keep))

    def guard(self, table: str, sql: str, *args: Any) -> None:
        """Queue ``sql``, a locking read of ``table`` that must find exactly
        one row when the batch is sent (module docstring)."""
        self.add(Statement(table, sql=sql, args=args, guard=True))

    async def flush(self, fetch: Fetch) -> None:
        """Send every queued batch, one round trip each, in order."""
        async with self.lock:
            while self.batches:
                await self._send(self.batches.pop(0), fetch)

    async def before(self, sql: str, args: Sequence[Any], fetch: Fetch) -> tuple[str, list[Any]]:
        """The read ``sql`` as it is to be sent: every batch it must see sent
        first, and the last one put in front of it when it may ride on it
        (:meth:`Batch.rides_on`): a write and the read after it, one round
        trip."""
        async with self.lock:
            while len(self.batches) > 1:
                await self._send(self.batches.pop(0), fetch)
            if self.batches and self.batches[0].rides_on(sql):
                parts, queued = self.batches.pop().parts()
                return with_parts(parts, sql), [*queued, *args]
            if self.batches:
                await self._send(self.batches.pop(), fetch)
        return sql, list(args)

    async def _send(self, batch: Batch, fetch: Fetch) -> None:
        sql, args = batch.render()
        rows = batch.check(await fetch(sql, *args))
        table = next((s.table for s in batch.statements if s.keep), "")
        for row in rows:
            self.kept[(table, int(row["id"]))] = row
            for callback in self.waiting.pop((table, int(row["id"])), ()):
                callback(row)

    def __bool__(self) -> bool:
        return bool(self.batches)


def with_parts(parts: list[str], sql: str) -> str:
    """``sql`` with ``parts`` first in its WITH (one made if it has none)."""
    head = sql.lstrip()
    for keyword in ("WITH RECURSIVE ", "WITH "):
        if head[: len(keyword)].upper() == keyword:
            return f"{keyword}{', '.join(parts)}, {head[len(keyword) :]}"
    return f"WITH {', '.join(parts)} {head}"


@dataclass
class IdBlocks:
    """Primary keys handed out before their INSERT: ``ID_BLOCK`` at a time
    from each table's serial sequence, one round trip per block."""

    free: dict[str, list[int]] = field(default_factory=dict)
    no_sequence: set[str] = field(default_factory=set)

    async def next_id(self, table: str, fetch: Fetch) -> int | None:
        """The next id for a row of ``table``; None when its ``id`` has no
        sequence (the row is then inserted at once, as before)."""
        if table in self.no_sequence:
            return None
        ids = self.free.setdefault(table, [])
        if not ids:
            rows = await fetch(
                "SELECT nextval(pg_get_serial_sequence({}, 'id')) AS id "
                "FROM generate_series(1, {})",
                table,
                ID_BLOCK,
            )
            if not rows or rows[0]["id"] is None:
                self.no_sequence.add(table)
                return None
            ids.extend(int(row["id"]) for row in rows)
            ids.sort(reverse=True)  # popped from the end: smallest first
        return ids.pop()

    def give_back(self, given: Sequence[tuple[str, int]]) -> None:
        """Ids handed out to rows no statement wrote (a batch that failed its
        guard), to be handed out again."""
        for table, pk in given:
            self.free.setdefault(table, []).append(pk)
        for ids in self.free.values():
            ids.sort(reverse=True)
