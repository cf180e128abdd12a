"""``customer_activity``: each customer's lifetime interaction totals, kept by
database triggers on ``interaction`` (crmgraph.db.activity holds the SQL and
says why triggers), and ``ix_interaction_occurred``. The existing history is
counted here once."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

from crmgraph.db import activity

ID = "2026-11-23T20:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer activity rollup"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        await engine.run_ddl(activity.OCCURRED_INDEX)
        for statement in activity.ACTIVITY.create_statements(engine.engine_type):
            await engine.run_ddl(statement)

    async def drop() -> None:
        engine = engine_finder()
        for statement in activity.ACTIVITY.drop_statements(engine.engine_type):
            await engine.run_ddl(statement)
        await engine.run_ddl("DROP INDEX ix_interaction_occurred")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
