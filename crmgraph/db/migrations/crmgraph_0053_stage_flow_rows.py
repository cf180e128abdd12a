"""``stage_flow``'s triggers made again (crmgraph.db.stage_flow.rewritten):
on SQLite the measures query is written once, in the view
``stage_flow_entry``, and each write is a BEFORE/AFTER pair of small
triggers reading its own entries through it, where each trigger spelled the
whole query out (39 KB of schema that SQLite parses again on every
connection piccolo opens, one per statement); on both engines the folds
look only at the keys of the last 1,024 rows instead of grouping the whole
table every 256 rows. The counts are not touched: the same measures.

Nothing to reverse: 0049 now makes the triggers this way, so its own
reversal drops them."""

from crmgraph.db import stage_flow
from crmgraph.db.migrate import raw_migration

ID = "2026-12-07T08:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "funnel count triggers by entry"


forwards = raw_migration(ID, DESCRIPTION, stage_flow.rewritten, ())
