"""``event.published_at``: which outbox events a server process has handed to
the live subscribers (crmgraph.live). Events written before this migration
count as published: nobody was subscribed to them.

A partial index keeps the publisher's claim (the oldest unpublished events)
cheap however long the outbox grows. Raw DDL, like crmgraph_0010."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "live events"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def add_column() -> None:
        engine = engine_finder()
        await engine.run_ddl("ALTER TABLE event ADD COLUMN published_at TIMESTAMPTZ NULL")
        await engine.run_ddl("UPDATE event SET published_at = created_at")
        await engine.run_ddl(
            "CREATE INDEX IF NOT EXISTS ix_event_unpublished ON event (id) "
            "WHERE published_at IS NULL"
        )

    async def drop_column() -> None:
        engine = engine_finder()
        await engine.run_ddl("DROP INDEX IF EXISTS ix_event_unpublished")
        await engine.run_ddl("ALTER TABLE event DROP COLUMN published_at")

    manager.add_raw(add_column)
    manager.add_raw_backwards(drop_column)
    return manager
