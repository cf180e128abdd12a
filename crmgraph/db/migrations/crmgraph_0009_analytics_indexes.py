"""An index for the analytics (crmgraph.analytics): every per-customer read of
interactions (activity facts behind RFM, churn and knowledge; satisfaction;
revenue) finds the columns it aggregates in the index, so PostgreSQL answers
with an index-only scan in customer order instead of fetching each customer's
rows from the heap: about a million random buffer reads per report over
100,000 customers and 1,000,000 interactions (bench/analytics.py; docs/benchmarks.md's
benchmark section has the timings, with the SQL changes made at the same time).

Plain key columns rather than INCLUDE, so the same statement works on SQLite.
Raw DDL, like crmgraph_0002, since piccolo's column options cannot express it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T12:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "analytics indexes"

ANALYTICS_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_interaction_customer_analytics ON interaction "
    "(customer, occurred_at, amount, satisfaction, channel, outcome, direction)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def create_indexes() -> None:
        engine = engine_finder()
        for statement in ANALYTICS_INDEXES:
            await engine.run_ddl(statement)

    async def drop_indexes() -> None:
        engine = engine_finder()
        for statement in ANALYTICS_INDEXES:
            name = statement.split(" EXISTS ", 1)[1].split(" ON ", 1)[0]
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
