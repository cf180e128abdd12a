"""A batch of new customers folds its ``stage_flow`` rows once
(crmgraph.db.batch_rollups, crmgraph.db.delta_fold.batch_folded):
``crmgraph_rollups_of_new`` sets the transaction's ``crmgraph.folding`` to
``'batch'`` around its ``stage_flow`` INSERT, so that the fold trigger
(every 256th row, the keys of the last 1,024) returns at once, and then
folds exactly the keys of the rows it inserted, under the folds' advisory
lock. At 1,000,000 customers the trigger folded a batch of 1,000 new
customers' ~1,600 rows some 12 times, ~230 ms of the function's ~370.

Both functions come from the generators, so a new database and a migrated
one have the same; the trigger is not touched. Reversed: both as 0055 left
them. SQLite: nothing (a batch there is row triggers, as before)."""

from crmgraph.db import batch_rollups
from crmgraph.db.migrate import raw_migration

ID = "2026-12-07T09:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "a batch of new customers folds its stage_flow rows once"


forwards = raw_migration(ID, DESCRIPTION, batch_rollups.batch_folds, batch_rollups.unbatched_folds)
