"""``stage_flow``'s SQLite triggers (crmgraph.db.stage_flow, migration 0053),
without a clock: each statement of each trigger and of its fold reads only
the rows it names, through an index (``EXPLAIN QUERY PLAN`` of the SQL the
migration stored shows SEARCH and no SCAN of a table); the measures query is
in the schema once, in the view, not in every trigger (the schema SQLite
parses on every connection); and after every kind of single-row write, and
past the folds, the kept sums are a fresh count's."""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from crmgraph.app import with_state
from crmgraph.db import stage_flow
from crmgraph.db.sqlite_connections import FunctionsConnection
from crmgraph.demo import seed_demo
from crmgraph.testing import settings_for

# the tables a trigger may only search: a SCAN of one reads all of it
BIG = ("stage_change", "customer", "customer_role", "stage_flow")
BIG_ALIASES = ("sc", "c", "r", "o")


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, factory=FunctionsConnection, isolation_level=None)


def stored_triggers(conn: sqlite3.Connection) -> dict[str, str]:
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'stage_flow%'"
    )
    return dict(rows.fetchall())


def statements(trigger: str) -> list[str]:
    """A trigger's body, its NEW/OLD columns as named parameters."""
    body = trigger[trigger.index("BEGIN") + len("BEGIN") : trigger.rindex("END")]
    named = re.sub(r"\b(NEW|OLD)\.(\w+)", r":\1_\2", body)
    return [s.strip() for s in named.split(";\n") if s.strip()]


def plan(conn: sqlite3.Connection, statement: str) -> list[str]:
    names = set(re.findall(r":(\w+)", statement))
    found = conn.execute(f"EXPLAIN QUERY PLAN {statement}", dict.fromkeys(names, 1))
    return [row[3] for row in found]


def test_each_statement_searches_by_index(tmp_path: Path, sqlite_template: Path) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "crm.sqlite")
    conn = connect(tmp_path / "crm.sqlite")
    triggers = stored_triggers(conn)
    assert f"{stage_flow.TABLE}_compact" in triggers
    assert set(triggers) == {
        f"{stage_flow.TABLE}_{n}" for n in [*stage_flow.sqlite_counts(), "compact"]
    }
    for name, sql in triggers.items():
        for statement in statements(sql):
            steps = plan(conn, statement)
            scans = [s for s in steps if s.startswith("SCAN ")]
            scanned = {s.split()[1] for s in scans}
            assert not scanned & {*BIG, *BIG_ALIASES}, (name, steps)
            assert any(
                s.startswith("SEARCH") and ("INDEX" in s or "PRIMARY KEY" in s) for s in steps
            ), (name, steps)


def test_the_measures_are_in_the_schema_once(tmp_path: Path, sqlite_template: Path) -> None:
    """The triggers name their entries; the measures (every CASE of them,
    the list of measures) are the view's alone."""
    shutil.copyfile(sqlite_template, tmp_path / "crm.sqlite")
    conn = connect(tmp_path / "crm.sqlite")
    view = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?", (stage_flow.VIEW,)
    ).fetchone()[0]
    assert view.count("julianday") > 3 and "UNION ALL" in view
    counting = {n: s for n, s in stored_triggers(conn).items() if not n.endswith("_compact")}
    assert len(counting) == len(stage_flow.sqlite_counts())
    for name, sql in counting.items():
        assert "julianday" not in sql and "UNION" not in sql and stage_flow.VIEW in sql, name
    # each under 700 characters: the 8 triggers of 0049 were 38,728 together
    assert sum(len(s) for s in counting.values()) < 700 * len(counting)


def fresh_count(conn: sqlite3.Connection) -> set[tuple[Any, ...]]:
    insert = stage_flow.backfill(True)[1]
    return set(conn.execute(insert[insert.index("SELECT") :]).fetchall())


def kept(conn: sqlite3.Connection) -> set[tuple[Any, ...]]:
    keys = stage_flow.DELTAS.key_list
    found = conn.execute(
        f"SELECT {keys}, SUM(n) FROM {stage_flow.TABLE} GROUP BY {keys} HAVING SUM(n) <> 0"
    )
    return set(found.fetchall())


