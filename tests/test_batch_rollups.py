"""A bulk write of new customers counts them into the trigger-kept rollups
once per batch (crmgraph.db.batch_rollups, migration 0055): after an import
of customers of several kinds, in several stages, holding further roles and
former ones, ``customer_tally``, the cohort counts and ``stage_flow`` equal a
fresh count, on both engines; on PostgreSQL the six deferred insert triggers
skip while ``crmgraph.rollups`` is ``'deferred'``, ``crmgraph_rollups_of_new``
runs once per batch that goes by COPY (none for a smaller one), right after
its three COPYs; and the migration reversed restores the functions without
the check, forwards again as the generators make them.

Migration 0056: the function folds the ``stage_flow`` rows it inserts once,
at its end (the fold trigger skips while ``crmgraph.folding`` is
``'batch'``): after a batch whose catch-up writes more than 256 rows (the
trigger would have folded several times) no key of its rows has another row,
and the sums are a fresh count's; the trigger still folds every other write;
the migration reversed and forwards.

Migration 0058: the function plans its ``stage_flow`` INSERT as written
(trigger_sql.AS_WRITTEN) and sets the settings back after it: the rest of
the import's transaction is planned as before; the migration reversed and
forwards."""

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
FOLDS = importlib.import_module("crmgraph.db.migrations.crmgraph_0056_batch_folds")
AS_WRITTEN = importlib.import_module(
    "crmgraph.db.migrations.crmgraph_0058_batch_measures_as_written"
)
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


