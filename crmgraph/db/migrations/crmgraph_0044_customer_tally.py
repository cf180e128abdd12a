"""``customer_tally``: how many customers each combination of deleted, kind,
stage, phase and further roles holds, kept by triggers on ``customer`` and
``customer_role`` (crmgraph.db.customer_counts says why; its triggers are in
crmgraph.db.customer_count_triggers), so a list's ``totalCount`` under those
filters is a sum of a few rows rather than a count of the table. The
existing customers are counted here once."""

from crmgraph.db import customer_count_triggers
from crmgraph.db.migrate import raw_migration

ID = "2026-12-07T02:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer tally"


forwards = raw_migration(
    ID,
    DESCRIPTION,
    customer_count_triggers.create_statements,
    customer_count_triggers.drop_statements,
)
