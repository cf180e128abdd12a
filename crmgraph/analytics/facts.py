"""Per-customer facts in SQL: activity, purchases, satisfaction, needs, RFM
scores and segment, churn signals and score. One chain of CTEs serves the
knowledge profile, the RFM segments, the churn-risk list and revenue by
RFM segment, so all of them agree."""

from __future__ import annotations

from typing import Any

from crmgraph.analytics import rules
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql, rounded
from crmgraph.db import activity, queries


def _score(column: str, steps: tuple[tuple[int, int], ...], at_least: bool) -> str:
    op = ">=" if at_least else "<="
    cases = " ".join(f"WHEN {column} {op} {limit} THEN {score}" for limit, score in steps)
    return f"CASE {cases} ELSE 1 END"


def _average(rating: str) -> str:
    """``AVG(rating * 1.0)`` (NULL without ratings), computed the way both
    engines compute that average, sum / count, but summing the integer
    ratings: PostgreSQL adds integers far faster than numerics."""
    return f"SUM({rating}) * 1.0 / COUNT({rating})"


def _segment_case() -> str:
    cases = " ".join(f"WHEN {s.condition} THEN '{s.key}'" for s in rules.RFM_SEGMENTS)
    return f"CASE {cases} END"


# typed, so the branches of a UNION agree on PostgreSQL
NO_VALUE = "CAST(NULL AS NUMERIC)"


def _activity_cte(scope: AnalyticsScope, trend: bool) -> Sql:
    """``activity``: one row per customer in scope with interactions in the
    period. When the period holds every interaction, the lifetime totals of
    ``customer_activity`` (crmgraph.db.activity) are those of the period and
    100,000 rollup rows replace a million interactions; only the satisfaction
    trend still reads interactions, those of its two windows. Otherwise the
    interactions in the period are aggregated. Both are branches of one
    UNION ALL gated by the same test, so exactly one contributes rows and the
    answer is exact either way; PostgreSQL runs only the branch whose
    one-time filter holds."""
    ts = scope.ts()
    recent = scope.cutoff(rules.SATISFACTION_WINDOW_DAYS)
    prior = scope.cutoff(2 * rules.SATISFACTION_WINDOW_DAYS)
    recent_rating = f"CASE WHEN i.occurred_at >= {ts} THEN i.satisfaction END"
    prior_rating = (
        f"CASE WHEN i.occurred_at >= {ts} AND i.occurred_at < {ts} THEN i.satisfaction END"
    )
    trend_columns = (
        f"{_average(recent_rating)} AS satisfaction_recent, "
        f"{_average(prior_rating)} AS satisfaction_prior "
    )
    trend_args = (recent, recent, prior, recent, prior, recent)
    covers = activity.covers_every_interaction(ts)
    sql = Sql().add("activity AS (SELECT a.customer_id, a.interactions, a.first_contact_at, ")
    sql.add(
        "a.last_contact_at, a.purchases, a.purchase_cents / 100.0 AS purchase_total, "
        "a.last_purchase_at, a.rated, "
        "CASE WHEN a.rated > 0 THEN a.rating_sum * 1.0 / a.rated END AS satisfaction, "
    )
    if trend:
        sql.add("w.satisfaction_recent, w.satisfaction_prior ")
    else:
        sql.add(f"{NO_VALUE} AS satisfaction_recent, {NO_VALUE} AS satisfaction_prior ")
    sql.add(f"FROM customer_activity a {_in_scope(scope, 'a.customer_id')}")
    if trend:
        sql.add(
            f"LEFT JOIN (SELECT i.customer, {trend_columns}FROM interaction i "
            f"{_in_scope(scope, 'i.customer')}WHERE i.satisfaction IS NOT NULL AND ",
            *trend_args,
        )
        sql.add(f"i.occurred_at >= {ts} AND i.occurred_at < {ts} GROUP BY i.customer) w ", prior)
        sql.args.append(scope.ends_at)
        sql.add("ON w.customer = a.customer_id ")
    sql.add(f"WHERE {covers} ", scope.starts_at, scope.ends_at)
    sql.add(
        "UNION ALL SELECT i.customer, COUNT(*), MIN(i.occurred_at), MAX(i.occurred_at), "
        "COUNT(i.amount), SUM(i.amount), "
        "MAX(CASE WHEN i.amount IS NOT NULL THEN i.occurred_at END), COUNT(i.satisfaction), "
        f"{_average('i.satisfaction')}, "
    )
    if trend:
        sql.add(trend_columns, *trend_args)
    else:
        sql.add(f"{NO_VALUE}, {NO_VALUE} ")
    sql.add(f"FROM interaction i {_in_scope(scope, 'i.customer')}WHERE NOT ({covers}) AND ")
    sql.args.extend((scope.starts_at, scope.ends_at))
    return sql.extend(scope.period("i.occurred_at")).add(" GROUP BY i.customer)")


