"""RFM segments computed from purchases alone: the segment counts (the RFM
segments report, revenue by RFM segment, a segment's total) and the pages
of a segment's members, without the other facts of crmgraph.analytics.facts.

A customer's RFM scores depend only on its purchases in the period (count,
total, latest), so only customers who bought are scored; everyone else in
scope is NO_PURCHASE, counted as the customers in scope minus the buyers.
At a million customers the facts joined every customer with its activity
and open needs and evaluated the segment's CASE (each score inlined into it
again) per row: 1.5 s. Here:

- when the period holds every interaction, the buyers are the rows of
  ``customer_activity`` with purchases (crmgraph.db.activity), and for a
  scope of every active customer the deleted ones (about 1 %, their own
  index) are left out by id instead of reading all of ``customer``;
- otherwise the purchases in the period from ``ix_interaction_purchase``
  (migration 0028, index-only), not every interaction of the period;
- the scores are grouped into at most 125 cells (r, f, m) and each cell
  gets its segment, not each customer.

Amounts are summed in cents, as integers (as the rollup stores them): exact
on both engines. Which source answers is decided by one statement before
(``covers``, two index end points) rather than a gated UNION ALL, so a page
in id order is planned as a walk of one index that stops after a page.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmgraph.analytics import rules
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql
from crmgraph.db import activity, customer_counts, queries
from crmgraph.db.engine import Database

# a purchase's amount in cents, as the rollup sums it (crmgraph.db.activity)
CENTS = "CAST(ROUND(i.amount * 100) AS BIGINT)"


@dataclass(frozen=True)
class SegmentTotals:
    customers: int
    purchases: int
    cents: int


async def covers(db: Database, scope: AnalyticsScope) -> bool:
    """Whether the period holds every interaction (the lifetime rollup answers)."""
    ts = scope.ts()
    rows = await db.fetch(
        f"SELECT CASE WHEN {activity.covers_every_interaction(ts)} THEN 1 ELSE 0 END AS covers",
        scope.starts_at,
        scope.ends_at,
    )
    return bool(rows[0]["covers"])


def _every_active(scope: AnalyticsScope) -> bool:
    return scope.customers == queries.CustomerQuery()


def _every(scope: AnalyticsScope) -> bool:
    return scope.customers == queries.CustomerQuery(deleted="ALL")


def _restricted(scope: AnalyticsScope, column: str) -> tuple[str, str]:
    """A join and a condition keeping ``column``'s customers in scope: none
    for every customer, the deleted ones left out by id for every active
    customer, else a join with ``scoped_ids`` (``AnalyticsScope.ids_cte``)."""
    if _every(scope):
        return "", "1 = 1"
    if _every_active(scope):
        return "", (f"{column} NOT IN (SELECT d.id FROM customer d WHERE d.deleted_at IS NOT NULL)")
    return f"JOIN scoped_ids s ON s.id = {column} ", "1 = 1"


def ids_cte(scope: AnalyticsScope, name: str) -> Sql:
    """``name AS (SELECT id ...)``: the customers in scope. When the
    maintained customer tally answers the filter (kinds, stages, phases,
    deleted: crmgraph.db.customer_counts), from each customer's stored key
    in ``customer_tally_key`` (kept by triggers in the writing transaction),
    one narrow table; else ``AnalyticsScope.ids_cte``. At a million
    customers the clients of a kind read ``customer`` row by row where its
    visibility map was not current (51,000 pages)."""
    tally = queries.tally_where(scope.customers)
    if tally is None:
        return scope.ids_cte(name)
    return Sql().add(
        f"{name} AS {scope.dialect.not_materialized}(SELECT t.customer AS id "
        f"FROM {customer_counts.KEYS} t WHERE {tally.sql()})",
        *tally.args,
    )


def _with(scope: AnalyticsScope) -> Sql:
    """``WITH`` and, for a filtered scope, its ``scoped_ids``."""
    sql = Sql().add("WITH ")
    if _every(scope) or _every_active(scope):
        return sql
    return sql.extend(ids_cte(scope, "scoped_ids")).add(", ")


def buyers_cte(scope: AnalyticsScope, lifetime: bool) -> Sql:
    """``buyers (id, purchases, cents, last_at)``: each customer in scope
    with purchases in the period, from the rollup when ``lifetime`` (the
    period holds every interaction), else from the purchases themselves."""
    if lifetime:
        join, keep = _restricted(scope, "a.customer_id")
        return Sql().add(
            "buyers AS (SELECT a.customer_id AS id, a.purchases, a.purchase_cents AS cents, "
            f"a.last_purchase_at AS last_at FROM customer_activity a {join}"
            f"WHERE a.purchases > 0 AND {keep})"
        )
    join, keep = _restricted(scope, "i.customer")
    sql = Sql().add(
        "buyers AS (SELECT i.customer AS id, COUNT(*) AS purchases, "
        f"SUM({CENTS}) AS cents, MAX(i.occurred_at) AS last_at "
        f"FROM interaction i {join}WHERE i.amount IS NOT NULL AND {keep} AND "
    )
    return sql.extend(scope.period("i.occurred_at")).add(" GROUP BY i.customer)")


def _step(column: str, steps: tuple[tuple[float, int], ...], factor: int = 1) -> str:
    cases = " ".join(f"WHEN {column} >= {limit * factor} THEN {score}" for limit, score in steps)
    return f"CASE {cases} ELSE 1 END"


def scores_cte(scope: AnalyticsScope, *, fence: bool) -> Sql:
    """``scored_buyers``: the buyers with their scores r, f, m (each >= 1: a
    buyer has a purchase). ``fence``: computed once per row (PostgreSQL
    would otherwise inline each score into every test of the segment's
    CASE), for a read of every buyer; a page reads few, unfenced."""
    ts = scope.ts()
    recency = " ".join(f"WHEN last_at >= {ts} THEN {score}" for _, score in rules.RECENCY_DAYS)
    return Sql().add(
        f"scored_buyers AS (SELECT id, purchases, cents, CASE {recency} ELSE 1 END AS r, "
        f"{_step('purchases', rules.FREQUENCY_COUNTS)} AS f, "
        f"{_step('cents', rules.MONETARY_TOTALS, 100)} AS m FROM buyers"
        f"{scope.dialect.fence if fence else ''})",
        *(scope.cutoff(days) for days, _ in rules.RECENCY_DAYS),
    )


def segment_case() -> str:
    """The segment of a row with scores r, f, m (first match wins)."""
    cases = " ".join(f"WHEN {s.condition} THEN '{s.key}'" for s in rules.RFM_SEGMENTS)
    return f"CASE {cases} END"


def _scope_count(scope: AnalyticsScope) -> Sql:
    """The number of customers in scope: from the maintained tally
    (crmgraph.db.customer_counts) when it answers the filter, as for a
    list's ``totalCount``; a count of every active customer read all of
    ``customer`` (370 MB at a million customers) where the table's
    visibility map was not current."""
    tally = queries.tally_where(scope.customers)
    if tally is not None:
        return Sql().add(customer_counts.count_select(tally.sql()), *tally.args)
    if _every(scope):
        return Sql().add("SELECT COUNT(*) FROM customer")
    if _every_active(scope):
        return Sql().add("SELECT COUNT(*) FROM customer c WHERE c.deleted_at IS NULL")
    return Sql().add("SELECT COUNT(*) FROM scoped_ids")


async def segment_totals_sql(
    db: Database, scope: AnalyticsScope, *, buyers_only: bool = False
) -> Sql:
    """The statement of customers, purchases, cents and revenue per segment
    (segments without buyers left out); NO_PURCHASE, every customer in scope
    who did not buy in the period, unless ``buyers_only``."""
    lifetime = await covers(db, scope)
    sql = _with(scope).extend(buyers_cte(scope, lifetime)).add(", ")
    sql.extend(scores_cte(scope, fence=True)).add(
        f", cells AS {scope.dialect.materialized}(SELECT r, f, m, COUNT(*) AS customers, "
        "SUM(purchases) AS purchases, SUM(cents) AS cents FROM scored_buyers GROUP BY r, f, m) "
        f"SELECT {segment_case()} AS segment, SUM(customers) AS customers, "
        "SUM(purchases) AS purchases, SUM(cents) AS cents, SUM(cents) / 100.0 AS revenue "
        "FROM cells GROUP BY 1"
    )
    if not buyers_only:
        sql.add(" UNION ALL SELECT 'NO_PURCHASE', (").extend(_scope_count(scope))
        sql.add(") - (SELECT COALESCE(SUM(customers), 0) FROM cells), 0, 0, 0")
    return sql


async def segment_totals(db: Database, scope: AnalyticsScope) -> dict[str, SegmentTotals]:
    """Customers, purchases and cents per segment with customers."""
    found = {}
    for row in await (await segment_totals_sql(db, scope)).fetch(db):
        totals = SegmentTotals(int(row["customers"]), int(row["purchases"]), int(row["cents"]))
        if totals.customers:
            found[row["segment"]] = totals
    return found


async def member_ids(
    db: Database, scope: AnalyticsScope, segment: str, after: int | None, limit: int
) -> list[int]:
    """The first ``limit`` ids of ``segment``'s customers in scope above ``after``."""
    lifetime = await covers(db, scope)
    if segment == "NO_PURCHASE":
        sql = Sql().add("WITH ").extend(ids_cte(scope, "members"))
        sql.add(" SELECT m.id FROM members m WHERE NOT EXISTS ")
        if lifetime:
            sql.add("(SELECT 1 FROM customer_activity a WHERE a.customer_id = m.id AND ")
            sql.add("a.purchases > 0)")
        else:
            sql.add("(SELECT 1 FROM interaction i WHERE i.customer = m.id AND ")
            sql.add("i.amount IS NOT NULL AND ").extend(scope.period("i.occurred_at")).add(")")
        sql.add(" AND m.id > {}", -1 if after is None else after)
        return await _ids(db, sql.add(" ORDER BY m.id LIMIT {}", limit))
    sql = _with(scope).extend(buyers_cte(scope, lifetime)).add(", ")
    sql.extend(scores_cte(scope, fence=False))
    sql.add(f" SELECT id FROM scored_buyers WHERE {segment_case()} = {{}}", segment)
    sql.add(" AND id > {}", -1 if after is None else after)
    return await _ids(db, sql.add(" ORDER BY id LIMIT {}", limit))


async def _ids(db: Database, sql: Sql) -> list[int]:
    return [int(row["id"]) for row in await sql.fetch(db)]
