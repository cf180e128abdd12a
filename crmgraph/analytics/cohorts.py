"""Cohort retention: customers grouped by the month they were acquired, and
for each later month the share of the cohort with at least one interaction
in it.

A party is acquired when it is created; asked for some types, when it first
entered one of their lifecycles (issue 24: a client who becomes a guarantor
in March is in March's guarantor cohort; a prospect converted into a client
in May is in May's client cohort and in the prospect cohort of its
creation). The types are those of the history, as in the funnel, so ending
a role (or converting) does not take a party out of the cohort it joined;
each party is counted once in a report, in the month it first entered any
of the types asked for."""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass

from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql, literal
from crmgraph.db import queries
from crmgraph.db.engine import Database
from crmgraph.registry import Catalog


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


def cohort_kinds(scope: AnalyticsScope, catalog: Catalog | None) -> tuple[str, ...]:
    """The types whose first entries make the cohorts: the scope's, unless
    they are every type of ``catalog`` (a GraphQL filter asking for no type
    names them all): then none, and a party's creation makes its cohort."""
    every = {t.key for t in catalog.customer_types} if catalog is not None else None
    return () if every is not None and every <= set(scope.kinds) else scope.kinds


def acquired(scope: AnalyticsScope, kinds: tuple[str, ...]) -> Sql:
    """``scoped``: the customers in scope with ``acquired_at``, their creation
    or, asked for types (``kinds``), their first entry into one of them in the
    period (the scope's other filters still apply to the party, not to its
    types)."""
    d = scope.dialect
    if not kinds:
        rows = scope.scoped_cte("scoped_rows", stage=False)
        return rows.add(
            f", scoped AS {d.not_materialized}"
            "(SELECT id, created_at AS acquired_at FROM scoped_rows)"
        )
    sql = first_entries(scope, kinds).add(", ")
    sql.extend(scope.without_kinds().scoped_cte("scoped_rows", stage=False))
    return sql.add(
        f", scoped AS {d.not_materialized}(SELECT s.id, f.acquired_at "
        "FROM scoped_rows s JOIN firsts f ON f.customer = s.id)"
    )


def first_entries(scope: AnalyticsScope, kinds: tuple[str, ...]) -> Sql:
    """``firsts``: per customer, its first entry into one of ``kinds``, where
    that is in the period: the entries of the period of customers with none
    of those types before it, both read from ``ix_stage_change_kind_at``
    (kind, customer, at) alone. Computed once (``MATERIALIZED``): the report
    reads it three times."""
    ts, written = scope.ts(), ", ".join(literal(k) for k in kinds)
    return Sql().add(
        f"firsts AS {scope.dialect.materialized}(SELECT sc.customer, MIN(sc.at) AS acquired_at "
        f"FROM stage_change sc WHERE sc.kind IN ({written}) AND sc.at >= {ts} AND sc.at < {ts} "
        "AND NOT EXISTS (SELECT 1 FROM stage_change e WHERE e.customer = sc.customer "
        f"AND e.kind IN ({written}) AND e.at < {ts}) GROUP BY sc.customer)",
        scope.starts_at,
        scope.ends_at,
        scope.starts_at,
    )


async def cohort_retention(
    db: Database, scope: AnalyticsScope, catalog: Catalog | None = None
) -> list[Cohort]:
    """Cohorts acquired in the period; offsets run to the period's last month;
    per type when the scope asks for some of ``catalog``'s (``cohort_kinds``).

    Every active customer, by creation or by one type, is answered from the
    trigger-kept counts (``from_rollup``, crmgraph.db.cohort_rollup): at
    1,000,000 customers the history below took 2.7-3.9 s. Otherwise:
    the months in which each customer was active come from ``customer_month``
    (crmgraph.db.activity) up to the month the period ends in; for that month
    itself, which the period may end inside, from the interactions before the
    end. So the answer is exact for any end, and a million interactions become
    some 650,000 (customer, month) rows. The two are separate branches joined
    with the cohort each (a UNION of them would be joined as a whole), so a
    small cohort reads its customers' rows by key."""
    way = rollup_kind(scope, catalog)
    if way is not None and not await later_interactions(db, scope):
        rows = await from_rollup(scope, way).fetch(db)
    else:
        rows = await from_history(scope, catalog).fetch(db)
    return cohorts_of(scope, rows)


def month_of(moment: datetime.datetime) -> int:
    return moment.year * 12 + moment.month - 1


def next_month_start(moment: datetime.datetime) -> datetime.datetime:
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (start + datetime.timedelta(days=31)).replace(day=1)


def rollup_kind(scope: AnalyticsScope, catalog: Catalog | None) -> str | None:
    """The way of joining (``customer_cohort.kind``: '' by creation, or a
    type) whose counts (crmgraph.db.cohort_rollup) answer the scope: every
    active customer, by creation or by their first entry into one type.
    None for any other filter, or several types (a party's first entry into
    any of them): those read the history."""
    kinds = cohort_kinds(scope, catalog)
    if len(kinds) > 1 or (not kinds and scope.kinds):
        return None
    if scope.without_kinds().customers != queries.CustomerQuery():
        return None
    return kinds[0] if kinds else ""


