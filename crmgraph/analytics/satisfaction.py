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
    measures = (
        "COUNT(*) AS rated, AVG(i.satisfaction * 1.0) AS average, "
        "SUM(CASE WHEN i.satisfaction >= 4 THEN 1 ELSE 0 END) AS satisfied"
    )
    rated = Sql().add("WITH ").extend(scope.scoped_cte()).add(", ")
    rated.add("rated AS (SELECT i.* FROM interaction i JOIN scoped s ON s.id = i.customer ")
    rated.add("WHERE i.satisfaction IS NOT NULL AND ").extend(scope.period("i.occurred_at"))
    rated.add(
        f") SELECT {key} AS key, NULL AS period, {measures} FROM rated i GROUP BY {key} "
        f"UNION ALL SELECT {key}, {period}, {measures} FROM rated i GROUP BY {key}, {period}"
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
