"""``customer_month``: the calendar months (UTC) in which each customer had
interactions, kept by database triggers on ``interaction`` like
``customer_activity`` (crmgraph.db.activity holds the SQL). The existing
history is counted here once."""

from crmgraph.db import activity
from crmgraph.db.migrate import raw_migration

ID = "2026-11-24T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer months rollup"


forwards = raw_migration(
    ID, DESCRIPTION, activity.MONTHS.create_statements, activity.MONTHS.drop_statements
)
