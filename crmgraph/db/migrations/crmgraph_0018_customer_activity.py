"""``customer_activity``: each customer's lifetime interaction totals, kept by
database triggers on ``interaction`` (crmgraph.db.activity holds the SQL and
says why triggers), and ``ix_interaction_occurred``. The existing history is
counted here once."""

from crmgraph.db import activity
from crmgraph.db.migrate import raw_migration

ID = "2026-11-23T20:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer activity rollup"


def create_statements(engine_type: str) -> list[str]:
    return [activity.OCCURRED_INDEX, *activity.ACTIVITY.create_statements(engine_type)]


def drop_statements(engine_type: str) -> list[str]:
    return [*activity.ACTIVITY.drop_statements(engine_type), "DROP INDEX ix_interaction_occurred"]


forwards = raw_migration(ID, DESCRIPTION, create_statements, drop_statements)
