"""The PostgreSQL pool hands a connection back without asyncpg's reset query
(one round trip per statement instead of two), unless
CRMGRAPH_POOL_RESET_SESSION asks for it; an open transaction is rolled back
either way."""

from __future__ import annotations

import pytest

from crmgraph.db.engine import Database, make_engine
from crmgraph.settings import Settings
from crmgraph.testing import PG_SERVER, require_postgres

SET_NAME = "SELECT set_config('application_name', 'crmgraph-pool-test', false) AS v"
READ_NAME = "SELECT current_setting('application_name') AS v"


@pytest.fixture
def postgres_url() -> str:
    require_postgres()
    return f"{PG_SERVER}/postgres"


async def session_setting_after_release(url: str, reset_session: bool) -> str:
    """Sets a session variable through the pool, then reads it back on the
    pool's only connection."""
    settings = Settings(
        database_url=url,
        pool_min_size=1,
        pool_max_size=1,
        pool_reset_session=reset_session,
    )
    db = Database(make_engine(settings), ())
    await db.start(settings)
    try:
        await db.fetch(SET_NAME)
        return str((await db.fetch(READ_NAME))[0]["v"])
    finally:
        await db.stop()


@pytest.mark.parametrize(("reset_session", "expected"), [(False, "crmgraph-pool-test"), (True, "")])
async def test_reset_query_only_when_asked(
    postgres_url: str, reset_session: bool, expected: str
) -> None:
    assert await session_setting_after_release(postgres_url, reset_session) == expected


async def test_open_transaction_is_rolled_back_on_release(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url, pool_min_size=1, pool_max_size=1)
    db = Database(make_engine(settings), ())
    await db.start(settings)
    try:
        pool = db.engine.pool  # type: ignore[attr-defined]
        async with pool.acquire() as connection:
            await connection.execute("BEGIN")
            await connection.execute("CREATE TEMP TABLE left_open (x int)")
        # the release rolled the transaction back: the table never existed
        assert (await db.fetch("SELECT to_regclass('pg_temp.left_open') IS NULL AS gone"))[0][
            "gone"
        ]
    finally:
        await db.stop()
