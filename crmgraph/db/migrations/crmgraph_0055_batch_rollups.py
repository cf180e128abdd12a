"""A bulk write of new customers counts them into the trigger-kept rollups
once (crmgraph.db.batch_rollups): on PostgreSQL the six insert triggers that
recounted the same new customers per table they were written to
(``customer_tally``'s of customer and customer_role, the cohorts' of
customer and stage_change, ``stage_flow``'s of customer_role and
stage_change) return at once while the transaction's ``crmgraph.rollups``
is ``'deferred'``, and ``crmgraph_rollups_of_new(ids)`` does their work in
one go after the writer's three COPYs.

The functions come from the generators the earlier migrations call
(customer_count_triggers, cohort_rollup, stage_flow), so a new database and
a migrated one have the same; the triggers are not touched, only the
functions replaced. Reversed: the functions as before, without the check,
and no catching-up function. SQLite: nothing (its row triggers stay)."""

from crmgraph.db import batch_rollups
from crmgraph.db.migrate import raw_migration

ID = "2026-12-07T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "new customers' rollups once per batch"


forwards = raw_migration(
    ID, DESCRIPTION, batch_rollups.create_statements, batch_rollups.drop_statements
)
