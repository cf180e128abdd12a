"""The write queue (crmgraph.db.write_batch) on PostgreSQL: whatever reads
inside a write, it reads every write before it — crmgraph's own reads, a
read that rides with the queued batch, and a plugin's own piccolo query,
which goes past ``Database.fetch``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from crmgraph.db import writes
from crmgraph.db.engine import Database, make_engine
from crmgraph.db.tables import CORE_TABLES, Interaction
from crmgraph.testing import settings_for


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    settings = settings_for(database_url, write_batching=True)
    database = Database(make_engine(settings), CORE_TABLES)
    await database.start(settings)
    try:
        yield database
    finally:
        await database.stop()


async def a_customer(db: Database) -> int:
    async with db.transaction():
        pk = await writes.insert(db, "customer", {"kind": "client", "name": "Queue Reader"})
    return pk


def interaction(customer: int) -> dict[str, Any]:
    at = writes.now()
    return {
        "customer": customer,
        "channel": "EMAIL",
        "direction": "INBOUND",
        "occurred_at": at,
        "created_at": at,
        "subject": "queued",
    }


async def test_a_plugins_piccolo_query_sees_the_queued_row(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite runs each statement at once: nothing is queued")
    customer = await a_customer(db)
    async with db.transaction():
        pk = await writes.insert(db, "interaction", interaction(customer))
        queue = db.write_queue()
        assert queue  # queued, not sent
        found = await Interaction.select(Interaction.subject).where(Interaction.id == pk).run()
        assert found == [{"subject": "queued"}]
        assert not queue  # sent before the plugin's query


async def test_a_read_of_another_table_carries_the_batch(db: Database) -> None:
    customer = await a_customer(db)
    async with db.transaction():
        pk = await writes.insert(db, "interaction", interaction(customer))
        await writes.audit(db, "interaction.logged", "Interaction", pk, customer, {})
        # the audit entry rides in front of this read (it reads no audit_entry),
        # the interaction is sent before it (kept rows do not ride)
        rows = await db.fetch("SELECT subject FROM interaction WHERE id = {}", pk)
        assert rows == [{"subject": "queued"}]
    entries = await db.fetch(
        "SELECT action FROM audit_entry WHERE entity_id = {} AND entity_type = {}",
        pk,
        "Interaction",
    )
    assert entries == [{"action": "interaction.logged"}]


async def test_a_failed_write_leaves_nothing_queued_behind(db: Database) -> None:
    customer = await a_customer(db)
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await writes.insert(db, "interaction", interaction(customer))
            raise RuntimeError("the write fails after queueing")
    rows = await db.fetch("SELECT id FROM interaction WHERE customer = {}", customer)
    assert rows == []
    assert db.write_queue() is None


def test_a_batch_rides_only_on_a_statement_that_reads() -> None:
    """A queued audit entry may go in front of a read of other tables, never
    in front of a statement that changes rows (its cascades could reach the
    queued table without naming it)."""
    from crmgraph.db.write_batch import Batch, Statement

    batch = Batch([Statement("audit_entry", ("action",), [("x",)])])
    assert batch.rides_on("SELECT id FROM customer c WHERE c.id = {} FOR UPDATE OF c")
    assert batch.rides_on("WITH crowded AS (SELECT 1) SELECT * FROM customer_match_key")
    assert not batch.rides_on("SELECT id FROM audit_entry")
    assert not batch.rides_on("DELETE FROM customer WHERE id = {}")
    assert not batch.rides_on("UPDATE customer c SET name = {} WHERE c.id = {}")
