"""The trigger-kept cohort counts (crmgraph.db.cohort_rollup) equal a count
from scratch after every kind of write that changes them, on both engines:
interactions added (a new month, a month already active), removed (a month's
last, not the last), moved to another month and to another customer; a
customer deleted, restored, re-dated and removed with its history; stage
entries added (a new type, an earlier first entry), moved and removed;
tables emptied (PostgreSQL's TRUNCATE); and
the cohort report over every customer and over one type equal from the counts
and from the history."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from crmgraph.analytics import cohorts
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import AppState, with_state
from crmgraph.db import cohort_rollup, queries, writes
from crmgraph.db.activity import month_number
from crmgraph.demo import seed_demo
from crmgraph.testing import settings_for

NOW = datetime.datetime(2026, 11, 18, 15, 30, tzinfo=datetime.UTC)


async def stored(db: Any) -> dict[str, set[tuple]]:
    # delta rows: the count of a key is the sum of its rows
    sizes = await db.fetch(
        "SELECT kind, cohort, SUM(customers) AS n FROM cohort_size "
        "GROUP BY kind, cohort HAVING SUM(customers) <> 0"
    )
    active = await db.fetch(
        "SELECT kind, cohort, month, SUM(customers) AS n FROM cohort_activity "
        "GROUP BY kind, cohort, month HAVING SUM(customers) <> 0"
    )
    return {
        "sizes": {tuple(r.values()) for r in sizes},
        "active": {tuple(r.values()) for r in active},
    }


async def counted(db: Any) -> dict[str, set[tuple]]:
    """The counts from the customers, their history and their interactions."""
    members = cohort_rollup.members_select(None, db.is_sqlite)
    months = (
        f"SELECT DISTINCT customer AS customer_id, {month_number('occurred_at', db.is_sqlite)} "
        "AS month FROM interaction WHERE customer IS NOT NULL"
    )
    sizes = await db.fetch(
        f"WITH r (customer_id, kind, at, cohort) AS ({members}) "
        "SELECT kind, cohort, COUNT(*) AS n FROM r GROUP BY kind, cohort"
    )
    return {"sizes": {tuple(r.values()) for r in sizes}, "active": await active_pairs(db, months)}


async def active_pairs(db: Any, months: str) -> set[tuple]:
    members = cohort_rollup.members_select(None, db.is_sqlite)
    rows = await db.fetch(
        f"WITH r (customer_id, kind, at, cohort) AS ({members}), m AS ({months}) "
        "SELECT r.kind, r.cohort, m.month, COUNT(*) AS n FROM r "
        "JOIN m ON m.customer_id = r.customer_id GROUP BY r.kind, r.cohort, m.month"
    )
    return {tuple(r.values()) for r in rows}


async def same(db: Any) -> None:
    assert await stored(db) == await counted(db)


async def one(db: Any, sql: str, *args: Any) -> Any:
    rows = await db.fetch(sql, *args)
    return next(iter(rows[0].values()))


async def interaction_writes(db: Any) -> None:
    a = await one(db, "SELECT MIN(id) FROM customer WHERE deleted_at IS NULL")
    b = await one(db, "SELECT MAX(id) FROM customer WHERE deleted_at IS NULL")
    for days in (400, 3):  # a month long before (new), then a recent one
        await writes.insert(db, "interaction", {
            "customer": a, "channel": "EMAIL", "direction": "OUTBOUND", "subject": "t",
            "occurred_at": NOW - datetime.timedelta(days=days),
        })  # fmt: skip
        await same(db)
    last = await one(db, "SELECT MAX(id) FROM interaction WHERE customer = {}", a)
    first = await one(db, "SELECT MIN(id) FROM interaction WHERE customer = {}", b)
    await db.fetch(
        "UPDATE interaction SET occurred_at = (SELECT occurred_at FROM interaction "
        "WHERE id = {}) WHERE id = {}",
        first,
        last,
    )
    await same(db)
    await db.fetch("UPDATE interaction SET customer = {} WHERE id = {}", b, last)
    await same(db)
    await db.fetch("DELETE FROM interaction WHERE customer = {} AND id <> {}", b, last)
    await same(db)
    await db.fetch("DELETE FROM interaction WHERE id = {}", last)
    await same(db)


async def customer_writes(db: Any) -> None:
    a = await one(db, "SELECT MIN(id) FROM customer WHERE deleted_at IS NULL")
    b = await one(db, "SELECT MAX(id) FROM customer WHERE deleted_at IS NULL")
    await db.fetch("UPDATE customer SET deleted_at = updated_at WHERE id = {}", a)
    await same(db)
    await db.fetch("UPDATE customer SET deleted_at = NULL WHERE id = {}", a)
    await same(db)
    await db.fetch(
        "UPDATE customer SET created_at = (SELECT MIN(created_at) FROM customer) WHERE id = {}", b
    )
    await same(db)
    await db.fetch("DELETE FROM customer WHERE id = {}", b)
    await same(db)


async def stage_writes(db: Any) -> None:
    a = await one(db, "SELECT MAX(id) FROM customer WHERE deleted_at IS NULL")
    earliest = await one(db, "SELECT MIN(at) FROM stage_change")
    for kind in ("guarantor", "client"):  # a type it may not have, then an earlier entry
        await db.fetch(
            "INSERT INTO stage_change (customer, kind, to_stage, at, irregular) "
            "SELECT {}, {}, 'x', MIN(at), 0 FROM stage_change",
            a,
            kind,
        )
        await same(db)
    await db.fetch(
        "UPDATE stage_change SET at = (SELECT MAX(at) FROM stage_change) "
        "WHERE customer = {} AND at = {}",
        a,
        earliest,
    )
    await same(db)
    await db.fetch("DELETE FROM stage_change WHERE customer = {} AND kind = 'guarantor'", a)
    await same(db)


async def reports_agree(state: AppState) -> None:
    """Both ways of answering (the counts, the history) give the same cohorts."""
    db = state.db
    for q in (queries.CustomerQuery(), queries.CustomerQuery(kinds=("client",))):
        for starts in (None, NOW - datetime.timedelta(days=90)):
            scope = AnalyticsScope.create(db, q, starts, NOW)
            way = cohorts.rollup_kind(scope, None)
            assert way is not None
            assert not await cohorts.later_interactions(db, scope)
            rolled = await cohorts.from_rollup(scope, way).fetch(db)
            read = await cohorts.from_history(scope, None).fetch(db)
            assert cohorts.cohorts_of(scope, rolled) == cohorts.cohorts_of(scope, read)
            assert cohorts.cohorts_of(scope, rolled)


def test_cohort_counts_follow_every_write(database_url: str) -> None:
    async def work(state: AppState) -> None:
        db = state.db
        await seed_demo(db, state.catalog, customers=60, now=NOW)
        await same(db)
        assert (await stored(db))["active"]
        await reports_agree(state)
        await interaction_writes(db)
        await customer_writes(db)
        await stage_writes(db)
        await reports_agree(state)
        if not db.is_sqlite:  # emptied tables (no TRUNCATE on SQLite)
            await db.fetch("TRUNCATE stage_change")
            await same(db)
            await db.fetch("TRUNCATE customer CASCADE")
            await same(db)
            assert await stored(db) == {"sizes": set(), "active": set()}

    asyncio.run(with_state(settings_for(database_url), work))


async def fold_state(db: Any, table: str) -> tuple[int, int]:
    rows = await db.fetch(f"SELECT COUNT(*) AS n, MAX(id) AS top FROM {table}")
    return int(rows[0]["n"]), int(rows[0]["top"])


def test_delta_rows_fold_and_stay_exact(database_url: str) -> None:
    """Writers insert delta rows; past ``every`` of them a fold sums them
    into one row per key (crmgraph.db.delta_fold), and the counts are the
    same before and after it."""

    async def work(state: AppState) -> None:
        db = state.db
        await seed_demo(db, state.catalog, customers=60, now=NOW)
        a = await one(db, "SELECT MIN(id) FROM customer WHERE deleted_at IS NULL")
        tops = {t.table: (await fold_state(db, t.table))[1] for t in cohort_rollup.DELTAS}
        for _ in range(140):  # each a -1 and a +1 per cohort and per active month of ``a``
            await db.fetch("UPDATE customer SET deleted_at = updated_at WHERE id = {}", a)
            await db.fetch("UPDATE customer SET deleted_at = NULL WHERE id = {}", a)
        await same(db)
        for t in cohort_rollup.DELTAS:
            rows, top = await fold_state(db, t.table)
            written = top - tops[t.table]
            # more rows written than ``every``: folded, far fewer rows left than written
            assert written > t.every and rows < written / 2, (t.table, rows, written)

    asyncio.run(with_state(settings_for(database_url), work))


async def as_counters(db: Any) -> None:
    """The tables as migration 0038 made them before 0048: one counter row
    per key, a primary key on the counted columns."""
    for t in cohort_rollup.DELTAS:
        keys, old = t.key_list, f"{t.table}_old"
        await db.fetch(f"CREATE TABLE {old} AS SELECT {keys}, SUM(customers) AS customers "
                       f"FROM {t.table} GROUP BY {keys}")  # fmt: skip
        await db.fetch(f"DROP TABLE {t.table}")
        await db.fetch(
            f"CREATE TABLE {t.table} ({cohort_rollup.COLUMNS[t.table]}, PRIMARY KEY ({keys}))"
        )
        await db.fetch(f"INSERT INTO {t.table} SELECT * FROM {old}")
        await db.fetch(f"DROP TABLE {old}")


def test_migration_turns_counters_into_deltas(database_url: str) -> None:
    """0048's statements on counter tables: the same counts, then exact
    after writes that insert several rows per key."""

    async def work(state: AppState) -> None:
        db = state.db
        await seed_demo(db, state.catalog, customers=60, now=NOW)
        before = await stored(db)
        await as_counters(db)
        for statement in cohort_rollup.to_deltas("sqlite" if db.is_sqlite else "postgres"):
            await db.fetch(statement)
        assert await stored(db) == before
        await interaction_writes(db)
        await customer_writes(db)

    asyncio.run(with_state(settings_for(database_url), work))
