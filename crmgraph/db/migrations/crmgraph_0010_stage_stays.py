"""``stage_change.left_at`` and ``next_stage``: where and when each stay in a
stage ended (crmgraph.db.stays), filled here for the history already written.

Raw DDL, like crmgraph_0009: piccolo runs a migration's raw steps before its
column operations, and the backfill needs the columns first."""

from crmgraph.db.migrate import raw_migration
from crmgraph.db.stays import RECORD_STAYS

ID = "2026-11-23T18:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "stage stays"

COLUMNS = (("left_at", "TIMESTAMPTZ"), ("next_stage", "VARCHAR(64)"))


forwards = raw_migration(
    ID,
    DESCRIPTION,
    [
        *(f"ALTER TABLE stage_change ADD COLUMN {name} {type_} NULL" for name, type_ in COLUMNS),
        RECORD_STAYS.format(where=""),
    ],
    [f"ALTER TABLE stage_change DROP COLUMN {name}" for name, _ in COLUMNS],
)
