"""Multi-row INSERTs for writes of many rows at once (the demo seed, match
keys, imports): a few statements per thousand rows instead of one per row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crmgraph.db.engine import Database

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
    columns = tuple(rows[0])
    size = max(1, min(MAX_ROWS_PER_INSERT, MAX_PARAMS_PER_INSERT // len(columns)))
    ids: list[int] = []
    for chunk in batches(rows, size):
        ids.extend(await insert_batch(db, table, columns, chunk, returning))
    return ids


def batches(rows: list[Row], size: int) -> Iterator[list[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def insert_batch(
    db: Database, table: str, columns: tuple[str, ...], chunk: list[Row], returning: bool
) -> list[int]:
    marks = "(" + ", ".join("{}" for _ in columns) + ")"
    names = ", ".join(f'"{column}"' for column in columns)  # stage_change has a "by" column
    sql = f"INSERT INTO {table} ({names}) VALUES {', '.join(marks for _ in chunk)}"
    args = [row[column] for row in chunk for column in columns]
    if not returning:
        await db.fetch(sql, *args)
        return []
    result = await db.fetch(f"{sql} RETURNING id", *args)
    # Both engines assign ids in VALUES order within one statement, but neither
    # promises RETURNING comes back in that order: sort to map rows to ids.
    return sorted(int(r["id"]) for r in result)
