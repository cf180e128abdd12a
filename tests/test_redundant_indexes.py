"""Migration crmgraph_0054 drops the indexes no query needs, on both engines:

- the migrated schema of the tables it changes holds an index
  ``table_column`` exactly for the columns crmgraph.db.tables declares
  ``index=True`` (piccolo's view of them is the schema), and none of the
  dropped ones;
- reversed, the migration builds them again, and forwards drops them again,
  the rows untouched;
- on PostgreSQL (20,000 customers written set-based, analysed) a customers
  page in each order, filtered by kind, by phase or by creation, reads the
  wider indexes that replace the dropped ones (the order's (column, id)
  index, the role row through its unique (customer, kind) index), not a
  scan of either table.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import re
from typing import Any

import pytest
from piccolo.engine.base import Engine

from crmgraph.app import AppState, with_state
from crmgraph.db import piccolo_conf, queries
from crmgraph.db.engine import make_engine
from crmgraph.db.tables import CORE_TABLES
from crmgraph.testing import settings_for
from tests.helpers import Recording

REDUNDANT = importlib.import_module("crmgraph.db.migrations.crmgraph_0054_redundant_indexes")
DROPPED = {index.name for index in REDUNDANT.DROPPED}


async def index_names(engine: Engine) -> set[str]:
    if engine.engine_type == "sqlite":
        rows = await engine.run_ddl("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        rows = await engine.run_ddl("SELECT indexname AS name FROM pg_indexes")
    return {row["name"] for row in rows}


# the tables whose piccolo indexes the migration drops (others hold tables
# made by raw SQL, whose ``index=True`` columns have indexes of other names)
TABLES = {"customer", "customer_role", "stage_change", "event"}


def declared() -> tuple[set[str], set[str]]:
    """The piccolo index names of those tables' columns: declared
    ``index=True``, and not (primary keys aside)."""
    indexed, plain = set(), set()
    for table in CORE_TABLES:
        if table._meta.tablename not in TABLES:
            continue
        for column in table._meta.columns:
            if column._meta.primary_key:
                continue
            name = f"{table._meta.tablename}_{column._meta.db_column_name}"
            (indexed if column._meta.index else plain).add(name)
    return indexed, plain


def test_the_schema_has_the_indexes_the_tables_declare(database_url: str) -> None:
    found = asyncio.run(index_names(make_engine(settings_for(database_url))))
    indexed, plain = declared()
    kept = {"customer_kind", "customer_owner", "customer_team", "customer_role_stage"}
    assert indexed == kept | {"event_customer"}
    assert indexed <= found, indexed - found
    assert not plain & found, plain & found
    assert not DROPPED & found, DROPPED & found
    assert {"ix_customer_created_at_id", "ix_customer_active_id"} <= found


async def reversed_and_again(engine: Engine, migration: Any) -> tuple[set[str], set[str]]:
    """The indexes once ``migration`` (its module) is reversed, and once it
    has run forwards again."""
    piccolo_conf.DB = engine  # the migration's steps find the engine there
    manager = await migration.forwards()
    await manager.run(backwards=True)
    reversed_ = await index_names(engine)
    await manager.run()
    return reversed_, await index_names(engine)


async def reverse_and_forward(engine: Engine) -> tuple[set[str], set[str], int]:
    rows = "SELECT COUNT(*) AS n FROM customer"
    await engine.run_ddl(
        "INSERT INTO customer (kind, name, name_sort, name_folded, attributes, version, "
        "created_at, updated_at) VALUES ('client', 'Kept', 'kept', 'kept', '{}', 1, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    reversed_, forward = await reversed_and_again(engine, REDUNDANT)
    return reversed_, forward, (await engine.run_ddl(rows))[0]["n"]


def test_reversed_it_builds_them_again(database_url: str) -> None:
    engine = make_engine(settings_for(database_url))
    reversed_, forward, count = asyncio.run(reverse_and_forward(engine))
    assert reversed_ >= DROPPED, DROPPED - reversed_
    assert not DROPPED & forward
    assert reversed_ - forward == DROPPED
    assert count == 1


BULK = [
    "INSERT INTO customer (kind, name, name_sort, name_folded, attributes, version, "
    "created_at, updated_at) SELECT CASE WHEN g % 10 = 0 THEN 'prospect' ELSE 'client' END, "
    "'Bulk ' || g, 'bulk ' || g, 'bulk ' || g, {}, 1, "
    "now() - g * interval '1 minute', now() - g * interval '1 minute' "
    "FROM generate_series(1, 20000) g",
    "INSERT INTO customer_role (customer, kind, stage, phase, entered_at) "
    "SELECT id, kind, 'new', CASE WHEN id % 7 = 0 THEN 'ENDED' ELSE 'ENGAGEMENT' END, now() "
    "FROM customer",
    "VACUUM ANALYZE customer",
    "VACUUM ANALYZE customer_role",
]
SINCE = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
PAGES = {
    "kind": queries.CustomerQuery(kinds=("prospect",)),
    "phase": queries.CustomerQuery(phases=("ENDED",)),
    "created": queries.CustomerQuery(created_after=SINCE),
}
ORDER_INDEXES = {
    "CREATED_AT": "ix_customer_created_at_id",
    "UPDATED_AT": "ix_customer_updated_at_id",
    "NAME": "ix_customer_name_sort",
}


async def page_plans(state: AppState) -> dict[str, str]:
    await state.db.fetch(BULK[0], "{}")  # no attributes
    for statement in BULK[1:]:
        await state.db.fetch(statement)
    plans = {}
    for label, q in PAGES.items():
        for sort in ORDER_INDEXES:
            recording = Recording(state.db.engine, state.db.tables)
            await queries.list_customers(recording, q, sort, True, 21, None)
            ((sql, args),) = recording.statements
            rows = await state.db.fetch("EXPLAIN " + sql, *args)
            plans[f"{label} {sort}"] = "\n".join(row["QUERY PLAN"] for row in rows)
    return plans


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_postgres_pages_read_the_wider_indexes(database_url: str) -> None:
    plans = asyncio.run(with_state(settings_for(database_url), page_plans))
    for label, plan in plans.items():
        order_index = ORDER_INDEXES[label.split()[1]]
        if not label.startswith("created"):  # a range of creation reads its own index
            assert order_index in plan, (label, plan)
        assert "Seq Scan on customer c" not in plan, (label, plan)
        assert "ux_customer_role_customer_kind" in plan or "Join" not in plan, (label, plan)
        assert not any(re.search(rf"\b{name}\b", plan) for name in DROPPED), (label, plan)
