"""Needs raised in the period by category and unit (volumes only add up
within one unit): how many, how many still open, how many overdue at the end
of the period."""

from __future__ import annotations

from dataclasses import dataclass

from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql, rounded
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


async def needs_summary(db: Database, scope: AnalyticsScope) -> Needs:
    volume = scope.dialect.as_float("n.volume")
    sql = Sql().add("WITH ").extend(scope.scoped_cte(stage=False)).add(" ")
    sql.add(
        "SELECT n.category, n.unit, COUNT(*) AS needs, "
        f"SUM(CASE WHEN {OPEN} THEN 1 ELSE 0 END) AS open, "
        f"SUM(CASE WHEN {OPEN} AND n.due_date < {{}} THEN 1 ELSE 0 END) AS overdue, "
        # PostgreSQL sums a REAL column in single precision, in parallel workers' order
        f"SUM({volume}) AS volume, SUM(CASE WHEN {OPEN} THEN {volume} END) AS open_volume "
        "FROM need n JOIN scoped s ON s.id = n.customer WHERE ",
        scope.ends_at.date(),
    )
    sql.extend(scope.period("n.created_at")).add(" GROUP BY n.category, n.unit")
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
