"""Satisfaction at each moment of truth: rated interactions (1-5) by channel
or by outcome, overall and per calendar bucket. ``satisfied`` counts ratings
of 4 or 5 (the CSAT share)."""

from __future__ import annotations

from dataclasses import dataclass

from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql, rounded
from crmgraph.db import activity, queries, tallies
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


# The keys as the tally ``interaction_day`` (crmgraph.db.activity) stores them.
TALLIED = {
    "CHANNEL": "t.channel",
    "OUTCOME": "CASE WHEN t.outcome_stated = 1 THEN t.outcome END",
    "DIRECTION": "t.direction",
}
SATISFIED = "SUM(CASE WHEN i.satisfaction >= 4 THEN 1 ELSE 0 END)"


def _counted(key: str, day: str, source: str) -> str:
    """(key, day, rated, total, satisfied) of the rated interactions of ``source``."""
    return (
        f"SELECT {key} AS key, {day} AS day, COUNT(*) AS rated, SUM(i.satisfaction) AS total, "
        f"{SATISFIED} AS satisfied FROM {source} i.satisfaction IS NOT NULL AND "
    )


def _tallied(scope: AnalyticsScope, by: str) -> Sql:
    """The days of every customer's rated interactions in the period: its
    whole UTC days from ``interaction_day``'s delta rows, summed here (a few
    hundred rows a day, where the interactions are thousands; its view would
    sum them per key first, 5x the cost: crmgraph.db.tallies), the less than
    a day at either end (the period ends now, as a rule) from the
    interactions themselves."""
    d, key = scope.dialect, GROUPINGS[by]
    split = tallies.DaySplit.of(scope.starts_at, scope.ends_at)
    edges = split.edges if split.days or split.edges else ((scope.starts_at, scope.ends_at),)
    parts = []
    if split.days:
        (first, a), (after, b) = (tallies.day_value(day, d.sqlite) for day in split.days)
        parts.append(
            Sql().add(
                f"SELECT {TALLIED[by]} AS key, t.day AS day, SUM(t.rated) AS rated, "
                "SUM(t.rating_sum) AS total, SUM(t.satisfied) AS satisfied "
                f"FROM {activity.DAYS.table} t WHERE t.day >= {first} "
                f"AND t.day < {after} GROUP BY {TALLIED[by]}, t.day HAVING SUM(t.rated) > 0",
                a,
                b,
            )
        )
    for starts, ends in edges:
        raw = _counted(
            key, d.day("i.occurred_at"), "interaction i WHERE i.customer IS NOT NULL AND"
        )
        ts = scope.ts()
        parts.append(
            Sql().add(
                f"{raw}i.occurred_at >= {ts} AND i.occurred_at < {ts} "
                f"GROUP BY {key}, {d.day('i.occurred_at')}",
                starts,
                ends,
            )
        )
    sql = parts[0]
    for part in parts[1:]:
        sql.add(" UNION ALL ").extend(part)
    return sql


def _days(scope: AnalyticsScope, by: str) -> Sql:
    """``WITH ... days AS (...)``: (key, UTC day, rated, rating total,
    satisfied) of the rated interactions in scope and period. For every
    active customer, the tally less the few left out; otherwise one pass
    over the scope's rated interactions (index-only on the partial index
    ix_interaction_rated, migration 0027) per key and day: grouping by a date
    is cheaper than formatting every row's bucket, and the planner's
    statistics on that expression let PostgreSQL aggregate in parallel."""
    key, day = GROUPINGS[by], scope.dialect.day("i.occurred_at")
    rated = Sql().add("WITH ")
    left_out = scope.left_out()
    if left_out is None:
        rated.extend(scope.scoped_cte(stage=False)).add(", days AS (")
        rated.add(_counted(key, day, "interaction i JOIN scoped s ON s.id = i.customer WHERE"))
        rated.extend(scope.period("i.occurred_at")).add(f" GROUP BY {key}, {day}")
        return rated.add(")")
    rated.add("days AS (").extend(_tallied(scope, by))
    where = queries.customer_where(left_out)
    ids = tallies.left_out_ids(where.sql(), scope.dialect.fence)
    rated.add(
        f" UNION ALL SELECT {key}, {day}, -COUNT(*), -SUM(i.satisfaction), -{SATISFIED} "
        f"FROM interaction i WHERE i.customer IN ({ids}) "
        "AND i.satisfaction IS NOT NULL AND ",
        *where.args,
    )
    rated.extend(scope.period("i.occurred_at")).add(f" GROUP BY {key}, {day}")
    return rated.add(")")


async def satisfaction(
    db: Database, scope: AnalyticsScope, by: str = "CHANNEL", bucket: str = "MONTH"
) -> Satisfaction:
    # The days add up to buckets, and the buckets to the overall rows. Both
    # engines compute AVG(x) as SUM(x) / COUNT(x), so the averages are the
    # values of AVG(i.satisfaction * 1.0), from integer sums.
    d = scope.dialect
    rated = _days(scope, by)
    period = d.day_bucket("day", bucket)
    rated.add(
        f", buckets AS (SELECT key, {period} AS period, SUM(rated) AS rated, "
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
