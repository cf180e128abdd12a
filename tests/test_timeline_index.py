"""Migration 0059 drops ``interaction_customer``: a customer's timeline (its
newest interactions) is read through (customer, occurred_at, id), so a
customer with thousands of interactions costs the rows of one page, where
PostgreSQL read them all through the narrower index and sorted them (985
for the scale benchmark's customer at 1,000,000 customers). Both engines
lose the index and get it back when the migration is reversed; on
PostgreSQL the compiled read's own statement, analysed, reads one page of
interactions."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import asyncpg
import pytest

from crmgraph.app import AppState
from crmgraph.compiled import extension
from crmgraph.db.engine import make_engine
from crmgraph.ids import encode_id
from crmgraph.testing import live_server, settings_for
from tests.test_redundant_indexes import index_names, reversed_and_again

MIGRATION = importlib.import_module("crmgraph.db.migrations.crmgraph_0059_timeline_index")
INTERACTIONS = 3000
PAGE = 20


def test_the_index_goes_and_comes_back(database_url: str) -> None:
    async def run() -> tuple[set[str], set[str], set[str]]:
        engine = make_engine(settings_for(database_url))
        migrated = await index_names(engine)
        return migrated, *await reversed_and_again(engine, MIGRATION)

    migrated, reversed_, forward = asyncio.run(run())
    assert "interaction_customer" not in migrated
    assert "ix_interaction_customer_occurred" in migrated
    assert reversed_ - migrated == {"interaction_customer"}
    assert forward == migrated


async def busy_customer(state: AppState) -> int:
    """A customer with INTERACTIONS interactions among others' ten each, analysed."""
    rows = await state.db.fetch(
        "INSERT INTO customer (kind, name, name_sort, name_folded, attributes, version, "
        "created_at, updated_at) SELECT 'client', 'Busy ' || g, 'busy ' || g, 'busy ' || g, "
        "{}, 1, now(), now() FROM generate_series(1, 300) g RETURNING id",
        "{}",  # no attributes
    )
    ids = sorted(row["id"] for row in rows)
    await state.db.fetch(
        "INSERT INTO interaction (customer, channel, direction, occurred_at, subject, created_at) "
        "SELECT CASE WHEN g <= {} THEN {} ELSE {} + g % 299 END, 'EMAIL', 'INBOUND', "
        "now() - g * interval '1 hour', 'Note ' || g, now() "
        "FROM generate_series(1, {}) g",
        INTERACTIONS,
        ids[0],
        ids[1],
        INTERACTIONS + 10 * 299,
    )
    await state.db.fetch("ANALYZE interaction")
    return ids[0]


def interaction_rows(plan: Any) -> list[int]:
    """The rows each scan of ``interaction`` in a JSON plan returned."""
    found = []
    if plan.get("Relation Name") == "interaction":
        found.append(int(plan["Actual Rows"]) * int(plan["Actual Loops"]))
    for child in plan.get("Plans", ()):
        found += interaction_rows(child)
    return found


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_timeline_reads_one_page_of_a_busy_customer(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(database_url)
    statements: list[tuple[str, list[Any]]] = []
    fetch = extension.fetch_json

    async def recording(db: Any, dialect: Any, sql: str, args: list[Any]) -> str:
        statements.append((sql, args))
        return await fetch(db, dialect, sql, args)

    monkeypatch.setattr(extension, "fetch_json", recording)
    with live_server(settings) as server:
        busy = server.run(busy_customer)
        query = (
            f'{{ customer(id: "{encode_id("Customer", busy)}") {{ name '
            f"interactions(first: {PAGE}) {{ nodes {{ subject occurredAt }} }} }} }}"
        )
        nodes = server.gql(query)["customer"]["interactions"]["nodes"]
    assert [node["subject"] for node in nodes] == [f"Note {g}" for g in range(1, PAGE + 1)]
    ((sql, args),) = statements

    async def explain() -> Any:  # the statement as sent: numbered parameters
        connection = await asyncpg.connect(database_url)
        try:
            plan = await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
        finally:
            await connection.close()
        return json.loads(plan)[0]["Plan"]

    read = interaction_rows(asyncio.run(explain()))
    assert read and max(read) <= PAGE + 1, read  # not INTERACTIONS
