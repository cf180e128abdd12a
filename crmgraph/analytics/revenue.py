"""Revenue (interactions with an amount: purchases) in the period, by segment."""

from __future__ import annotations

from dataclasses import dataclass

from crmgraph.analytics.facts import facts_ctes
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql
from crmgraph.db.engine import Database

SEGMENTS = {
    "KIND": "s.kind",
    "STAGE": "s.stage",
    "PHASE": "s.phase",
    "OWNER": "s.owner",
    "TEAM": "s.team",
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
    else:
        segment = scope.dialect.bucket("i.occurred_at", bucket) if bucket else SEGMENTS[by]
        stage = by in ("STAGE", "PHASE") and not bucket
        sql = Sql().add("WITH ").extend(scope.scoped_cte(stage=stage)).add(" ")
        sql.add(
            f"SELECT {segment} AS segment, COUNT(DISTINCT i.customer) AS customers, "
            "COUNT(*) AS purchases, SUM(i.amount) AS revenue "
            "FROM interaction i JOIN scoped s ON s.id = i.customer "
            "WHERE i.amount IS NOT NULL AND "
        )
        sql.extend(scope.period("i.occurred_at")).add(f" GROUP BY {segment}")
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
