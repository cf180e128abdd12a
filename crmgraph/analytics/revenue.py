"""Revenue (interactions with an amount: purchases) in the period, by segment."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from crmgraph.analytics import rfm
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql
from crmgraph.db import activity, queries, tallies
from crmgraph.db.engine import Database

# Segments that are a column of the customer: each customer is in one, so a
# segment's customers are its rows of purchases per customer.
CUSTOMER_SEGMENTS = {
    "KIND": "s.kind",
    "STAGE": "s.stage",
    "PHASE": "s.phase",
    "OWNER": "s.owner",
    "TEAM": "s.team",
}
SEGMENTS = {
    **CUSTOMER_SEGMENTS,
    "CHANNEL": "i.channel",
    "RFM_SEGMENT": "",  # from the facts: see below
}


@dataclass(frozen=True)
class RevenueRow:
    segment: str | None
    customers: int
    purchases: int
    revenue: float
    average_order_value: float


def _by_customer_segment(scope: AnalyticsScope, segment: str, stage: bool) -> Sql:
    """When the period holds every interaction, each customer's lifetime
    purchases are in ``customer_activity`` (as the facts read them): a
    customer is in one segment, so a segment's customers are its rollup rows,
    about 83,000 of them joined with the customers, instead of 200,000
    purchases joined one by one and sorted for COUNT(DISTINCT). Otherwise the
    purchases in the period, from ``ix_interaction_purchase`` (migration
    0028), joined with the customers in scope before grouping, so a filtered
    scope reads only its customers' purchases. The two are branches of one
    UNION ALL gated by the same test: exactly one contributes rows."""
    covers = activity.covers_every_interaction(scope.ts())
    span = (scope.starts_at, scope.ends_at)
    sql = Sql().add("WITH ").extend(scope.scoped_cte(stage=stage))
    sql.add(
        f" SELECT {segment} AS segment, COUNT(*) AS customers, SUM(a.purchases) AS purchases, "
        "SUM(a.purchase_cents) / 100.0 AS revenue "
        "FROM customer_activity a JOIN scoped s ON s.id = a.customer_id "
        f"WHERE a.purchases > 0 AND {covers} GROUP BY {segment} "
        f"UNION ALL SELECT {segment}, COUNT(DISTINCT i.customer), COUNT(*), SUM(i.amount) "
        f"FROM interaction i JOIN scoped s ON s.id = i.customer WHERE NOT ({covers}) "
        "AND i.amount IS NOT NULL AND ",
        *span,
        *span,
    )
    return sql.extend(scope.period("i.occurred_at")).add(f" GROUP BY {segment}")


def _by_purchase_key(scope: AnalyticsScope, by: str, bucket: str | None) -> Sql:
    """Per channel or calendar bucket, from the purchases themselves
    (``ix_interaction_purchase``, index-only). A bucket is grouped by its
    first day and formatted once per bucket afterwards. For a scope of every
    active customer the few left out are excluded by id (a hashed list of
    about 1,000) instead of joining each purchase with its customer: the join
    and the text bucket of every row were most of the time of the report by
    month."""
    d = scope.dialect
    key = d.bucket_start("i.occurred_at", bucket) if bucket else SEGMENTS[by]
    sql = Sql().add("WITH ")
    left_out = scope.left_out()
    if left_out is None:
        sql.extend(scope.scoped_cte(stage=False)).add(", ")
        source = Sql().add("interaction i JOIN scoped s ON s.id = i.customer WHERE ")
    else:
        where = queries.customer_where(left_out)
        source = Sql().add(
            f"interaction i WHERE i.customer NOT IN (SELECT c.id FROM customer c "
            f"WHERE {where.sql()}) AND ",
            *where.args,
        )
    sql.add(
        f"sales AS (SELECT {key} AS key, COUNT(DISTINCT i.customer) AS customers, "
        "COUNT(*) AS purchases, SUM(i.amount) AS revenue FROM "
    )
    sql.extend(source).add("i.amount IS NOT NULL AND ")
    sql.extend(scope.period("i.occurred_at")).add(f" GROUP BY {key}) ")
    segment = d.day_bucket("key", bucket) if bucket else "key"
    return sql.add(f"SELECT {segment} AS segment, customers, purchases, revenue FROM sales")


def _month_start(month: str, sqlite: bool) -> str:
    """The first day of a ``month_number``, as ``Dialect.bucket_start`` gives it."""
    if sqlite:
        return f"printf('%04d-%02d-01', {month} / 12, {month} % 12 + 1)"
    return f"make_timestamp({month} / 12, {month} % 12 + 1, 1, 0, 0, 0)"


def _day_month(day: str, sqlite: bool) -> str:
    """The first day of the month of a tally's day, as ``bucket_start`` gives it."""
    if sqlite:
        return f"strftime('%Y-%m-01', {day})"
    return f"date_trunc('month', CAST({day} AS TIMESTAMP))"