def import_file(count: int = ROWS, days: int = 3, name: str = "Batch") -> bytes:
    """``count`` customers, entered ``days`` apart (none in the future)."""
    rows = [["name", "email", "kind", "stage", "stage_entered_at", "roles", "former_roles"]]
    for i in range(count):
        kind, stages, roles, former = SHAPES[i % len(SHAPES)]
        entered = START + datetime.timedelta(days=days * i, hours=i % 24)
        stage = stages[i % len(stages)]
        rows.append(
            [
                f"{name} {i}",
                f"{name.lower()}{i}@t.example",
                kind,
                stage,
                entered.isoformat(),
                *[roles, former],
            ]
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


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_deferred_triggers_skip_and_the_function_catches_up(database_url: str) -> None:
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


async def reversed_and_forwards(state: AppState, migration: Any) -> tuple[dict[str, str], ...]:
    """The public functions before ``migration`` is reversed, after, and once
    it has run forwards again."""
    piccolo_conf.DB = state.db.engine  # the migration's steps find the engine there
    manager = await migration.forwards()
    before = await functions(state)
    await manager.run(backwards=True)
    reversed_ = await functions(state)
    await (await migration.forwards()).run()
    return before, reversed_, await functions(state)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_migration_reversed_and_forwards(database_url: str) -> None:
    before, reversed_, after = asyncio.run(
        with_state(
            settings_for(database_url), lambda state: reversed_and_forwards(state, MIGRATION)
        )
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


BIG = 400  # one batch by COPY: its catch-up writes > 256 stage_flow rows


async def last_flow_id(db: Any) -> int:
    (row,) = await db.fetch(f"SELECT COALESCE(MAX(id), 0) AS id FROM {stage_flow.TABLE}")
    return int(row["id"])


async def unfolded(db: Any, since: int) -> tuple[int, int]:
    """The rows past ``since``, and how many rows of their keys are not
    alone (a key held by more than one row)."""
    keys = stage_flow.DELTAS.key_list
    (past,) = await db.fetch(f"SELECT COUNT(*) AS n FROM {stage_flow.TABLE} WHERE id > {since}")
    (shared,) = await db.fetch(
        f"SELECT COALESCE(SUM(n), 0) AS n FROM (SELECT COUNT(*) AS n FROM {stage_flow.TABLE} "
        f"WHERE ({keys}) IN (SELECT {keys} FROM {stage_flow.TABLE} WHERE id > {since}) "
        f"GROUP BY {keys} HAVING COUNT(*) > 1) k"
    )
    return int(past["n"]), int(shared["n"])


async def big_imports(state: AppState) -> None:
    """Two batches of the same entries' days: the second's keys all have rows."""
    for name in ("First", "Second"):
        data = import_file(BIG, days=1, name=name)
        summary, rejected = await do_import(state, data, batch_size=BIG)
        assert summary.failure is None and rejected.count == 0
        assert summary.created == BIG
    await flow_as_counted(state.db)
    await tally_as_counted(state.db)
    await cohorts_as_counted(state.db)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_batch_folds_its_stage_flow_rows_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after the catch-up (the import's next phase writes deltas of
    its own, which the trigger folds as any write's), in its transaction."""
    caught: list[tuple[int, int]] = []
    catch_up = batch_rollups.catch_up

    async def watched(db: Any, ids: list[int]) -> None:
        since = await last_flow_id(db)
        await catch_up(db, ids)
        caught.append(await unfolded(db, since))

    monkeypatch.setattr(batch_rollups, "catch_up", watched)
    asyncio.run(with_state(settings_for(database_url), big_imports))
    # the folded rows: one per key a batch wrote (more than 256), each alone
    # (the trigger's last fold left the second's last rows beside the first's)
    assert [past > 256 for past, _ in caught] == [True, True]
    assert [shared for _, shared in caught] == [0, 0]


async def ordinary_writes(state: AppState) -> tuple[int, int, bool]:
    """600 rows of 3 keys inserted in one statement (ids past two or three
    multiples of 256), as a write's trigger does: folded by the trigger;
    the same while a batch writer folds (``crmgraph.folding``): left alone."""
    db, table = state.db, stage_flow.TABLE
    rows = (
        f"INSERT INTO {table} (kind, stage, went, day, measure, n) "
        "SELECT 'zz', 'fold', '', i % 3, 'n', 1 FROM generate_series(1, 600) i"
    )
    mine = f"SELECT COUNT(*) AS n, SUM(n) AS s FROM {table} WHERE kind = 'zz'"
    found = []
    for folding in ("", "batch"):
        async with db.transaction():
            await db.fetch(f"SET LOCAL crmgraph.folding = '{folding}'")
            await db.fetch(rows)
            (row,) = await db.fetch(mine)
            found.append((int(row["n"]), int(row["s"])))
            await db.fetch(f"DELETE FROM {table} WHERE kind = 'zz'")
    (folded, folded_sum), (kept, kept_sum) = found
    return folded, kept, folded_sum == kept_sum == 600


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_fold_trigger_folds_other_writes(database_url: str) -> None:
    folded, kept, exact = asyncio.run(with_state(settings_for(database_url), ordinary_writes))
    assert exact
    assert folded < 600 - 256  # at least one fold of the 3 keys' rows
    assert kept == 600


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_fold_migration_reversed_and_forwards(database_url: str) -> None:
    before, reversed_, after = asyncio.run(
        with_state(settings_for(database_url), lambda state: reversed_and_forwards(state, FOLDS))
    )
    compact, fold = stage_flow.DELTAS.trigger, "stage_flow_fold_since"
    for name in (compact, batch_rollups.FUNCTION):
        assert "crmgraph.folding" in before[name]
        assert "crmgraph.folding" not in reversed_[name]
        assert after[name] == before[name]
    assert fold in before and fold not in reversed_ and after[fold] == before[fold]
    # as a database migrated from scratch has them
    made = {s.split("FUNCTION ")[1].split("(")[0]: s for s in batch_rollups.batch_folds("postgres")}
    assert set(made) == {compact, fold, batch_rollups.FUNCTION}
    for name, statement in made.items():
        assert before[name].strip() in statement


def test_writes_racing_a_deferred_batch_are_counted(database_url: str) -> None:
    """While an import's batches have their rollups deferred (a setting local
    to the import's transaction), other transactions create customers, one
    each, as createCustomer writes them: their triggers run as ever, and
    afterwards every rollup equals a fresh count."""
    from crmgraph.operations.new_customers import NewCustomer, write_new_customer

    async def work(state: AppState) -> int:
        db, done, created = state.db, asyncio.Event(), []

        async def importing() -> None:
            try:
                summary, _ = await do_import(state, import_file(name="Racing"), batch_size=BATCH)
                assert summary.failure is None and summary.created == ROWS
            finally:
                done.set()

        async def creating() -> None:
            while not done.is_set() and len(created) < 200:
                new = NewCustomer("client", {"name": f"Raced {len(created)}"}, {}, stage="engaged")
                created.append(
                    await db.run_transaction(lambda n=new: write_new_customer(db, state.catalog, n))
                )

        await asyncio.gather(importing(), creating(), creating())
        await tally_as_counted(db)
        await cohorts_as_counted(db)
        await flow_as_counted(db)
        return len(created)

    raced = asyncio.run(with_state(settings_for(database_url), work))
    assert raced > 0  # they ran while the import did (they stop when it ends)


async def settings_around_catch_ups(state: AppState, caught: list[Any]) -> None:
    """An import of two batches by COPY in a transaction that set the planner
    settings the function changes to values of its own."""
    db = state.db
    async with db.transaction():
        await db.fetch("SET LOCAL join_collapse_limit = 5")
        await db.fetch("SET LOCAL enable_sort = on")
        summary, _ = await do_import(
            state, import_file(BIG, days=1, name="Planned"), batch_size=BIG // 2
        )
        assert summary.failure is None and summary.created == BIG
    await flow_as_counted(db)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_measures_settings_end_with_their_statement(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After each catch-up, in the import's transaction, the planner settings
    are those the transaction had: only the measures' INSERT ran under
    AS_WRITTEN (with enable_sort off, the tally's locking read of a batch's
    ids took minutes at 1,000,000 customers)."""
    caught: list[Any] = []
    catch_up = batch_rollups.catch_up
    shown = (
        "SELECT current_setting('join_collapse_limit') AS joins, "
        "current_setting('enable_sort') AS sorts"
    )

    async def watched(db: Any, ids: list[int]) -> None:
        await catch_up(db, ids)
        (row,) = await db.fetch(shown)
        caught.append((row["joins"], row["sorts"]))

    monkeypatch.setattr(batch_rollups, "catch_up", watched)
    asyncio.run(
        with_state(settings_for(database_url), lambda s: settings_around_catch_ups(s, caught))
    )
    assert caught == [("5", "on"), ("5", "on")]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_as_written_migration_reversed_and_forwards(database_url: str) -> None:
    before, reversed_, after = asyncio.run(
        with_state(
            settings_for(database_url), lambda state: reversed_and_forwards(state, AS_WRITTEN)
        )
    )
    name = batch_rollups.FUNCTION
    assert "join_collapse_limit" in before[name] and "enable_sort" in before[name]
    assert "join_collapse_limit" not in reversed_[name] and "crmgraph.folding" in reversed_[name]
    assert after[name] == before[name]
    (made,) = batch_rollups.planned_as_written("postgres")
    assert before[name].strip() in made  # as a database migrated from scratch has it
