"""The records one party's personal data lives in: its customer row and every
customer merged into it (A merged into B merged into C: a request about C
covers all three, whose rows a merge moved to C and whose own rows still hold
their names), and those rows as JSON-able values."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from crmgraph.db import queries
from crmgraph.db.engine import Database
from crmgraph.db.writes import MAX_CHAIN


def marks(values: Sequence[Any]) -> str:
    return ", ".join("{}" for _ in values)


async def party_ids(db: Database, pk: int) -> list[int]:
    """``pk`` and every customer merged into it, directly or through others."""
    found, frontier = [pk], [pk]
    for _ in range(MAX_CHAIN):
        rows = await db.fetch(
            f"SELECT id FROM customer WHERE merged_into IN ({marks(frontier)}) ORDER BY id",
            *frontier,
        )
        frontier = [row["id"] for row in rows if row["id"] not in found]
        if not frontier:
            break
        found.extend(frontier)
    return found


def jsonable(value: Any) -> Any:
    """A column value as JSON: timestamps and dates in ISO 8601, money as a
    decimal string, SQLite's 0/1 booleans left as they are."""
    if isinstance(value, datetime.datetime):
        return queries.read_timestamp(value).isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def plain_rows(
    rows: Iterable[dict[str, Any]], json_columns: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Rows as JSON-able dicts; ``json_columns`` hold JSON (text on SQLite)."""
    return [
        {
            column: queries.load_json(value)
            if column in json_columns and value
            else jsonable(value)
            for column, value in row.items()
        }
        for row in rows
    ]
