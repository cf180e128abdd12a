"""``customer_month`` counts each customer's purchases per month too, and
``purchase_month`` how many customers bought in each month (UTC), kept by row
triggers on ``customer_month`` (crmgraph.db.activity.BUYERS): the customers
of a month of revenue over every active customer (crmgraph.analytics.revenue)
without a COUNT(DISTINCT) of the month's purchases. ``customer_month`` is
made again, with its triggers, and counted again from the interactions."""

from dataclasses import replace

from crmgraph.db import activity
from crmgraph.db.migrate import raw_migration

ID = "2026-12-07T02:25:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "purchase months"

# customer_month as migration 0019 made it
EARLIER_MONTHS = replace(
    activity.MONTHS, values=activity.MONTHS.values[:1], watched=("customer", "occurred_at")
)


def create_statements(engine_type: str) -> list[str]:
    return [
        *EARLIER_MONTHS.drop_statements(engine_type),
        *activity.MONTHS.create_statements(engine_type),
        *activity.BUYERS.create_statements(engine_type),
    ]


def drop_statements(engine_type: str) -> list[str]:
    return [
        *activity.BUYERS.drop_statements(engine_type),
        *activity.MONTHS.drop_statements(engine_type),
        *EARLIER_MONTHS.create_statements(engine_type),
    ]


forwards = raw_migration(ID, DESCRIPTION, create_statements, drop_statements)
