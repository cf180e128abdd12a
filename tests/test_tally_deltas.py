"""The tallies of every customer's interactions, ``interaction_day`` and
``purchase_month`` (crmgraph.db.tallies), as delta rows folded by
crmgraph.db.delta_fold: writers of rated or bought interactions of one day,
channel, outcome and direction only insert rows, so none waits on another.

- On PostgreSQL, 8 writers on their own connections each insert interactions
  of the same day and channel in a transaction left open until all 8 have
  inserted: every insert returns while the others are uncommitted, and none
  is blocked meanwhile (pg_locks). With counter rows upserted in place the
  second writer waited on the first's row lock until its lock_timeout.
- On both engines, 8 clients log rated purchases of one day and channel at
  once over a live app, each at its first attempt, and the rollups are what
  ``interaction`` counts again, after later updates and deletes too.
- Migration 0052 turns counter tables into delta rows with the same counts.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db import activity
from crmgraph.db.migrations import crmgraph_0052_tally_deltas as m0052
from crmgraph.db.tallies import DeltaRollup
from crmgraph.demo import seed_demo
from crmgraph.testing import LiveServer, live_server, settings_for
from tests.conftest import fresh_database
from tests.helpers import CREATE, RECOUNT_NOW, insert_customer

DAY = datetime.datetime(2026, 3, 2, 9, tzinfo=datetime.UTC)
WRITERS, EACH, ROUNDS = 8, 40, 3
ROLLUPS: tuple[DeltaRollup, ...] = (activity.DAYS, activity.BUYERS)
LOG = """mutation($input: LogInteractionInput!) { logInteraction(input: $input) {
  userErrors { code } } }"""


def texts(rows: list[Any]) -> list[tuple[str, ...]]:
    return [tuple(str(v) for v in r.values()) for r in rows]


async def kept(db: Any, rollup: DeltaRollup) -> list[tuple[str, ...]]:
    """The rollup as readers see it: its view, the sums per key."""
    order = ", ".join(k.name for k in rollup.keys)
    return texts(await db.fetch(f"SELECT {rollup.columns} FROM {rollup.view} ORDER BY {order}"))


async def exact(db: Any) -> None:
    for rollup in ROLLUPS:
        again = rollup.totals_select("interaction", sqlite=db.is_sqlite)
        assert await kept(db, rollup) == texts(await db.fetch(again)), rollup.view


async def deltas(db: Any, rollup: DeltaRollup) -> int:
    return int((await db.fetch(f"SELECT COUNT(*) AS n FROM {rollup.table}"))[0]["n"])


async def log_rated(conn: asyncpg.Connection, customer: int, n: int) -> None:
    """``n`` rated purchases of ``customer`` on DAY by email, one statement each."""
    for i in range(n):
        await conn.execute(
            "INSERT INTO interaction (customer, channel, direction, subject, occurred_at, "
            "outcome, satisfaction, amount) VALUES ($1, 'EMAIL', 'INBOUND', 's', $2, 'won', "
            "$3, $4)",
            customer,
            DAY + datetime.timedelta(minutes=i),
            1 + i % 5,
            10 + i,
        )


async def blocked(watcher: asyncpg.Connection, writers: list[asyncpg.Connection]) -> list[Any]:
    """The writers' locks not granted, and the writers blocked by another."""
    pids = [c.get_server_pid() for c in writers]
    return [
        *await watcher.fetch(
            "SELECT pid, locktype FROM pg_locks WHERE NOT granted AND pid = ANY($1)", pids
        ),
        *await watcher.fetch(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1) "
            "AND cardinality(pg_blocking_pids(pid)) > 0",
            pids,
        ),
    ]


async def not_folding(
    watcher: asyncpg.Connection, writers: list[asyncpg.Connection], round_: int
) -> asyncpg.Connection:
    """The writer to roll back in ``round_``: the next one from ``round_`` on
    that holds no fold's advisory lock. The fold runs in the transaction of
    whichever writer's row it was (one per round at most: the others skip),
    so rolling that one back would undo the round's fold along with its rows,
    and whether the table ends folded would be a draw."""
    folding = {
        r["pid"]
        for r in await watcher.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = ANY($1)",
            [c.get_server_pid() for c in writers],
        )
    }
    turn = writers[round_:] + writers[:round_]
    return next(c for c in turn if c.get_server_pid() not in folding)


async def open_writers(state: AppState, url: str) -> None:
    joined = DAY - datetime.timedelta(days=30)
    ids = [
        await insert_customer(state, f"W{n}", joined, [("client", "interest", joined)])
        for n in range(WRITERS)
    ]
    writers = [await asyncpg.connect(url) for _ in ids]
    watcher = await asyncpg.connect(url)
    try:
        for conn in writers:
            # waiting on a lock at all fails the test (it would otherwise hang:
            # the one waited on commits only after every writer inserted)
            await conn.execute("SET lock_timeout = '10s'")
        for round_ in range(ROUNDS):
            for conn in writers:
                await conn.execute("BEGIN")
            await asyncio.gather(
                *(log_rated(c, i, EACH) for c, i in zip(writers, ids, strict=True))
            )
            # every writer's rows are in and none is committed: none waited
            assert await blocked(watcher, writers) == []
            undone = await not_folding(watcher, writers, round_)
            for conn in writers:
                await conn.execute("ROLLBACK" if conn is undone else "COMMIT")
    finally:
        for conn in [*writers, watcher]:
            await conn.close()
    await exact(state.db)
    written = WRITERS * EACH * ROUNDS  # a delta row each, one key
    assert await deltas(state.db, activity.DAYS) < written / 2  # folded as they went


