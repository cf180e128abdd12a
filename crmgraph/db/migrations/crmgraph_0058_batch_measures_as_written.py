"""A batch of new customers' ``stage_flow`` measures are planned as written
(crmgraph.db.batch_rollups, crmgraph.db.trigger_sql.AS_WRITTEN):
``crmgraph_rollups_of_new`` runs its ``stage_flow`` INSERT with
``join_collapse_limit = 1`` and ``enable_sort = off``, set for that statement
alone and set back after it. PostgreSQL's own plan joined each of a batch's
entries to the dozen measures before looking up its customer and role, and
sorted the rows on their text keys to group them.

Reversed: the function as 0056 left it. SQLite: nothing (a batch there is
row triggers)."""

from crmgraph.db import batch_rollups
from crmgraph.db.migrate import raw_migration

ID = "2026-12-08T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "a batch's stage_flow measures planned as written"


forwards = raw_migration(
    ID, DESCRIPTION, batch_rollups.planned_as_written, batch_rollups.planned_by_the_planner
)
