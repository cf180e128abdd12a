"""A bulk write of new customers counts them into the trigger-kept rollups
once per batch (crmgraph.db.batch_rollups, migration 0055): after an import
of customers of several kinds, in several stages, holding further roles and
former ones, ``customer_tally``, the cohort counts and ``stage_flow`` equal a
fresh count, on both engines; on PostgreSQL the six deferred insert triggers
skip while ``crmgraph.rollups`` is ``'deferred'``, ``crmgraph_rollups_of_new``
runs once per batch that goes by COPY (none for a smaller one), right after
its three COPYs; and the migration reversed restores the functions without
the check, forwards again as the generators make them."""

from __future__ import annotations

import asyncio
import datetime
import importlib
from typing import Any

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db import batch_rollups, customer_counts, piccolo_conf, stage_flow
from crmgraph.db.engine import StatementCounter, current_counter
from crmgraph.testing import settings_for
from tests.test_cohort_counts import same as cohorts_as_counted
from tests.test_funnel_rollup import flow_sums
from tests.test_import_export import csv_bytes, do_import

MIGRATION = importlib.import_module("crmgraph.db.migrations.crmgraph_0055_batch_rollups")
ROWS = 200
BATCH = 80  # two batches by COPY, then 40 rows by INSERT
START = datetime.datetime(2025, 1, 3, 9, 0, tzinfo=datetime.UTC)
# (kind, stages, further roles, former roles), taken in turn
SHAPES = [
    ("client", ["interest", "engaged", "active", "churned"], "supplier:approved", ""),
    ("client", ["loyal", "at_risk"], "", "competitor:identified"),
    ("prospect", ["new", "contacted", "qualified"], "", ""),
    ("supplier", ["evaluation", "active", "suspended"], "client:engaged", "employee:candidate"),
    ("employee", ["candidate", "active", "departed"], "", ""),
]
DEFERRED_TRIGGERS = {
    "customer_tally_added",
    "customer_role_tally_added",
    "cohorts_customer_insert",
    "cohorts_stage_change_insert",
    "stage_flow_stage_change_insert",
    "stage_flow_role_insert",
}


def import_file() -> bytes:
    rows = [["name", "email", "kind", "stage", "stage_entered_at", "roles", "former_roles"]]
    for i in range(ROWS):
        kind, stages, roles, former = SHAPES[i % len(SHAPES)]
        entered = START + datetime.timedelta(days=3 * i, hours=i % 24)
        stage = stages[i % len(stages)]
        rows.append(
            [f"Batch {i}", f"batch{i}@t.example", kind, stage, entered.isoformat(), roles, former]
        )
    return csv_bytes(rows)


async def tally_as_counted(db: Any) -> None:
    """``customer_tally`` and each customer's stored key against the keys
    computed from the tables."""
    key = customer_counts.KEY_COLUMNS
    fresh = customer_counts.key_select("customer", sqlite=db.is_sqlite)
    kept = await db.fetch(
        f"SELECT {key}, SUM(n) AS n FROM {customer_counts.TABLE} GROUP BY {key} HAVING SUM(n) <> 0"
    )
    counted = await db.fetch(f"SELECT {key}, COUNT(*) AS n FROM ({fresh}) k GROUP BY {key}")
    assert {tuple(r.values()) for r in kept} == {tuple(r.values()) for r in counted}
    stored = await db.fetch(f"SELECT customer, {key} FROM {customer_counts.KEYS}")
    assert {tuple(r.values()) for r in stored} == {tuple(r.values()) for r in await db.fetch(fresh)}


async def flow_as_counted(db: Any) -> None:
    kept = await flow_sums(db)
    assert {"n", "c", "o"} <= {row[4] for row in kept}
    async with db.transaction():
        for statement in stage_flow.backfill(db.is_sqlite):
            await db.fetch(statement)
    assert await flow_sums(db) == kept


async def import_counted(state: AppState) -> list[str]:
    """The import, its statements; every rollup checked against a fresh count."""
    counter = StatementCounter()
    token = current_counter.set(counter)
    try:
        summary, rejected = await do_import(state, import_file(), batch_size=BATCH)
    finally:
        current_counter.reset(token)
    assert summary.failure is None and rejected.count == 0, [r.reasons() for r in rejected.first]
    assert summary.created == ROWS
    held = await state.db.fetch(
        "SELECT COUNT(*) AS n FROM customer_role WHERE added_at IS NOT NULL AND ended_at IS NULL"
    )
    assert int(held[0]["n"]) > 0  # further roles held, besides the former ones
    await tally_as_counted(state.db)
    await cohorts_as_counted(state.db)
    await flow_as_counted(state.db)
    return counter.statements


