"""Multi-row INSERTs for writes of many rows at once (the demo seed, match
keys, imports): a few statements per thousand rows instead of one per row.
On PostgreSQL inside a transaction, a chunk of :data:`COPY_FROM_ROWS` rows or
more goes by COPY (:func:`copy_rows`): the same rows, triggers and
constraints, without parsing and planning a statement of thousands of
parameters."""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from crmgraph.db import text_keys
from crmgraph.db.engine import Database, begin_if_lazy, current_counter
from crmgraph.db.sqlite_connections import run_statement
from crmgraph.db.turns import sends_behind, writing_behind

Row = dict[str, Any]

MAX_ROWS_PER_INSERT = 500
# SQLite binds at most 32766 parameters per statement, PostgreSQL 32767.
MAX_PARAMS_PER_INSERT = 30_000


async def insert_rows(
    db: Database, table: str, rows: list[Row], returning: bool = True
) -> list[int]:
    """Multi-row INSERTs in batches; with ``returning``, the new ids in row order."""
    if not rows:
        return []
    if table in text_keys.DERIVED:  # names' folded copies (customers, contacts)
        rows = [text_keys.with_text_keys(table, row) for row in rows]
    queued = await queue_rows(db, table, rows, returning)
    if queued is not None:
        return queued
    await db.flush_writes()  # what the transaction queued goes first
    columns = tuple(rows[0])
    size = rows_per_insert(columns)
    if not db.is_sqlite and await begin_if_lazy(db.engine) is not None:
        size = ROWS_PER_COPY  # by COPY, which binds no parameters (insert_batch)
    ids: list[int] = []
    for chunk in batches(rows, size):
        ids.extend(await insert_batch(db, table, columns, chunk, returning))
    return ids


async def queue_rows(
    db: Database, table: str, rows: list[Row], returning: bool
) -> list[int] | None:
    """A few rows in a transaction that queues its writes
    (``Database.write_queue``) join its queue, ids handed out now; None
    when they are sent at once (no queue, many rows, a table without a
    sequence)."""
    queue = db.write_queue()
    if queue is None or len(rows) > QUEUED_ROWS:
        return None
    ids = [await db.next_id(table) for _ in rows] if returning else []
    if None in ids:
        return None
    for number, row in enumerate(rows):
        queue.insert(table, {"id": ids[number], **row} if returning else row)
    return [pk for pk in ids if pk is not None]


# rows of one insert_rows call a write queues (createCustomer's one customer,
# its roles and first stage entry); more are sent at once, in multi-row INSERTs
QUEUED_ROWS = 8


