"""Satisfaction at each moment of truth: rated interactions (1-5) by channel
or by outcome, overall and per calendar bucket. ``satisfied`` counts ratings
of 4 or 5 (the CSAT share)."""

from __future__ import annotations

from dataclasses import dataclass

from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql, rounded
from crmgraph.db.engine import Database

GROUPINGS = {"CHANNEL": "i.channel", "OUTCOME": "i.outcome", "DIRECTION": "i.direction"}


@dataclass(frozen=True)
class SatisfactionRow:
    key: str | None
    period: str | None  # None on overall rows
    rated: int
    average: float
    satisfied_share: float


@dataclass(frozen=True)
class Satisfaction:
    overall: list[SatisfactionRow]
    over_time: list[SatisfactionRow]


async def satisfaction(
    db: Database, scope: AnalyticsScope, by: str = "CHANNEL", bucket: str = "MONTH"
) -> Satisfaction:
    key = GROUPINGS[by]
    period = scope.dialect.bucket("i.occurred_at", bucket)
    # One pass over the rated interactions, per key and calendar bucket; the
    # overall rows add the buckets up. Both engines compute AVG(x) as
    # SUM(x) / COUNT(x), so the averages are the values of
    # AVG(i.satisfaction * 1.0), from integer sums (faster than numeric ones).
    rated = Sql().add("WITH ").extend(scope.scoped_cte(stage=False)).add(", ")
    rated.add(
        f"buckets AS (SELECT {key} AS key, {period} AS period, COUNT(*) AS rated, "
        "SUM(i.satisfaction) AS total, "
        "SUM(CASE WHEN i.satisfaction >= 4 THEN 1 ELSE 0 END) AS satisfied "
        "FROM interaction i JOIN scoped s ON s.id = i.customer "
        "WHERE i.satisfaction IS NOT NULL AND "
    )
    rated.extend(scope.period("i.occurred_at")).add(f" GROUP BY {key}, {period}) ")
    rated.add(
        "SELECT key, NULL AS period, SUM(rated) AS rated, "
        "SUM(total) * 1.0 / SUM(rated) AS average, SUM(satisfied) AS satisfied "
        "FROM buckets GROUP BY key "
        "UNION ALL SELECT key, period, rated, total * 1.0 / rated, satisfied FROM buckets"
    )
    overall, over_time = [], []
    for row in await rated.fetch(db):
        n = int(row["rated"])
        item = SatisfactionRow(
            row["key"],
            row["period"],
            n,
            rounded(row["average"]) or 0.0,
            round(int(row["satisfied"]) / n, 4),
        )
        (overall if item.period is None else over_time).append(item)
    overall.sort(key=lambda r: (r.key is None, r.key or ""))
    over_time.sort(key=lambda r: (r.key is None, r.key or "", r.period or ""))
    return Satisfaction(overall, over_time)
