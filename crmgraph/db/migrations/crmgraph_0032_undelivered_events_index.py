"""``ix_event_undelivered``: the outbox events not yet delivered, by id. The
dispatcher's pass (``WHERE delivered_at IS NULL ... ORDER BY id``,
crmgraph.events) and ``/metrics``' outbox lag (the oldest of them,
crmgraph.db.readings) read its first entries instead of walking the
delivered history in id order. Raw DDL, a partial index on both engines, as
crmgraph_0011's ``ix_event_unpublished``."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T20:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "undelivered events index"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def create() -> None:
        await engine_finder().run_ddl(
            "CREATE INDEX IF NOT EXISTS ix_event_undelivered ON event (id) "
            "WHERE delivered_at IS NULL"
        )

    async def drop() -> None:
        await engine_finder().run_ddl("DROP INDEX IF EXISTS ix_event_undelivered")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
