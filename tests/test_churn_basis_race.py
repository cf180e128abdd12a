"""Two transactions logging a rating for the same churn candidate at once
(PostgreSQL): the second one's trigger waits for the first one's lock on the
customer's tally key, then reads the interactions with a snapshot holding
the first one's rating, so the kept row holds both (crmgraph.db.churn_basis).
Without the lock it would write over the row with one computed before the
first committed, and lose that rating. SQLite has one writer and no such
table: there the test only checks the table is absent."""

from __future__ import annotations

import asyncio
import datetime

import asyncpg
import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db import churn_basis
from crmgraph.demo import seed_demo
from crmgraph.testing import settings_for

NOW = datetime.datetime(2026, 7, 1, tzinfo=datetime.UTC)
INSERT = (
    "INSERT INTO interaction (customer, channel, direction, occurred_at, subject, satisfaction, "
    "created_at) VALUES ($1, 'EMAIL', 'INBOUND', $2, 'race', $3, $2)"
)


async def waiting(watcher: asyncpg.Connection, pid: int) -> None:
    """Until the backend ``pid`` waits for a lock (a condition, polled)."""
    for _ in range(10_000):
        event = await watcher.fetchval(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
        )
        if event == "Lock":
            return
    raise AssertionError("the second writer never waited for the first")


async def race(url: str, customer: int) -> None:
    first, second, watcher = [await asyncpg.connect(url) for _ in range(3)]
    try:
        one, two = first.transaction(), second.transaction()
        await one.start()
        await two.start()
        await first.execute(INSERT, customer, NOW - datetime.timedelta(days=3), 1)
        blocked = asyncio.ensure_future(
            second.execute(INSERT, customer, NOW - datetime.timedelta(days=2), 2)
        )
        await waiting(watcher, second.get_server_pid())
        await one.commit()
        await blocked
        await two.commit()
    finally:
        for conn in (first, second, watcher):
            await conn.close()


def test_concurrent_ratings_of_one_candidate_are_both_kept(database_url: str) -> None:
    async def work(state: AppState) -> int:
        await seed_demo(state.db, state.catalog, customers=40, now=NOW)
        if state.db.is_sqlite:
            rows = await state.db.fetch(
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE name = {}", churn_basis.TABLE
            )
            assert rows[0]["n"] == 0
            return 0
        rows = await state.db.fetch(f"SELECT MIN(customer) AS id FROM {churn_basis.TABLE}")
        return int(rows[0]["id"])

    customer = asyncio.run(with_state(settings_for(database_url), work))
    if not customer:
        pytest.skip("SQLite keeps no churn_basis")

    asyncio.run(race(database_url, customer))

    async def check(state: AppState) -> None:
        kept = await state.db.fetch(
            f"SELECT rated_at, rating_cum FROM {churn_basis.TABLE} WHERE customer = {{}}",
            customer,
        )
        fresh = await state.db.fetch(
            f"SELECT rated_at, rating_cum FROM ({churn_basis.rows_of(str(customer))}) r"
        )
        assert kept == fresh
        assert NOW - datetime.timedelta(days=3) in kept[0]["rated_at"]
        assert NOW - datetime.timedelta(days=2) in kept[0]["rated_at"]

    asyncio.run(with_state(settings_for(database_url), check))