async def later_interactions(db: Database, scope: AnalyticsScope) -> bool:
    """Whether the month the period ends in holds interactions after its end
    (dated later than now, or a period ending in the past): then that month's
    activity is not ``customer_month``'s, and the report reads the history."""
    ts = scope.ts()
    sql = Sql().add(
        f"SELECT 1 AS found FROM interaction WHERE occurred_at >= {ts} AND occurred_at < {ts} "
        "LIMIT 1",
        scope.ends_at,
        next_month_start(scope.ends_at),
    )
    return bool(await sql.fetch(db, tuned=False))


def from_rollup(scope: AnalyticsScope, way: str) -> Sql:
    """The cohorts' sizes and active counts from the counts of the months
    the period touches, less the customers (``gone``) who joined in those
    months outside the period: before its start in its first month, after
    its end in its last (one month's customers at most, read by
    ``ix_customer_cohort_joined`` alone, usually none at the end)."""
    ts, kind = scope.ts(), literal(way)
    first, last = month_of(scope.starts_at), month_of(scope.ends_at)
    first_start = scope.starts_at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    sql = Sql().add(
        f"WITH gone AS (SELECT customer_id, cohort FROM customer_cohort WHERE kind = {kind} "
        f"AND ((acquired_at >= {ts} AND acquired_at < {ts}) "
        f"OR (acquired_at >= {ts} AND acquired_at < {ts}))) ",
        first_start,
        scope.starts_at,
        scope.ends_at,
        next_month_start(scope.ends_at),
    )
    return sql.add(
        "SELECT cohort AS m0, -1 AS month_offset, SUM(customers) AS customers FROM "
        f"(SELECT cohort, customers FROM cohort_size WHERE kind = {kind} "
        "AND cohort >= {} AND cohort <= {} "
        "UNION ALL SELECT cohort, -COUNT(*) FROM gone GROUP BY cohort) s "
        "GROUP BY cohort HAVING SUM(customers) > 0 "
        "UNION ALL SELECT cohort, month - cohort, SUM(customers) FROM "
        f"(SELECT cohort, month, customers FROM cohort_activity WHERE kind = {kind} "
        "AND cohort >= {} AND cohort <= {} AND month >= cohort AND month <= {} "
        "UNION ALL SELECT g.cohort, m.month, -COUNT(*) FROM gone g JOIN customer_month m "
        "ON m.customer_id = g.customer_id AND m.month >= g.cohort AND m.month <= {} "
        "GROUP BY g.cohort, m.month) a GROUP BY cohort, month",
        first,
        last,
        first,
        last,
        last,
        last,
    )


def from_history(scope: AnalyticsScope, catalog: Catalog | None) -> Sql:
    """The cohorts' sizes (``month_offset`` -1) and active counts, from the
    customers and their months in ``customer_month`` (see ``cohort_retention``)."""
    d, ts = scope.dialect, scope.ts()
    end = scope.ends_at
    last_month = month_of(end)
    month_start = end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = next_month_start(end)
    sql = Sql().add("WITH ").extend(acquired(scope, cohort_kinds(scope, catalog))).add(", ")
    # Each read computes the cohort month once per customer (inlined, it was
    # computed again for every (customer, month) row), and PostgreSQL knows
    # the customers' statistics (it has none for a materialized CTE, then
    # hashes the 650,000 rollup rows instead of the customers).
    sql.add(
        f"cohort AS {d.not_materialized}(SELECT id, {d.month_number('acquired_at')} AS m0 "
        "FROM scoped WHERE "
    )
    sql.extend(scope.period("acquired_at")).add(f"{d.fence}), ")
    # The period's last month is in the rollup unless it holds interactions
    # after the period's end (dated later than now, or a period ending in the
    # past): then that month is read from the interactions before the end.
    # Exactly one of the two branches reads it, the other's test is false.
    sql.add(
        f"later AS (SELECT COUNT(*) AS n FROM (SELECT 1 FROM interaction "
        f"WHERE occurred_at >= {ts} AND occurred_at < {ts} LIMIT 1) x) "
        "SELECT m0, -1 AS month_offset, COUNT(*) AS customers FROM cohort GROUP BY m0 "
        "UNION ALL SELECT c.m0, a.month - c.m0, COUNT(*) FROM cohort c "
        "JOIN customer_month a ON a.customer_id = c.id AND a.month >= c.m0 "
        "AND a.month < {} + 1 - (SELECT n FROM later) GROUP BY c.m0, a.month - c.m0 "
        "UNION ALL SELECT m0, {} - m0, COUNT(*) FROM cohort c "
        "WHERE (SELECT n FROM later) = 1 AND m0 <= {} AND EXISTS "
        "(SELECT 1 FROM interaction i WHERE i.customer = c.id "
        f"AND i.occurred_at >= {ts} AND i.occurred_at < {ts}) GROUP BY m0",
        end,
        next_month,
        last_month,
        last_month,
        last_month,
        month_start,
        end,
    )
    return sql


def cohorts_of(scope: AnalyticsScope, rows: list[dict]) -> list[Cohort]:
    """The cohorts from their sizes (``month_offset`` -1) and active counts."""
    sizes: dict[int, int] = {}
    active: dict[int, dict[int, int]] = defaultdict(dict)
    for row in rows:
        m0, offset, n = int(row["m0"]), int(row["month_offset"]), int(row["customers"])
        if offset < 0:
            sizes[m0] = n
        else:
            active[m0][offset] = active[m0].get(offset, 0) + n
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
