"""``ix_interaction_purchase``: the purchases (interactions with an amount,
about a fifth), by time, with the columns revenue groups and sums
(crmgraph.analytics.revenue), so a period's purchases are one index-only
range scan of a fifth of the rows instead of a scan of every interaction in
``ix_interaction_customer_analytics``, measured in docs/benchmarks.md's analytics
benchmark. Plain key columns on SQLite, which has no INCLUDE. Raw DDL, as
crmgraph_0027."""

from crmgraph.db.migrate import raw_migration

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


forwards = raw_migration(ID, DESCRIPTION, create_statements, ["DROP INDEX ix_interaction_purchase"])
