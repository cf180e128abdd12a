"""``ix_event_undelivered``: the outbox events not yet delivered, by id. The
dispatcher's pass (``WHERE delivered_at IS NULL ... ORDER BY id``,
crmgraph.events) and ``/metrics``' outbox lag (the oldest of them,
crmgraph.db.readings) read its first entries instead of walking the
delivered history in id order. Raw DDL, a partial index on both engines, as
crmgraph_0011's ``ix_event_unpublished``."""

from crmgraph.db.migrate import raw_migration

ID = "2026-12-06T20:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "undelivered events index"


forwards = raw_migration(
    ID,
    DESCRIPTION,
    ["CREATE INDEX IF NOT EXISTS ix_event_undelivered ON event (id) WHERE delivered_at IS NULL"],
    ["DROP INDEX IF EXISTS ix_event_undelivered"],
)
