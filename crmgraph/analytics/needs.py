"""Needs raised in the period by category and unit (volumes only add up
within one unit): how many, how many still open, how many overdue at the end
of the period."""

from __future__ import annotations

from dataclasses import dataclass

from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql, rounded
from crmgraph.db import queries, tallies
from crmgraph.db.engine import Database

OPEN = "n.status IN ('OPEN', 'IN_PROGRESS')"


@dataclass(frozen=True)
class NeedGroup:
    category: str | None
    unit: str | None
    needs: int
    open: int
    overdue: int
    volume: float | None
    open_volume: float | None


@dataclass(frozen=True)
class Needs:
    total: int
    open: int
    overdue: int
    groups: list[NeedGroup]


def _counts(scope: AnalyticsScope, source: Sql, sign: str = "", also: Sql | None = None) -> Sql:
    """The groups of the needs of ``source`` raised in the period, each count
    and sum times ``sign`` (``-``: taken away), with how many volumes each
    sum holds (a sum of none is NULL, not 0)."""
    volume = scope.dialect.as_float("n.volume")
    sql = Sql().add(
        f"SELECT n.category AS category, n.unit AS unit, {sign}COUNT(*) AS needs, "
        f"{sign}SUM(CASE WHEN {OPEN} THEN 1 ELSE 0 END) AS open, "
        f"{sign}SUM(CASE WHEN {OPEN} AND n.due_date < {{}} THEN 1 ELSE 0 END) AS overdue, "
        # PostgreSQL sums a REAL column in single precision, in parallel workers' order
        f"{sign}SUM({volume}) AS volume, {sign}COUNT(n.volume) AS volumes, "
        f"{sign}SUM(CASE WHEN {OPEN} THEN {volume} END) AS open_volume, "
        f"{sign}SUM(CASE WHEN {OPEN} AND n.volume IS NOT NULL THEN 1 ELSE 0 END) "
        "AS open_volumes FROM ",
        scope.ends_at.date(),
    )
    sql.extend(source).add(" WHERE ").extend(also or Sql()).extend(scope.period("n.created_at"))
    return sql.add(" GROUP BY n.category, n.unit")


def _summary_sql(scope: AnalyticsScope) -> Sql:
    """For every active customer, every need less the few left out
    (``AnalyticsScope.left_out``: a partition, so counts and sums add up
    across it) instead of joining each need with its customer, which was most
    of the time; otherwise the needs joined with the customers in scope."""
    left_out = scope.left_out()
    sql = Sql().add("WITH ")
    if left_out is None:
        sql.extend(scope.scoped_cte(stage=False)).add(", groups AS (")
        sql.extend(_counts(scope, Sql().add("need n JOIN scoped s ON s.id = n.customer")))
    else:
        where = queries.customer_where(left_out)
        ids = tallies.left_out_ids(where.sql(), scope.dialect.fence)
        left = Sql().add(f"n.customer IN ({ids}) AND ", *where.args)
        sql.add("groups AS (").extend(_counts(scope, Sql().add("need n"))).add(" UNION ALL ")
        sql.extend(_counts(scope, Sql().add("need n"), "-", left))
    return sql.add(
        ") SELECT category, unit, SUM(needs) AS needs, SUM(open) AS open, "
        "SUM(overdue) AS overdue, CASE WHEN SUM(volumes) > 0 THEN SUM(volume) END AS volume, "
        "CASE WHEN SUM(open_volumes) > 0 THEN SUM(open_volume) END AS open_volume "
        "FROM groups GROUP BY category, unit HAVING SUM(needs) > 0"
    )


async def needs_summary(db: Database, scope: AnalyticsScope) -> Needs:
    sql = _summary_sql(scope)
    groups = [
        NeedGroup(
            row["category"],
            row["unit"],
            int(row["needs"]),
            int(row["open"]),
            int(row["overdue"]),
            rounded(row["volume"], 2),
            rounded(row["open_volume"], 2),
        )
        for row in await sql.fetch(db)
    ]
    groups.sort(key=lambda g: (-g.needs, g.category or "", g.unit or ""))
    return Needs(
        total=sum(g.needs for g in groups),
        open=sum(g.open for g in groups),
        overdue=sum(g.overdue for g in groups),
        groups=groups,
    )
