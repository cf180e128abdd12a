"""An index for the analytics (crmgraph.analytics): every per-customer read of
interactions (activity facts behind RFM, churn and knowledge; satisfaction;
revenue) finds the columns it aggregates in the index, so PostgreSQL answers
with an index-only scan in customer order instead of fetching each customer's
rows from the heap: about a million random buffer reads per report over
100,000 customers and 1,000,000 interactions (bench/analytics.py; docs/benchmarks.md's
benchmark section has the timings, with the SQL changes made at the same time).

Plain key columns rather than INCLUDE, so the same statement works on SQLite.
Raw DDL, like crmgraph_0002, since piccolo's column options cannot express it."""

from crmgraph.db.migrate import raw_migration

ID = "2026-11-23T12:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "analytics indexes"

ANALYTICS_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_interaction_customer_analytics ON interaction "
    "(customer, occurred_at, amount, satisfaction, channel, outcome, direction)",
)


DROPS = tuple(
    f"DROP INDEX IF EXISTS {statement.split(' EXISTS ', 1)[1].split(' ON ', 1)[0]}"
    for statement in ANALYTICS_INDEXES
)

forwards = raw_migration(ID, DESCRIPTION, ANALYTICS_INDEXES, DROPS)
