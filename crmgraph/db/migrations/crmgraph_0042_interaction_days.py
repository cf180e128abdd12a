"""``interaction_day``: the rated interactions and purchases of every customer
together, by UTC day, channel, outcome and direction, kept by database
triggers on ``interaction`` like ``customer_activity`` (crmgraph.db.activity
holds the SQL and says why a tally of all customers). The reports over every
active customer read it instead of each interaction: at 10,000,000
interactions a few hundred thousand rows. The existing history is counted
here once."""

from crmgraph.db import activity
from crmgraph.db.migrate import raw_migration

ID = "2026-12-07T02:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "interaction days tally"


forwards = raw_migration(
    ID, DESCRIPTION, activity.DAYS.create_statements, activity.DAYS.drop_statements
)
