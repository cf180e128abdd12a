"""``crmgraph_refuse(reason)``: PostgreSQL, a function that raises (SQLSTATE
``CRG01``, the reason as its message) for the write queue's guards
(crmgraph.db.write_batch): a batch sent as one statement outside an explicit
transaction checks in the statement itself that the customer it writes to is
live, and this function's error aborts the whole statement when it is not.
SQLite: nothing (it has no write queue)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T21:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "guard function"

CREATE = """
CREATE OR REPLACE FUNCTION crmgraph_refuse(reason text) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'CRG01', MESSAGE = reason;
END
$$
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        if engine.engine_type == "postgres":
            await engine.run_ddl(CREATE)

    async def drop() -> None:
        engine = engine_finder()
        if engine.engine_type == "postgres":
            await engine.run_ddl("DROP FUNCTION crmgraph_refuse(text)")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