def test_an_import_leaves_every_rollup_as_a_fresh_count(database_url: str) -> None:
    statements = asyncio.run(with_state(settings_for(database_url), import_counted))
    calls = [n for n, sql in enumerate(statements) if batch_rollups.FUNCTION in sql]
    if database_url.startswith("sqlite"):
        assert calls == []  # row triggers, as before
        return
    assert len(calls) == ROWS // BATCH  # once per batch by COPY, not for the last 40 rows
    for n in calls:  # right after the three COPYs, the triggers on again
        assert statements[n - 1] == "SET LOCAL crmgraph.rollups = ''"
        assert statements[n - 2].startswith("COPY stage_change")
    deferred = [n for n, sql in enumerate(statements) if "= 'deferred'" in sql]
    assert len(deferred) == len(calls)
    for start, end in zip(deferred, calls, strict=True):
        copies = [s.split(" (")[0] for s in statements[start:end] if s.startswith("COPY")]
        assert copies == ["COPY customer", "COPY customer_role", "COPY stage_change"]


def postgres_only(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite keeps its row triggers")


INSERT = (
    "INSERT INTO customer (kind, name, name_sort, name_folded, attributes, version, "
    "created_at, updated_at) VALUES ('client', 'Late', 'late', 'late', {}, 1, "
    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
)


async def deferred_then_caught_up(state: AppState) -> tuple[int, ...]:
    db = state.db

    async def counts(pk: int) -> tuple[int, ...]:
        found = []
        for table, column in (
            (customer_counts.KEYS, "customer"),
            ("customer_cohort", "customer_id"),
        ):
            rows = await db.fetch(f"SELECT COUNT(*) AS n FROM {table} WHERE {column} = {pk}")
            found.append(int(rows[0]["n"]))
        return tuple(found)

    async with db.transaction():
        await db.fetch("SET LOCAL crmgraph.rollups = 'deferred'")
        flow = await flow_sums(db)
        (row,) = await db.fetch(INSERT, "{}")
        pk = int(row["id"])
        await db.fetch(
            "INSERT INTO customer_role (customer, kind, stage, phase, entered_at) "
            "VALUES ({}, 'client', 'interest', 'ACQUISITION', CURRENT_TIMESTAMP)",
            pk,
        )
        await db.fetch(
            "INSERT INTO stage_change (customer, kind, to_stage, at, reason) "
            "VALUES ({}, 'client', 'interest', CURRENT_TIMESTAMP, 'created')",
            pk,
        )
        skipped = (*await counts(pk), int(await flow_sums(db) == flow))
        await db.fetch("SET LOCAL crmgraph.rollups = ''")
        await db.fetch(f"SELECT {batch_rollups.FUNCTION}({{}}) AS done", [pk])
        caught = (*await counts(pk), int(await flow_sums(db) == flow))
    await tally_as_counted(db)
    await cohorts_as_counted(db)
    return (*skipped, *caught)


def test_deferred_triggers_skip_and_the_function_catches_up(database_url: str) -> None:
    postgres_only(database_url)
    found = asyncio.run(with_state(settings_for(database_url), deferred_then_caught_up))
    # nothing counted while deferred (stage_flow unchanged); then the key,
    # the creation and stage cohorts, and the entry's measures
    assert found == (0, 0, 1, 1, 2, 0)


async def functions(state: AppState) -> dict[str, str]:
    rows = await state.db.fetch(
        "SELECT p.proname AS name, p.prosrc AS src FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
    )
    return {r["name"]: r["src"] for r in rows}


async def reversed_and_forwards(state: AppState) -> tuple[dict[str, str], ...]:
    piccolo_conf.DB = state.db.engine  # the migration's steps find the engine there
    manager = await MIGRATION.forwards()
    before = await functions(state)
    await manager.run(backwards=True)
    reversed_ = await functions(state)
    await (await MIGRATION.forwards()).run()
    return before, reversed_, await functions(state)


def test_the_migration_reversed_and_forwards(database_url: str) -> None:
    postgres_only(database_url)
    before, reversed_, after = asyncio.run(
        with_state(settings_for(database_url), reversed_and_forwards)
    )
    made = {
        s.split("FUNCTION ")[1].split("(")[0]: s
        for s in batch_rollups.create_statements("postgres")
    }
    assert set(made) == {*DEFERRED_TRIGGERS, batch_rollups.FUNCTION}
    for name in DEFERRED_TRIGGERS:
        # a new database has the functions the generators make
        assert before[name].strip() in made[name] and "crmgraph.rollups" in before[name]
        assert "crmgraph.rollups" not in reversed_[name]
        assert after[name] == before[name]
    assert batch_rollups.FUNCTION not in reversed_ and batch_rollups.FUNCTION in after
