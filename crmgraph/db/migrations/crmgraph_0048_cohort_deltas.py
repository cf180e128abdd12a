"""``cohort_size`` and ``cohort_activity`` as delta tables
(crmgraph.db.delta_fold): migration 0038 kept one counter row per key,
upserted by every write, so concurrent createCustomer and deleteCustomer
calls of one month queued on the same rows and deadlocked on PostgreSQL.
Their rows are copied as deltas (a counter row is one), the tables get an
``id`` and an index by key that is not unique, and the triggers insert
signed rows that a periodic fold sums (crmgraph.db.cohort_rollup).

Nothing to reverse: 0038 now makes the delta tables itself, so its own
reversal drops them."""

from crmgraph.db import cohort_rollup
from crmgraph.db.migrate import raw_migration

ID = "2026-12-07T03:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "cohort counts as deltas"


forwards = raw_migration(ID, DESCRIPTION, cohort_rollup.to_deltas, ())
