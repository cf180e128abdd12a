"""The plugin's own table, in its own piccolo app."""

from __future__ import annotations

from piccolo.columns import Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class LoyaltyAccount(Table, tablename="loyalty_account"):
    # A plain integer, not a ForeignKey: a foreign key into crmgraph's app would
    # tie this app's migrations to the core's table classes; the unique
    # constraint is what the upserts rely on.
    customer_id = Integer(unique=True)
    points = Integer(default=0)
    tier = Varchar(length=16, default="BRONZE")
    updated_at = Timestamptz(default=TimestamptzNow())


TABLES = (LoyaltyAccount,)
