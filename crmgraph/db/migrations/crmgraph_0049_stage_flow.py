"""``stage_flow``: the lifecycle funnel's counts per stage, move and day,
kept by triggers (crmgraph.db.stage_flow), and the indexes the funnel's
checks read (issue 28: the funnel read the whole stage history per request)."""

from crmgraph.db import stage_flow
from crmgraph.db.migrate import raw_migration

ID = "2026-12-07T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "funnel counts by trigger"


forwards = raw_migration(ID, DESCRIPTION, stage_flow.create_statements, stage_flow.drop_statements)