@pytest.mark.parametrize("engine", ["postgres"])
def test_writers_of_one_day_never_wait_on_one_another(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with fresh_database(engine, request, tmp_path / "crm.sqlite") as url:
        asyncio.run(with_state(settings_for(url), lambda state: open_writers(state, url)))


def client_writes(server: LiveServer, n: int) -> list[list[str]]:
    """One client's customer and its rated purchases of DAY: userError codes."""
    # names unlike one another: no duplicate pairs (a pair locks both customers)
    created = server.gql(CREATE, {"input": {"kind": "CLIENT", "name": uuid.uuid4().hex}})
    cid = created["createCustomer"]["customer"]["id"]
    codes = []
    for i in range(EACH):
        answer = server.gql(LOG, {"input": {
            "customerId": cid, "channel": "EMAIL", "direction": "INBOUND", "subject": "x",
            "occurredAt": (DAY + datetime.timedelta(minutes=i)).isoformat(),
            "satisfaction": 1 + (n + i) % 5, "amount": f"{n}.{i:02d}",
        }})  # fmt: skip
        codes.append([e["code"] for e in answer["logInteraction"]["userErrors"]])
    return codes


async def rewrites(state: AppState) -> None:
    """Updates and deletes of the logged rows: negative deltas, folded too."""
    db = state.db
    steps = [
        "UPDATE interaction SET satisfaction = 5 WHERE satisfaction = 1",
        "UPDATE interaction SET amount = NULL WHERE satisfaction = 2",
        "UPDATE interaction SET channel = 'PHONE' WHERE satisfaction = 3",
        "DELETE FROM interaction WHERE satisfaction = 4",
        "UPDATE interaction SET occurred_at = {} WHERE amount IS NULL",  # another day
    ]
    for sql in steps:
        await db.fetch(sql, *([DAY + datetime.timedelta(days=40)] if "{}" in sql else []))
        await exact(db)
    await db.fetch("DELETE FROM interaction WHERE channel = 'PHONE'")
    await exact(db)
    phone = await db.fetch("SELECT COUNT(*) AS n FROM interaction_day WHERE channel = 'PHONE'")
    assert phone[0]["n"] == 0  # a key left with no rows has none in the view


def test_concurrent_clients_log_one_day_exactly(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="crmgraph.db.engine")
    with live_server(settings_for(database_url)) as server:
        with ThreadPoolExecutor(WRITERS) as pool:
            answers = [
                c for a in pool.map(lambda n: client_writes(server, n), range(WRITERS)) for c in a
            ]
        assert answers == [[]] * WRITERS * EACH
        retried = [r.getMessage() for r in caplog.records if "rolled back" in r.getMessage()]
        assert retried == []  # every write at its first attempt
        server.run(lambda state: exact(state.db))
        written = server.run(lambda state: deltas(state.db, activity.DAYS))
        assert written < WRITERS * EACH / 2  # folded: 320 rows of one key
        server.run(rewrites)


async def as_counters(db: Any) -> None:
    """The tallies as migrations 0042/0043 made them before 0052: a counter
    table per tally, one row per key, a primary key on the keys."""
    engine = "sqlite" if db.is_sqlite else "postgres"
    for rollup in ROLLUPS:
        keys, columns = ", ".join(k.name for k in rollup.keys), rollup.columns
        await db.fetch(f"CREATE TABLE {rollup.view}_old AS SELECT {columns} FROM {rollup.view}")
        for statement in rollup.drop_statements(engine):
            await db.fetch(statement)
        typed = ", ".join(f"{c.name} {c.sql_type}" for c in (*rollup.keys, *rollup.values))
        await db.fetch(f"CREATE TABLE {rollup.view} ({typed}, PRIMARY KEY ({keys}))")
        await db.fetch(f"INSERT INTO {rollup.view} SELECT * FROM {rollup.view}_old")
        await db.fetch(f"DROP TABLE {rollup.view}_old")


async def shapes(db: Any) -> list[bool]:
    """Whether migration 0052 finds each tally a counter table to convert."""
    query = m0052.SHAPE["sqlite" if db.is_sqlite else "postgres"]
    found = [await db.fetch(query.format(r.view)) for r in ROLLUPS]
    return [rows[0]["kind"] in m0052.COUNTERS for rows in found]


def test_migration_turns_counter_tables_into_deltas(database_url: str) -> None:
    async def work(state: AppState) -> None:
        db = state.db
        await seed_demo(db, state.catalog, customers=60, now=RECOUNT_NOW)
        before = [await kept(db, r) for r in ROLLUPS]
        assert await shapes(db) == [False, False]  # made as deltas: nothing to convert
        await as_counters(db)
        assert await shapes(db) == [True, True]
        for rollup in ROLLUPS:
            for statement in rollup.from_counters("sqlite" if db.is_sqlite else "postgres"):
                await db.fetch(statement)
        assert await shapes(db) == [False, False]
        assert [await kept(db, r) for r in ROLLUPS] == before
        assert [await deltas(db, r) for r in ROLLUPS] == [len(rows) for rows in before]
        await rewrites(state)

    asyncio.run(with_state(settings_for(database_url), work))
