"""``event.next_attempt_at``: when the event dispatcher (crmgraph.events) may
hand an event whose handling failed to the plugin event handlers again. A
failed attempt sets it a growing pause ahead (crmgraph.events.Backoff), so a
handler that is down for a while does not use up an event's attempts in the
first seconds of a busy write load, as it did when every commit's pass
retried at once. NULL (every event before this migration, and every new one)
is due now, so existing rows need no update.

``ix_event_retrying``: the events waiting for a retry (or given up), by
customer: the dispatcher's pass holds a customer's later events behind one
that is not due yet (``NOT EXISTS`` over this index), and its pause reads the
earliest ``next_attempt_at`` here. Only failed, undelivered events are in it,
so it stays a few entries however long the outbox is. Raw DDL, a partial
index on both engines, as crmgraph_0032."""

from crmgraph.db.migrate import raw_migration

ID = "2026-12-07T02:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "event retry backoff"

RETRYING_INDEX = (
    "CREATE INDEX ix_event_retrying ON event (customer, id) "
    "WHERE delivered_at IS NULL AND next_attempt_at IS NOT NULL"
)


forwards = raw_migration(
    ID,
    DESCRIPTION,
    ["ALTER TABLE event ADD COLUMN next_attempt_at TIMESTAMPTZ NULL", RETRYING_INDEX],
    # the index first: SQLite drops no column an index names
    ["DROP INDEX ix_event_retrying", "ALTER TABLE event DROP COLUMN next_attempt_at"],
)
