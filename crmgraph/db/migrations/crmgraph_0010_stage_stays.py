"""``stage_change.left_at`` and ``next_stage``: where and when each stay in a
stage ended (crmgraph.db.stays), filled here for the history already written.

Raw DDL, like crmgraph_0009: piccolo runs a migration's raw steps before its
column operations, and the backfill needs the columns first."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

from crmgraph.db.stays import RECORD_STAYS

ID = "2026-11-23T18:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "stage stays"

COLUMNS = (("left_at", "TIMESTAMPTZ"), ("next_stage", "VARCHAR(64)"))


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def add_columns() -> None:
        engine = engine_finder()
        for name, sql_type in COLUMNS:
            await engine.run_ddl(f"ALTER TABLE stage_change ADD COLUMN {name} {sql_type} NULL")
        await engine.run_ddl(RECORD_STAYS.format(where=""))

    async def drop_columns() -> None:
        engine = engine_finder()
        for name, _ in COLUMNS:
            await engine.run_ddl(f"ALTER TABLE stage_change DROP COLUMN {name}")

    manager.add_raw(add_columns)
    manager.add_raw_backwards(drop_columns)
    return manager
