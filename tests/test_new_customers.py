"""The one writer of new customers (crmgraph.operations.new_customers), on
both engines: a batch of customers in their initial stage, placed further
along with other roles (the import), or with a whole history (the demo)
leaves exactly their rows, folded name keys included, in three statements."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import pytest

from crmgraph.db.engine import Database, StatementCounter, current_counter, make_engine
from crmgraph.db.tables import CORE_TABLES
from crmgraph.db.text_keys import fold, sort_key
from crmgraph.operations.new_customers import (
    NewCustomer,
    StageEntry,
    write_new_customer,
    write_new_customers,
)
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.testing import settings_for

AT = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)
EARLIER = AT - datetime.timedelta(days=40)


@pytest.fixture
async def db_and_catalog(database_url: str) -> AsyncIterator[tuple[Database, Catalog]]:
    settings = settings_for(database_url)
    db = Database(make_engine(settings), CORE_TABLES)
    await db.start(settings)
    try:
        yield db, Catalog.from_plugin_manager(make_plugin_manager(settings))
    finally:
        await db.stop()


async def rows_of(db: Database, table: str, columns: str) -> list[dict]:
    return await db.fetch(f"SELECT {columns} FROM {table} ORDER BY id")


async def test_a_batch_is_a_few_statements_and_its_ids_in_order(
    db_and_catalog: tuple[Database, Catalog],
) -> None:
    db, catalog = db_and_catalog
    batch = [
        NewCustomer("client", {"name": "Émile Ånström", "email": "EMILE@X.example"}, {}),
        NewCustomer(
            "prospect",
            {"name": "Bolt", "phone": "+34600000001"},
            {"source": "fair"},
            stage="qualified",
            entered_at=EARLIER,
            roles=[("supplier", "active")],
        ),
        NewCustomer(
            "client",
            {"name": "Walked"},
            {},
            history=[
                StageEntry("prospect", "new", EARLIER, "created", by=None),
                StageEntry("prospect", "converted", AT, None, from_stage="new"),
                StageEntry("client", "active", AT, "converted from prospect"),
            ],
            version=3,
            created_at=EARLIER,
        ),
    ]
    counter = StatementCounter()
    token = current_counter.set(counter)
    try:
        async with db.transaction():
            ids = await write_new_customers(db, catalog, batch, reason="imported", at=AT)
    finally:
        current_counter.reset(token)
    # three multi-row INSERTs; on PostgreSQL a write transaction queues a few
    # rows (crmgraph.db.write_batch): a block of ids, then one statement
    assert counter.count == (3 if db.is_sqlite else 2), counter.statements
    assert ids == sorted(ids) and len(set(ids)) == 3

    customers = await rows_of(
        db, "customer", "id, kind, name, email, phone, version, name_sort, name_folded, "
        "email_folded, created_at, updated_at",
    )  # fmt: skip
    assert [c["id"] for c in customers] == ids
    first = customers[0]
    assert (first["kind"], first["email"], first["version"]) == ("client", "EMILE@X.example", 1)
    assert first["name_folded"] == fold("Émile Ånström") == "emile anstrom"
    assert first["name_sort"] == sort_key("Émile Ånström")
    assert first["email_folded"] == "emile@x.example"
    assert first["created_at"] == first["updated_at"] == AT
    assert customers[2]["version"] == 3 and customers[2]["created_at"] == EARLIER

    roles = await rows_of(db, "customer_role", "customer, kind, stage, phase, entered_at")
    assert [(r["customer"], r["kind"], r["stage"], r["entered_at"]) for r in roles] == [
        (ids[0], "client", catalog.customer_type("client").lifecycle.initial, AT),  # type: ignore[union-attr]
        (ids[1], "prospect", "qualified", EARLIER),
        (ids[1], "supplier", "active", AT),
        (ids[2], "prospect", "converted", AT),
        (ids[2], "client", "active", AT),
    ]
    for role in roles:
        stage = catalog.customer_type(role["kind"]).lifecycle.stage(role["stage"])  # type: ignore[union-attr]
        assert stage is not None and role["phase"] == stage.phase.value

    changes = await rows_of(
        db, "stage_change", 'customer, kind, from_stage, to_stage, "by", reason'
    )
    assert [(c["customer"], c["from_stage"], c["to_stage"], c["reason"]) for c in changes] == [
        (ids[0], None, catalog.customer_type("client").lifecycle.initial, "imported"),  # type: ignore[union-attr]
        (ids[1], None, "qualified", "imported"),
        (ids[1], None, "active", "imported"),
        (ids[2], None, "new", "created"),
        (ids[2], "new", "converted", None),
        (ids[2], None, "active", "converted from prospect"),
    ]


async def test_one_customer_is_created_in_its_initial_stage_by_its_actor(
    db_and_catalog: tuple[Database, Catalog],
) -> None:
    db, catalog = db_and_catalog
    async with db.transaction():
        user = (
            await db.fetch(
                "INSERT INTO crm_user (name, email, role) VALUES ({}, {}, {}) RETURNING id",
                "Ana",
                "ana@crm.example",
                "agent",
            )
        )[0]["id"]
        pk = await write_new_customer(
            db, catalog, NewCustomer("supplier", {"name": "Coil", "owner": user}, {}), by=user
        )
    [change] = await rows_of(db, "stage_change", 'customer, to_stage, "by", reason')
    initial = catalog.customer_type("supplier").lifecycle.initial  # type: ignore[union-attr]
    assert change == {"customer": pk, "to_stage": initial, "by": user, "reason": "created"}
    [role] = await rows_of(db, "customer_role", "customer, stage")
    assert role == {"customer": pk, "stage": initial}


async def test_nothing_to_write_writes_nothing(db_and_catalog: tuple[Database, Catalog]) -> None:
    db, catalog = db_and_catalog
    assert await write_new_customers(db, catalog, []) == []
    assert await rows_of(db, "customer", "id") == []
