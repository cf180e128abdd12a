"""``customer_cohort``, ``cohort_size`` and ``cohort_activity``: cohort
retention's counts kept by triggers (crmgraph.db.cohort_rollup says how and
why); every customer's cohorts counted here once."""

from crmgraph.db import cohort_rollup
from crmgraph.db.migrate import raw_migration

ID = "2026-12-07T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "cohort counts"


forwards = raw_migration(
    ID, DESCRIPTION, cohort_rollup.create_statements, cohort_rollup.drop_statements
)
