"""``ix_interaction_purchase``: the purchases (interactions with an amount,
about a fifth), by time, with the columns revenue groups and sums
(crmgraph.analytics.revenue), so a period's purchases are one index-only
range scan of a fifth of the rows instead of a scan of every interaction in
``ix_interaction_customer_analytics``, measured in docs/benchmarks.md's analytics
benchmark. Plain key columns on SQLite, which has no INCLUDE. Raw DDL, as
crmgraph_0027."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-25T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "purchases index"

PURCHASE = "WHERE amount IS NOT NULL"


def create_statements(engine_type: str) -> list[str]:
    if engine_type != "postgres":
        return [
            "CREATE INDEX ix_interaction_purchase ON interaction "
            f"(occurred_at, customer, amount, channel) {PURCHASE}"
        ]
    return [
        "CREATE INDEX ix_interaction_purchase ON interaction (occurred_at, customer) "
        f"INCLUDE (amount, channel) {PURCHASE}",
        "ANALYZE interaction",
    ]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        for statement in create_statements(engine.engine_type):
            await engine.run_ddl(statement)

    async def drop() -> None:
        await engine_finder().run_ddl("DROP INDEX ix_interaction_purchase")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