def batches(rows: list[Row], size: int) -> Iterator[list[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def rows_per_insert(columns: tuple[str, ...]) -> int:
    return max(1, min(MAX_ROWS_PER_INSERT, MAX_PARAMS_PER_INSERT // len(columns)))


async def insert_batch(
    db: Database, table: str, columns: tuple[str, ...], chunk: list[Row], returning: bool
) -> list[int]:
    """One chunk: by COPY where it can go so, else multi-row INSERTs of at
    most ``rows_per_insert`` rows (a chunk sized for COPY is split)."""
    transaction = await begin_if_lazy(db.engine)
    if transaction is not None and not db.is_sqlite and len(chunk) >= COPY_FROM_ROWS:
        copied = await copy_rows(transaction, table, columns, chunk, returning)
        if copied is not None:
            return copied
    ids: list[int] = []
    for part in batches(chunk, rows_per_insert(columns)):
        ids.extend(await insert_values(db, transaction, table, columns, part, returning))
    return ids


async def insert_values(
    db: Database,
    transaction: Any,
    table: str,
    columns: tuple[str, ...],
    chunk: list[Row],
    returning: bool,
) -> list[int]:
    names = ", ".join(f'"{column}"' for column in columns)  # stage_change has a "by" column
    args = [value for record in tuples(chunk, columns) for value in record]
    if transaction is None:
        marks = "(" + ", ".join("{}" for _ in columns) + ")"
        sql = f"INSERT INTO {table} ({names}) VALUES {', '.join(marks for _ in chunk)}"
        result = await db.fetch(f"{sql} RETURNING id" if returning else sql, *args)
    else:
        sql = f"INSERT INTO {table} ({names}) VALUES {native_marks(db, len(columns), len(chunk))}"
        result = await run_native(db, transaction, sql, args, returning)
    # Both engines assign ids in VALUES order within one statement, but neither
    # promises RETURNING comes back in that order: sort to map rows to ids.
    return sorted(int(r["id"]) for r in result) if returning else []


# rows from which a chunk goes by COPY (PostgreSQL, in a transaction), and at most
COPY_FROM_ROWS = 50
ROWS_PER_COPY = 10_000


async def copy_rows(
    transaction: Any, table: str, columns: tuple[str, ...], chunk: list[Row], returning: bool
) -> list[int] | None:
    """PostgreSQL's COPY of a chunk, on the transaction's connection: the same
    rows, triggers and constraints as the multi-row INSERT, without a statement
    of thousands of parameters to parse and plan. With ``returning``, the ids
    are taken from the table's sequence first, in row order, as the INSERT's
    (None, nothing written, for a table without one: the INSERT then). Under
    :func:`crmgraph.db.turns.writing_behind` the COPY is sent behind: the
    caller goes on while PostgreSQL runs it."""
    connection, counter = transaction.connection, current_counter.get()
    records = tuples(chunk, columns)
    ids: list[int] = []
    if returning:
        sql = "SELECT nextval(pg_get_serial_sequence($1, 'id')) AS id FROM generate_series(1, $2)"
        if counter is not None:
            counter.record(sql)
        async with transaction.sending:
            found = await connection.fetch(sql, table, len(chunk))
        if any(row["id"] is None for row in found):
            return None
        ids = sorted(int(row["id"]) for row in found)
        records = [(pk, *record) for pk, record in zip(ids, records, strict=True)]
        columns = ("id", *columns)
    if counter is not None:
        counter.record(f"COPY {table} ({', '.join(columns)}) FROM STDIN")

    def copy() -> Awaitable[Any]:
        return connection.copy_records_to_table(table, records=records, columns=list(columns))

    if sends_behind():
        await transaction.sending.behind(copy)
    else:
        async with transaction.sending:
            await copy()
    return ids


def tuples(chunk: list[Row], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Each row's values in column order, by ``itemgetter``: an import builds
    millions of them, and a generator per row cost more than its COPY."""
    pick = operator.itemgetter(*columns)
    if len(columns) == 1:
        return [(pick(row),) for row in chunk]
    return [pick(row) for row in chunk]


def native_marks(db: Database, width: int, count: int) -> str:
    """The VALUES lists in the driver's own placeholders (``$n`` or ``?``)."""
    if db.is_sqlite:
        row = "(" + ", ".join("?" for _ in range(width)) + ")"
        return ", ".join(row for _ in range(count))
    return ", ".join(
        "(" + ", ".join(f"${start + i}" for i in range(1, width + 1)) + ")"
        for start in range(0, width * count, width)
    )


async def run_native(
    db: Database, transaction: Any, sql: str, args: list[Any], returning: bool
) -> list[Any]:
    """Run on the transaction's own connection, past piccolo's QueryString,
    whose parsing of thousands of ``{}`` costs more than the INSERT itself.
    Values are adapted as piccolo adapts them (it registers sqlite3 adapters)."""
    counter = current_counter.get()
    if counter is not None:
        counter.record(sql)
    if returning:
        sql += " RETURNING id"
    connection = transaction.connection
    if not db.is_sqlite:
        async with transaction.sending:
            return await connection.fetch(sql, *args)
    return await run_statement(connection, sql, args)  # rows as dicts, as piccolo's


async def without_jit(db: Database) -> None:
    """PostgreSQL: no JIT compilation for the rest of the current transaction.
    A bulk writer's statements carry a batch's thousands of keys, so the
    planner's cost passes ``jit_above_cost`` and LLVM compiles (with inlining
    and optimisation) for 600 ms a statement that runs in 20 ms: the import's
    pair upkeep at 1,000,000 customers took 216 ms a batch, mostly that.
    Reads elsewhere keep the server's setting."""
    if not db.is_sqlite:
        await db.fetch("SET LOCAL jit = off")


@asynccontextmanager
async def writes_behind(db: Database) -> AsyncIterator[None]:
    """Within: COPYs that return nothing are sent behind (:mod:`crmgraph.db.turns`);
    at the end they are waited for, so that one that failed fails here, in
    the caller's transaction (a dry run rolls back without a COMMIT)."""
    with writing_behind():
        yield
    transaction = db.engine.current_transaction.get()
    if transaction is not None and not db.is_sqlite:
        await transaction.sending.settle()