def _every_customer(scope: AnalyticsScope) -> bool:
    """No filter but, at most, leaving out deleted customers (about 1 %)."""
    return scope.customers in (queries.CustomerQuery(), queries.CustomerQuery(deleted="ALL"))


def _in_scope(scope: AnalyticsScope, customer: str) -> str:
    """Joins a per-customer read to the customers in scope (``scoped_ids``),
    so that it reads only their rows. Not for every customer: the facts join
    each read with ``scoped`` anyway, and a join with all 99,000 customers
    cost a scan of ``customer`` and a hash join per read without leaving out
    anything but deleted customers' rows."""
    return "" if _every_customer(scope) else f"JOIN scoped_ids s ON s.id = {customer} "


def _scope_ctes(scope: AnalyticsScope, detail: bool) -> Sql:
    """``scoped`` and, for a scope that filters customers, ``scoped_ids``.
    ``scoped_ids`` is read by the activity, the satisfaction trend and the
    open needs, and ``scoped`` by the facts: a scope that filters customers
    (a type, phases, an owner, ids...) is computed once and MATERIALIZED for
    all four reads, where inlined each read joined the customers with their
    roles again (about 40 ms each for the 28,600 customers retained or
    expanding out of 100,000, the churn list's candidates). Every customer is
    a scan of ``customer``, inlined where it is read so the planner keeps the
    table's statistics."""
    if _every_customer(scope):
        return scope.scoped_cte(stage=detail)
    rows = scope.scoped_cte("scope_rows", stage=detail)
    return rows.add(
        f", scoped AS {scope.dialect.materialized}(SELECT * FROM scope_rows), "
        f"scoped_ids AS {scope.dialect.not_materialized}(SELECT id FROM scoped)"
    )


