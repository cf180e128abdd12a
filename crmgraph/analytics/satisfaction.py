"""Satisfaction at each moment of truth: rated interactions (1-5) by channel
or by outcome, overall and per calendar bucket. ``satisfied`` counts ratings
of 4 or 5 (the CSAT share)."""

from __future__ import annotations

from dataclasses import dataclass

from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql, rounded
from crmgraph.db import queries
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
    key, d = GROUPINGS[by], scope.dialect
    # One pass over the rated interactions (index-only on the partial index
    # ix_interaction_rated, migration 0027) per key and UTC day: grouping by
    # a date is cheaper than formatting every row's bucket, and the planner's
    # statistics on that expression let PostgreSQL aggregate in parallel.
    # The days then add up to buckets, and the buckets to the overall rows.
    # Both engines compute AVG(x) as SUM(x) / COUNT(x), so the averages are the
    # values of AVG(i.satisfaction * 1.0), from integer sums.
    day = d.day("i.occurred_at")
    counts = (
        f"{key} AS key, {day} AS day, COUNT(*) AS rated, SUM(i.satisfaction) AS total, "
        "SUM(CASE WHEN i.satisfaction >= 4 THEN 1 ELSE 0 END) AS satisfied"
    )
    rated = Sql().add("WITH ")
    left_out = scope.left_out()
    if left_out is None:
        rated.extend(scope.scoped_cte(stage=False)).add(", ")
        source = "interaction i JOIN scoped s ON s.id = i.customer WHERE"
    else:  # every customer's interactions, less those of the few left out
        source = "interaction i WHERE i.customer IS NOT NULL AND"
    rated.add(f"days AS (SELECT {counts} FROM {source} i.satisfaction IS NOT NULL AND ")
    rated.extend(scope.period("i.occurred_at")).add(f" GROUP BY {key}, {day}")
    if left_out is not None:
        where = queries.customer_where(left_out)
        rated.add(
            f" UNION ALL SELECT {key}, {day}, -COUNT(*), -SUM(i.satisfaction), "
            "-SUM(CASE WHEN i.satisfaction >= 4 THEN 1 ELSE 0 END) "
            f"FROM interaction i JOIN customer c ON c.id = i.customer WHERE {where.sql()} "
            "AND i.satisfaction IS NOT NULL AND ",
            *where.args,
        )
        rated.extend(scope.period("i.occurred_at")).add(f" GROUP BY {key}, {day}")
    period = d.day_bucket("day", bucket)
    rated.add(
        f"), buckets AS (SELECT key, {period} AS period, SUM(rated) AS rated, "
        "SUM(total) AS total, SUM(satisfied) AS satisfied FROM days "
        f"GROUP BY key, {period} HAVING SUM(rated) > 0) "
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