def _whole_months(scope: AnalyticsScope, first: datetime.date, after: datetime.date) -> Sql:
    """(key, customers, purchases, revenue) of every customer's whole months
    ``[first, after)``: the buyers from ``purchase_month``, the purchases from
    the tally ``interaction_day``'s delta rows, summed here, not through its
    view (crmgraph.db.tallies); only those that change a purchase sum (a
    sixth of them: the month of each is computed for these only)."""
    sqlite = scope.dialect.sqlite
    (a, a_value), (b, b_value) = (tallies.day_value(d, sqlite) for d in (first, after))
    month = _day_month("t.day", sqlite)
    return Sql().add(
        f"SELECT {_month_start('b.month', sqlite)} AS key, b.customers AS customers, "
        "0 AS purchases, 0 AS revenue FROM purchase_month b WHERE b.month >= {} "
        f"AND b.month < {{}} UNION ALL SELECT {month}, 0, SUM(t.purchases), "
        f"SUM(t.purchase_cents) / 100.0 FROM {activity.DAYS.table} t "
        f"WHERE (t.purchases <> 0 OR t.purchase_cents <> 0) AND t.day >= {a} "
        f"AND t.day < {b} GROUP BY {month} HAVING SUM(t.purchases) > 0",
        tallies.month_of(first),
        tallies.month_of(after),
        a_value,
        b_value,
    )


def _by_month_tallied(scope: AnalyticsScope, left_out: queries.CustomerQuery) -> Sql:
    """Per month over every active customer: whole months from the rollups
    (a month's buyers are not a sum of its days), the less than a month at
    either end (the period ends now, as a rule) from the purchases, less the
    few customers left out (a partition: buyers add up across it), instead of
    the COUNT(DISTINCT) of every purchase's customer per month."""
    d, ts = scope.dialect, scope.ts()
    key = d.bucket_start("i.occurred_at", "MONTH")
    split = tallies.DaySplit.of_months(scope.starts_at, scope.ends_at)
    edges = split.edges if split.days or split.edges else ((scope.starts_at, scope.ends_at),)
    sql = Sql().add("WITH sales AS (SELECT key, SUM(customers) AS customers, ")
    sql.add("SUM(purchases) AS purchases, SUM(revenue) AS revenue FROM (")
    parts = [_whole_months(scope, *split.days)] if split.days else []
    for starts, ends in edges:
        parts.append(
            Sql().add(
                f"SELECT {key} AS key, COUNT(DISTINCT i.customer) AS customers, "
                "COUNT(*) AS purchases, SUM(i.amount) AS revenue "
                "FROM interaction i WHERE i.customer IS NOT NULL AND i.amount IS NOT NULL "
                f"AND i.occurred_at >= {ts} AND i.occurred_at < {ts} GROUP BY {key}",
                starts,
                ends,
            )
        )
    where = queries.customer_where(left_out)
    ids = tallies.left_out_ids(where.sql(), d.fence)
    parts.append(
        Sql()
        .add(
            f"SELECT {key}, -COUNT(DISTINCT i.customer), -COUNT(*), -SUM(i.amount) "
            f"FROM interaction i WHERE i.customer IN ({ids}) "
            "AND i.amount IS NOT NULL AND ",
            *where.args,
        )
        .extend(scope.period("i.occurred_at"))
        .add(f" GROUP BY {key}")
    )
    for n, part in enumerate(parts):
        sql.add(" UNION ALL " if n else "").extend(part)
    sql.add(") m GROUP BY key HAVING SUM(purchases) > 0) ")
    segment = d.day_bucket("key", "MONTH")
    return sql.add(f"SELECT {segment} AS segment, customers, purchases, revenue FROM sales")


async def revenue(
    db: Database, scope: AnalyticsScope, by: str = "KIND", bucket: str | None = None
) -> list[RevenueRow]:
    """By segment; with ``bucket`` (DAY, MONTH, YEAR) the segment is the
    calendar period instead."""
    if by == "RFM_SEGMENT" and not bucket:
        # each buyer's segment from its purchases alone
        sql = await rfm.segment_totals_sql(db, scope, buyers_only=True)
    elif by in CUSTOMER_SEGMENTS and not bucket:
        sql = _by_customer_segment(scope, CUSTOMER_SEGMENTS[by], by in ("STAGE", "PHASE"))
    elif bucket == "MONTH" and (left_out := scope.left_out()) is not None:
        sql = _by_month_tallied(scope, left_out)
    else:
        sql = _by_purchase_key(scope, by, bucket)
    rows = []
    for row in await sql.fetch(db):
        total, purchases = round(float(row["revenue"] or 0), 2), int(row["purchases"])
        value = row["segment"]
        rows.append(
            RevenueRow(
                None if value is None else str(value),
                int(row["customers"]),
                purchases,
                total,
                round(total / purchases, 2) if purchases else 0.0,
            )
        )
    if bucket:
        return sorted(rows, key=lambda r: r.segment or "")
    return sorted(rows, key=lambda r: (-r.revenue, r.segment or ""))
