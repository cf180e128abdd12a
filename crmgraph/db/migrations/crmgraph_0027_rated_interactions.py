"""Satisfaction over the rated interactions (crmgraph.analytics.satisfaction),
measured in docs/benchmarks.md's analytics benchmark:

- ``ix_interaction_rated``: the rated interactions only (about a third), by
  time, with every column the report groups and sums, so a period is one
  index-only range scan of a third of the rows instead of a scan of the table
  (or, for a recent period, heap fetches for the channel and outcome);
- ``ix_customer_deleted``: the deleted customers, the few a report over every
  active customer subtracts (``AnalyticsScope.left_out``) instead of joining
  each interaction with its customer;
- on PostgreSQL, statistics on the UTC day (``crmgraph.db.activity.utc_day``)
  with the keys satisfaction groups by: without them the planner expects a
  group per row and will not aggregate in parallel.

Plain key columns on SQLite, which has no INCLUDE. Raw DDL, as crmgraph_0009."""

from crmgraph.db.activity import utc_day
from crmgraph.db.migrate import raw_migration

ID = "2026-11-25T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "rated interactions index"

RATED_COLUMNS = "satisfaction, channel, outcome, direction"


def create_statements(engine_type: str) -> list[str]:
    deleted = "CREATE INDEX ix_customer_deleted ON customer (id) WHERE deleted_at IS NOT NULL"
    if engine_type != "postgres":
        return [
            "CREATE INDEX ix_interaction_rated ON interaction "
            f"(occurred_at, customer, {RATED_COLUMNS}) WHERE satisfaction IS NOT NULL",
            deleted,
        ]
    return [
        "CREATE INDEX ix_interaction_rated ON interaction (occurred_at, customer) "
        f"INCLUDE ({RATED_COLUMNS}) WHERE satisfaction IS NOT NULL",
        deleted,
        "CREATE STATISTICS interaction_day_keys (ndistinct) ON "
        f"({utc_day('occurred_at', sqlite=False)}), channel, outcome, direction "
        "FROM interaction",
        "ANALYZE interaction",
        "ANALYZE customer",
    ]


def drop_statements(engine_type: str) -> list[str]:
    statements = ["DROP INDEX ix_interaction_rated", "DROP INDEX ix_customer_deleted"]
    if engine_type == "postgres":
        statements.append("DROP STATISTICS interaction_day_keys")
    return statements


forwards = raw_migration(ID, DESCRIPTION, create_statements, drop_statements)