def facts_ctes(scope: AnalyticsScope, *, detail: bool = True) -> Sql:
    """``WITH scoped, [scoped_ids,] activity, open_needs, facts, scored``: ``scored`` has one
    row per customer in scope with every fact; select from it. Without
    ``detail`` (enough for RFM scores and segments) the satisfaction trend,
    the churn signals built on it and the days in stage are NULL, and the
    customers' roles are not read."""
    ts, d = scope.ts(), scope.dialect
    sql = Sql().add("WITH ").extend(_scope_ctes(scope, detail)).add(", ")
    sql.extend(_activity_cte(scope, trend=detail)).add(", ")
    sql.add(
        "open_needs AS (SELECT n.customer AS customer_id, COUNT(*) AS open_needs, "
        "SUM(CASE WHEN n.due_date < {} THEN 1 ELSE 0 END) AS overdue_needs "
        f"FROM need n {_in_scope(scope, 'n.customer')}"
        f"WHERE n.{activity.OPEN_NEED} GROUP BY n.customer), ",
        scope.ends_at.date(),
    )
    recency_cases = " ".join(
        f"WHEN a.last_purchase_at >= {ts} THEN {score}" for _, score in rules.RECENCY_DAYS
    )
    sql.add(
        f"facts AS (SELECT s.*, COALESCE(a.interactions, 0) AS interactions, "
        "a.first_contact_at, a.last_contact_at, COALESCE(a.purchases, 0) AS purchases, "
        "COALESCE(a.purchase_total, 0) AS purchase_total, a.last_purchase_at, "
        "COALESCE(a.rated, 0) AS rated, a.satisfaction, a.satisfaction_recent, "
        "a.satisfaction_prior, COALESCE(o.open_needs, 0) AS open_needs, "
        "COALESCE(o.overdue_needs, 0) AS overdue_needs, "
        f"CASE WHEN a.last_purchase_at IS NULL THEN 0 {recency_cases} ELSE 1 END AS r, "
        f"CASE WHEN COALESCE(a.purchases, 0) = 0 THEN 0 ELSE "
        f"{_score('a.purchases', rules.FREQUENCY_COUNTS, True)} END AS f, "
        f"CASE WHEN COALESCE(a.purchases, 0) = 0 THEN 0 ELSE "
        f"{_score('a.purchase_total', rules.MONETARY_TOTALS, True)} END AS m, "
        f"CASE WHEN a.last_contact_at IS NULL OR a.last_contact_at < {ts} "
        "THEN 1 ELSE 0 END AS signal_no_recent_contact, "
        f"CASE WHEN a.last_purchase_at < {ts} THEN 1 ELSE 0 END AS signal_purchases_lapsed, "
        f"CASE WHEN a.satisfaction_recent < {rules.LOW_SATISFACTION} "
        "THEN 1 ELSE 0 END AS signal_low_satisfaction, "
        "CASE WHEN a.satisfaction_recent <= a.satisfaction_prior - "
        f"{rules.SATISFACTION_DROP} THEN 1 ELSE 0 END AS signal_falling_satisfaction, "
        "CASE WHEN COALESCE(o.overdue_needs, 0) > 0 THEN 1 ELSE 0 END AS signal_overdue_needs, "
        f"{d.days_between(ts, 's.stage_entered_at') if detail else 'NULL'} AS days_in_stage, "
        f"{d.days_between(ts, 'a.last_contact_at')} AS days_since_contact, "
        f"{d.days_between(ts, 'a.last_purchase_at')} AS days_since_purchase "
        "FROM scoped s LEFT JOIN activity a ON a.customer_id = s.id "
        "LEFT JOIN open_needs o ON o.customer_id = s.id), ",
        *(scope.cutoff(days) for days, _ in rules.RECENCY_DAYS),
        scope.cutoff(rules.CONTACT_QUIET_DAYS),
        scope.cutoff(rules.PURCHASE_QUIET_DAYS),
        *(scope.ends_at,) * (3 if detail else 2),
    )
    churn = " + ".join(f"signal_{s.code.lower()} * {s.points}" for s in rules.CHURN_SIGNALS)
    sql.add(
        f"scored AS (SELECT facts.*, {_segment_case()} AS rfm_segment, "
        f"CASE WHEN {churn} > 100 THEN 100 ELSE {churn} END AS churn_score FROM facts)"
    )
    return sql


def shape(row: dict[str, Any]) -> dict[str, Any]:
    """One ``scored`` row in engine-independent Python values."""
    signals = [s.code for s in rules.CHURN_SIGNALS if row[f"signal_{s.code.lower()}"]]
    score = int(row["churn_score"])
    return {
        **row,
        "first_contact_at": queries.read_timestamp(row["first_contact_at"]),
        "last_contact_at": queries.read_timestamp(row["last_contact_at"]),
        "last_purchase_at": queries.read_timestamp(row["last_purchase_at"]),
        "purchases": int(row["purchases"]),
        "purchase_total": round(float(row["purchase_total"]), 2),
        "interactions": int(row["interactions"]),
        "rated": int(row["rated"]),
        "open_needs": int(row["open_needs"]),
        "overdue_needs": int(row["overdue_needs"]),
        "satisfaction": rounded(row["satisfaction"]),
        "satisfaction_recent": rounded(row["satisfaction_recent"]),
        "satisfaction_prior": rounded(row["satisfaction_prior"]),
        "days_in_stage": rounded(row["days_in_stage"], 2),
        "days_since_contact": rounded(row["days_since_contact"], 2),
        "days_since_purchase": rounded(row["days_since_purchase"], 2),
        "r": int(row["r"]),
        "f": int(row["f"]),
        "m": int(row["m"]),
        "signals": signals,
        "churn_score": score,
        "churn_level": rules.churn_level(score),
    }
