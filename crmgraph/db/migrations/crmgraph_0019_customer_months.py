"""``customer_month``: the calendar months (UTC) in which each customer had
interactions, kept by database triggers on ``interaction`` like
``customer_activity`` (crmgraph.db.activity holds the SQL). The existing
history is counted here once."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

from crmgraph.db import activity

ID = "2026-11-24T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer months rollup"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        for statement in activity.MONTHS.create_statements(engine.engine_type):
            await engine.run_ddl(statement)

    async def drop() -> None:
        engine = engine_finder()
        for statement in activity.MONTHS.drop_statements(engine.engine_type):
            await engine.run_ddl(statement)

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
