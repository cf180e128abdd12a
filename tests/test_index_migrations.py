"""Migrations that add indexes (crmgraph.db.migrate.index_migration) on both
engines: on PostgreSQL each index is built CONCURRENTLY, outside a
transaction, so a large table keeps taking writes; a build stopped half way
leaves an index PostgreSQL marks invalid, which the next run drops and builds
again instead of keeping it because it exists; a PostgreSQL-only index is
not built on SQLite; running the step twice changes nothing."""

from __future__ import annotations

import asyncio

import pytest
from piccolo.engine.base import Engine

from crmgraph.db import piccolo_conf
from crmgraph.db.engine import make_engine
from crmgraph.db.migrate import Index, build_indexes
from crmgraph.testing import settings_for

INDEXES = [
    Index("ix_crowd_n", "crowd", "(n)"),
    Index("ix_crowd_gin", "crowd", "USING gin (tags)", postgres_only=True),
]


async def built(engine: Engine) -> dict[str, bool]:
    """The crowd table's indexes, each with whether queries can use it."""
    if engine.engine_type == "sqlite":
        rows = await engine.run_ddl(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'crowd'"
        )
        return {row["name"]: True for row in rows}
    rows = await engine.run_ddl(
        "SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'crowd'::regclass"
    )
    return {row["name"]: row["valid"] for row in rows}


async def scenario(database_url: str) -> list[dict[str, bool]]:
    engine = make_engine(settings_for(database_url))
    piccolo_conf.DB = engine
    postgres = engine.engine_type == "postgres"
    tags = "text[]" if postgres else "text"
    await engine.run_ddl(f"CREATE TABLE crowd (n integer, tags {tags})")
    await engine.run_ddl("INSERT INTO crowd (n) VALUES (1), (1)")
    seen = []
    if postgres:
        # a build that failed half way (here: a unique index over equal values)
        with pytest.raises(Exception, match="could not create unique index"):
            await engine.run_ddl("CREATE UNIQUE INDEX CONCURRENTLY ix_crowd_n ON crowd (n)")
    seen.append(await built(engine))
    await build_indexes(INDEXES, ())
    seen.append(await built(engine))
    await build_indexes(INDEXES, ())
    seen.append(await built(engine))
    return seen


def test_indexes_are_built_once_and_an_invalid_one_again(database_url: str) -> None:
    before, after, again = asyncio.run(scenario(database_url))
    if database_url.startswith("postgresql"):
        assert before == {"ix_crowd_n": False}  # the failed build's leftover
        assert after == {"ix_crowd_n": True, "ix_crowd_gin": True}
    else:
        assert before == {}
        assert after == {"ix_crowd_n": True}
    assert again == after
