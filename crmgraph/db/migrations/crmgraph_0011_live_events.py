"""``event.published_at``: which outbox events a server process has handed to
the live subscribers (crmgraph.live). Events written before this migration
count as published: nobody was subscribed to them.

A partial index keeps the publisher's claim (the oldest unpublished events)
cheap however long the outbox grows. Raw DDL, like crmgraph_0010."""

from crmgraph.db.migrate import raw_migration

ID = "2026-11-23T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "live events"


forwards = raw_migration(
    ID,
    DESCRIPTION,
    [
        "ALTER TABLE event ADD COLUMN published_at TIMESTAMPTZ NULL",
        "UPDATE event SET published_at = created_at",
        "CREATE INDEX IF NOT EXISTS ix_event_unpublished ON event (id) WHERE published_at IS NULL",
    ],
    [
        "DROP INDEX IF EXISTS ix_event_unpublished",
        "ALTER TABLE event DROP COLUMN published_at",
    ],
)
