"""Migration 0061: on PostgreSQL a customer's match keys go with it by
triggers, not by a foreign key checked on every key written. A DELETE of
customers takes their keys along, and those of no other; a TRUNCATE of the
customers empties the keys; no foreign key is left on the keys. Reversed,
the foreign key comes back and the triggers go. SQLite keeps its foreign
key and cascades the same."""

from __future__ import annotations

import asyncio
import importlib

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db import piccolo_conf
from crmgraph.db.engine import make_engine
from crmgraph.db.match_keys import refresh_match_keys
from crmgraph.testing import settings_for

MIGRATION = importlib.import_module("crmgraph.db.migrations.crmgraph_0061_match_keys_cascade")
CUSTOMERS = (
    "INSERT INTO customer (kind, name, name_sort, name_folded, email, email_folded, attributes, "
    "version, created_at, updated_at) VALUES "
    "('client', 'Ada Lovelace', 'ada lovelace', 'ada lovelace', 'ada@example.com', "
    "'ada@example.com', {}, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP), "
    "('client', 'Alan Turing', 'alan turing', 'alan turing', 'alan@example.com', "
    "'alan@example.com', {}, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
)
KEYS = "SELECT customer, COUNT(*) AS n FROM customer_match_key GROUP BY customer ORDER BY customer"
FOREIGN_KEY = (
    "SELECT conname FROM pg_constraint WHERE conrelid = 'customer_match_key'::regclass "
    "AND contype = 'f'"
)
TRIGGERS = (
    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'customer'::regclass "
    "AND tgname LIKE 'customer_match_keys_%' ORDER BY tgname"
)


async def keys_after_deletes(state: AppState) -> tuple[list[int], list[tuple[int, int]], list]:
    db = state.db
    async with db.transaction():
        ids = [row["id"] for row in await db.fetch(CUSTOMERS, "{}", "{}")]  # no attributes
        await refresh_match_keys(db, ids)
    before = [(row["customer"], row["n"]) for row in await db.fetch(KEYS)]
    async with db.transaction():
        await db.fetch("DELETE FROM customer WHERE id = {}", ids[0])
    after = [(row["customer"], row["n"]) for row in await db.fetch(KEYS)]
    return ids, before, after


def test_a_deleted_customers_keys_go_with_it(database_url: str) -> None:
    settings = settings_for(database_url)
    ids, before, after = asyncio.run(with_state(settings, keys_after_deletes))
    assert [pk for pk, _ in before] == ids and all(n >= 2 for _, n in before), before
    assert after == before[1:]  # the other customer's keys stay


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_postgres_keys_follow_a_truncate_and_no_foreign_key_is_checked(
    database_url: str,
) -> None:
    async def run(state: AppState) -> tuple[list, list, list]:
        await keys_after_deletes(state)
        foreign_keys = await state.db.fetch(FOREIGN_KEY)
        await state.db.fetch("TRUNCATE customer CASCADE")
        return foreign_keys, await state.db.fetch(KEYS), await state.db.fetch(TRIGGERS)

    foreign_keys, keys, triggers = asyncio.run(with_state(settings_for(database_url), run))
    assert foreign_keys == [] and keys == []
    assert [row["tgname"] for row in triggers] == [
        "customer_match_keys_cleared",
        "customer_match_keys_gone",
    ]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_reversed_the_foreign_key_comes_back(database_url: str) -> None:
    async def run() -> list[list[str]]:
        engine = make_engine(settings_for(database_url))
        piccolo_conf.DB = engine
        manager = await MIGRATION.forwards()
        seen = []
        for backwards in (True, False):
            await manager.run(backwards=backwards)
            rows = [*await engine.run_ddl(FOREIGN_KEY), *await engine.run_ddl(TRIGGERS)]
            seen.append([row.get("conname") or row["tgname"] for row in rows])
        return seen

    reversed_, forward = asyncio.run(run())
    assert reversed_ == [MIGRATION.CONSTRAINT]
    assert forward == ["customer_match_keys_cleared", "customer_match_keys_gone"]
