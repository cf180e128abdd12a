"""``ix_need_open``: each customer's open needs with their due dates
(crmgraph.db.activity.OPEN_NEEDS_INDEX), which the analytics facts count."""

from crmgraph.db import activity
from crmgraph.db.migrate import raw_migration

ID = "2026-11-25T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "open needs index"


forwards = raw_migration(ID, DESCRIPTION, [activity.OPEN_NEEDS_INDEX], ["DROP INDEX ix_need_open"])
