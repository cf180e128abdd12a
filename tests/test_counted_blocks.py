"""Block sizes a transaction counted under the blocks' locks are kept for the
rest of it (crmgraph.db.match_crowding.block_counts): an import counted the
same crowded name blocks at every batch, fetching from the heap every holder
it had written itself. Within one transaction, namesakes join a block until it
is crowded and then leave it back under the limit: the kept counts follow the
transaction's own writes, a crowded block is not counted again, and the stored
pairs are those a computation from scratch gives."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db import match_crowding, match_keys
from crmgraph.db.bulk import insert_rows
from crmgraph.db.engine import Database
from crmgraph.db.match_score import NAME
from crmgraph.testing import settings_for
from tests.test_duplicates import stored_and_recomputed
from tests.test_pairs_crowded import Counted, customer, keys_upkeep_counted

LIMIT = 5
NAMESAKES = 9


def namesake() -> dict[str, Any]:
    """Of one kind and with no identifier, namesakes pair through the name alone."""
    return {"name": "Ana Lopez"}


async def create(db: Database, fields: dict[str, Any]) -> tuple[int, int]:
    """A namesake written as an import batch writes it; the key rows its
    upkeep fetched from the heap (PostgreSQL: 0 on SQLite)."""
    (pk,) = await insert_rows(db, "customer", [customer(fields)])
    _, _, read = await keys_upkeep_counted(db, pk, fields)
    return pk, read


async def counted_again(db: Database) -> int:
    """The statements a count of the crowded name keys runs now."""
    keys = [(NAME, key) for key in ("2:an|lopez", "2:ana|lo")]
    with Counted(db) as counted:
        sizes = await match_crowding.block_counts(db, keys, LIMIT + 1)
    assert all(match_crowding.crowded(size) for size in sizes.values()), sizes
    return counted.statements


async def crowd_and_thin(db: Database) -> tuple[list[int], int]:
    reads = []
    async with db.transaction():
        ids = []
        for _ in range(NAMESAKES):
            pk, read = await create(db, namesake())
            ids.append(pk)
            reads.append(read)
        statements = await counted_again(db)
        gone = ids[: NAMESAKES - LIMIT + 1]  # back under the limit: LIMIT - 1 left
        await db.fetch(
            f"UPDATE customer SET deleted_at = updated_at WHERE id IN "
            f"({', '.join('{}' for _ in gone)})",
            *gone,
        )
        await match_keys.refresh_match_keys(db, gone)
    return reads, statements


def test_a_transaction_counts_a_crowded_block_once_and_keeps_pairs_exact(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(match_crowding, "BLOCK_LIMIT", LIMIT)

    async def work(state: AppState) -> tuple[list[int], int, Any, Any, int]:
        reads, statements = await crowd_and_thin(state.db)
        stored, recomputed = await stored_and_recomputed(state.db)
        left = await state.db.fetch("SELECT COUNT(*) AS n FROM duplicate_pair")
        return reads, statements, stored, recomputed, int(left[0]["n"])

    reads, statements, stored, recomputed, pairs = asyncio.run(
        with_state(settings_for(database_url), work)
    )
    assert statements == 0  # both name keys known crowded: nothing read
    assert stored == recomputed
    assert pairs == (LIMIT - 1) * (LIMIT - 2) // 2  # the namesakes left pair again
    if not database_url.startswith("sqlite"):
        # each namesake past the crossing reads no holder of the crowded block:
        # its keys' locks were held since the block was counted
        assert reads[LIMIT + 1 :] == [0] * (NAMESAKES - LIMIT - 1), reads