def writes(customer: int, other: int, n: int) -> list[tuple[str, str]]:
    """One of each single-row write the triggers count, on ``customer``."""
    stamp = f"'2026-03-0{1 + n % 9}T10:00:00+00:00'"
    primary = f"(SELECT kind FROM customer WHERE id = {customer})"
    open_entry = f"customer = {customer} AND left_at IS NULL AND kind = {primary}"
    return [
        ("soft delete", f"UPDATE customer SET deleted_at = {stamp} WHERE id = {customer}"),
        ("restore", f"UPDATE customer SET deleted_at = NULL WHERE id = {customer}"),
        ("a name", f"UPDATE customer SET name = 'Flow {n}' WHERE id = {customer}"),
        (
            "a stay ended",
            f"UPDATE stage_change SET left_at = {stamp}, next_stage = 'next{n}' WHERE {open_entry}",
        ),
        (
            "an entry",
            "INSERT INTO stage_change (customer, kind, to_stage, at, phase_prev_at) "
            f"SELECT id, kind, 'next{n}', {stamp}, '2026-01-01T00:00:00+00:00' "
            f"FROM customer WHERE id = {customer}",
        ),
        (
            "a further role",
            "INSERT INTO customer_role (customer, kind, stage, phase, added_at) "
            f"VALUES ({customer}, 'guarantor', 'proposed', 'ENGAGEMENT', {stamp})",
        ),
        (
            "an entry of it",
            "INSERT INTO stage_change (customer, kind, to_stage, at) "
            f"VALUES ({customer}, 'guarantor', 'proposed', {stamp})",
        ),
        (
            "the role ended",
            f"UPDATE customer_role SET ended_at = {stamp} "
            f"WHERE customer = {customer} AND kind = 'guarantor'",
        ),
        (
            "the role moved",
            f"UPDATE customer_role SET customer = {other} WHERE customer = "
            f"{customer} AND kind = 'guarantor'",
        ),
        (
            "the role removed",
            f"DELETE FROM customer_role WHERE customer = {other} AND kind = 'guarantor'",
        ),
        (
            "an entry removed",
            f"DELETE FROM stage_change WHERE customer = {customer} AND kind = 'guarantor'",
        ),
        ("irregular", f"UPDATE stage_change SET irregular = 1 - irregular WHERE {open_entry}"),
        ("a kind", f"UPDATE customer SET kind = 'prospect' WHERE id = {customer}"),
    ]


def test_single_row_writes_keep_the_counts(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "crm.sqlite"
    shutil.copyfile(sqlite_template, path)
    asyncio.run(
        with_state(
            settings_for(f"sqlite:///{path}"),
            lambda state: seed_demo(state.db, state.catalog, customers=60),
        )
    )
    conn = connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    ids = [r[0] for r in conn.execute("SELECT DISTINCT customer FROM stage_change ORDER BY 1")]
    assert kept(conn) == fresh_count(conn)
    top = conn.execute(f"SELECT MAX(id) FROM {stage_flow.TABLE}").fetchone()[0]
    for n, customer in enumerate(ids[:12]):
        conn.execute(
            "DELETE FROM customer_role WHERE kind = 'guarantor' AND customer IN (?, ?)",
            (customer, ids[-1 - n]),
        )
        for step, statement in writes(customer, ids[-1 - n], n):
            conn.execute(statement)
            assert kept(conn) == fresh_count(conn), (n, step)
    conn.execute(f"DELETE FROM customer WHERE id = {ids[-1]}")  # its entries by the cascade
    assert kept(conn) == fresh_count(conn), "a hard delete"
    rows, last = conn.execute(f"SELECT COUNT(*), MAX(id) FROM {stage_flow.TABLE}").fetchone()
    # folds ran (every 256th row), and left the counts exact
    assert last - top > 2 * stage_flow.DELTAS.every and rows < last - top, (rows, top, last)
