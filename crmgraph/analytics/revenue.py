"""Revenue (interactions with an amount: purchases) in the period, by segment."""

from __future__ import annotations

from dataclasses import dataclass

from crmgraph.analytics.facts import facts_ctes
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql
from crmgraph.db import activity, queries
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


async def revenue(
    db: Database, scope: AnalyticsScope, by: str = "KIND", bucket: str | None = None
) -> list[RevenueRow]:
    """By segment; with ``bucket`` (DAY, MONTH, YEAR) the segment is the
    calendar period instead."""
    if by == "RFM_SEGMENT" and not bucket:
        # each customer's purchases in the period are among its facts already
        sql = facts_ctes(scope, detail=False).add(
            " SELECT rfm_segment AS segment, COUNT(*) AS customers, SUM(purchases) AS purchases, "
            "SUM(purchase_total) AS revenue FROM scored WHERE purchases > 0 GROUP BY rfm_segment"
        )
    elif by in CUSTOMER_SEGMENTS and not bucket:
        sql = _by_customer_segment(scope, CUSTOMER_SEGMENTS[by], by in ("STAGE", "PHASE"))
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
