"""``ix_need_open``: each customer's open needs with their due dates
(crmgraph.db.activity.OPEN_NEEDS_INDEX), which the analytics facts count."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

from crmgraph.db import activity

ID = "2026-11-25T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "open needs index"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def create() -> None:
        await engine_finder().run_ddl(activity.OPEN_NEEDS_INDEX)

    async def drop() -> None:
        await engine_finder().run_ddl("DROP INDEX ix_need_open")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
