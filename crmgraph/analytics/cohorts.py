"""Cohort retention: customers grouped by the month they were acquired (their
creation), and for each later month the share of the cohort with at least
one interaction in it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql
from crmgraph.db.engine import Database


@dataclass(frozen=True)
class CohortMonth:
    month_offset: int
    active: int
    rate: float


@dataclass(frozen=True)
class Cohort:
    month: str  # YYYY-MM
    size: int
    months: list[CohortMonth]


def month_label(number: int) -> str:
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


async def cohort_retention(db: Database, scope: AnalyticsScope) -> list[Cohort]:
    """Cohorts acquired in the period; offsets run to the period's last month."""
    d, ts = scope.dialect, scope.ts()
    sql = Sql().add("WITH ").extend(scope.scoped_cte(stage=False)).add(", ")
    sql.add(f"cohort AS (SELECT id, {d.month_number('created_at')} AS m0 FROM scoped WHERE ")
    sql.extend(scope.period("created_at")).add("), ")
    sql.add(
        f"active AS (SELECT DISTINCT i.customer, {d.month_number('i.occurred_at')} AS m "
        f"FROM interaction i JOIN cohort c ON c.id = i.customer WHERE i.occurred_at < {ts}) "
        "SELECT m0, -1 AS month_offset, COUNT(*) AS customers FROM cohort GROUP BY m0 "
        "UNION ALL SELECT c.m0, a.m - c.m0, COUNT(*) FROM cohort c "
        "JOIN active a ON a.customer = c.id AND a.m >= c.m0 GROUP BY c.m0, a.m - c.m0",
        scope.ends_at,
    )
    sizes: dict[int, int] = {}
    active: dict[int, dict[int, int]] = defaultdict(dict)
    for row in await sql.fetch(db):
        m0, offset, n = int(row["m0"]), int(row["month_offset"]), int(row["customers"])
        if offset < 0:
            sizes[m0] = n
        else:
            active[m0][offset] = n
    last = scope.ends_at.year * 12 + scope.ends_at.month - 1
    if scope.ends_at == scope.ends_at.replace(day=1, hour=0, minute=0, second=0, microsecond=0):
        last -= 1  # the period ends at a month's first instant: that month is not in it
    return [
        Cohort(
            month_label(m0),
            size,
            [
                CohortMonth(k, active[m0].get(k, 0), round(active[m0].get(k, 0) / size, 4))
                for k in range(0, max(last - m0, 0) + 1)
            ],
        )
        for m0, size in sorted(sizes.items())
    ]
