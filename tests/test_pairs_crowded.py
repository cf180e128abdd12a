"""Crowded name blocks at scale (issue 28): thousands of customers share a
surname and a first-name gram ("An… Garcia"), so their name blocks are far
over ``BLOCK_LIMIT``; a few true duplicates hide among them, each
sharing an e-mail, a phone or a tax id. The rebuild of the stored pairs and a
create's pairs lookup find exactly those, and their work (pairs compared,
statements, rows read) stays the same when the crowd triples."""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

from crmgraph.app import AppState, with_state
from crmgraph.db import match_crowding, match_keys
from crmgraph.db.bulk import insert_rows
from crmgraph.db.engine import Database
from crmgraph.db.match_blocks import BlockWork
from crmgraph.db.match_score import Probe
from crmgraph.testing import settings_for
from tests.test_duplicates import stored_and_recomputed

GIVEN = ("Ana", "Andrea", "Angel", "Antonio", "Andres")
# the true duplicates: one side of each pair, then the other (a typo, other
# case or format of the identifier they share)
HIDDEN = (
    ({"name": "Andrea Garcia", "email": "andrea.g@x.example"},
     {"name": "Andrea García", "email": "ANDREA.G@x.example"}),
    ({"name": "Ana Garcia", "phone": "+34 600 111 222"},
     {"name": "Ana Garcia", "phone": "+34600111222"}),
    ({"name": "Angel Garcia", "attributes": {"tax_id": "B12345678"}},
     {"name": "Angel Garcia", "attributes": {"tax_id": "b-1234567-8"}}),
    ({"name": "Antonio Garcia Fernandez", "email": "tono@y.example"},
     {"name": "Antonio Garcia Fernandes", "email": "tono@y.example"}),
)  # fmt: skip


def customer(fields: dict[str, Any]) -> dict[str, Any]:
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    return {
        "kind": "client",
        "name": fields["name"],
        "email": fields.get("email"),
        "phone": fields.get("phone"),
        "attributes": json.dumps(fields.get("attributes", {})),
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def crowd(start: int, count: int) -> list[dict[str, Any]]:
    """Namesakes: two in three with an e-mail and a phone of their own (they
    pair with nobody), one in three with neither (of one kind, these would all
    pair with each other through the name, were the block not crowded)."""
    rows = []
    for n in range(start, start + count):
        fields = {"name": f"{GIVEN[n % len(GIVEN)]} Garcia"}
        if n % 3:
            fields.update(email=f"crowd{n}@z.example", phone=f"+3491{n:07d}")
        rows.append(customer(fields))
    return rows


async def add(db: Database, rows: list[dict[str, Any]]) -> list[int]:
    async with db.transaction():
        return await insert_rows(db, "customer", rows)


async def rebuild(db: Database) -> tuple[set[tuple[int, int]], BlockWork]:
    work = BlockWork()
    async with db.transaction():
        await match_keys.rebuild_match_keys(db)
        await match_keys.rebuild_duplicate_pairs(db, work=work)
    rows = await db.fetch("SELECT customer_a, customer_b FROM duplicate_pair")
    return {(row["customer_a"], row["customer_b"]) for row in rows}, work


class Counted:
    """The statements a piece of work runs and the rows they return: within
    ``with Counted(db) as counted:``, every ``db.fetch`` is counted."""

    def __init__(self, db: Database) -> None:
        self.statements = self.rows = 0
        self._db = db
        self._fetch = db.fetch

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        found = await self._fetch(sql, *args)
        self.statements += 1
        self.rows += len(found)
        return found

    def __enter__(self) -> Counted:
        self._db.fetch = self.fetch  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self._db.fetch


async def heap_rows_read(db: Database) -> int:
    """PostgreSQL: rows of customer_match_key this transaction fetched by index
    (its keys are not all-visible yet, so an index-only scan fetches them too)."""
    found = await db.fetch(
        "SELECT pg_stat_get_xact_tuples_fetched('customer_match_key'::regclass) AS n"
    )
    return int(found[0]["n"])


async def keys_upkeep_counted(
    db: Database, pk: int, fields: dict[str, Any]
) -> tuple[int, int, int]:
    """The keys and pairs of customer ``pk`` (just written with ``fields``)
    stored, in the caller's transaction: the statements and rows of that
    upkeep, and on PostgreSQL the key rows it fetched."""
    before = 0 if db.is_sqlite else await heap_rows_read(db)
    with Counted(db) as counted:
        await match_keys.insert_match_keys(db, {pk: Probe(**probe_fields(fields))})
        await db.flush_writes()
    read = 0 if db.is_sqlite else await heap_rows_read(db) - before
    return counted.statements, counted.rows, read


async def create_like_a_twin(db: Database, twin: dict[str, Any]) -> tuple[int, int, int, int]:
    """A customer written as createCustomer writes it (the row, then its keys
    and pairs), rolled back: the statements and rows of the pairs' lookup, the
    key rows it fetched (PostgreSQL) and the pairs it found."""

    class Done(Exception):
        pass

    try:
        async with db.transaction():
            (pk,) = await insert_rows(db, "customer", [customer(twin)])
            statements, rows, read = await keys_upkeep_counted(db, pk, twin)
            pairs = await db.fetch(
                "SELECT COUNT(*) AS n FROM duplicate_pair WHERE customer_b = {}", pk
            )
            found = (statements, rows, read, int(pairs[0]["n"]))
            raise Done
    except Done:
        return found


def probe_fields(fields: dict[str, Any]) -> dict[str, Any]:
    tax_id = fields.get("attributes", {}).get("tax_id")
    plain = {k: v for k, v in fields.items() if k != "attributes"}
    return {**plain, "tax_id": tax_id, "kind": "client"}


def test_true_duplicates_are_found_in_crowded_blocks_with_bounded_work(
    database_url: str,
) -> None:
    async def run(state: AppState) -> None:
        db = state.db
        hidden: set[tuple[int, int]] = set()
        await add(db, crowd(0, 1000))
        for left, right in HIDDEN:
            ids = await add(db, [customer(left), customer(right)])
            hidden.add((min(ids), max(ids)))

        pairs, small = await rebuild(db)
        assert pairs == hidden
        assert small.crowded_blocks >= 2 and small.largest_block <= match_crowding.BLOCK_LIMIT
        twin = dict(HIDDEN[0][0], name="Andrea Garcia")
        write_small = await create_like_a_twin(db, twin)
        assert write_small[3] == 2  # the twin pairs with both Andreas of the e-mail

        await add(db, crowd(1000, 2000))  # three times the crowd
        pairs, large = await rebuild(db)
        assert pairs == hidden
        assert (large.compared, large.largest_block) == (small.compared, small.largest_block)
        assert await create_like_a_twin(db, twin) == write_small
        stored, recomputed = await stored_and_recomputed(db)
        assert set(stored) == set(recomputed) == hidden

    asyncio.run(with_state(settings_for(database_url), run))
