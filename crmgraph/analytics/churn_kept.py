"""The churn signals of every candidate from ``churn_basis`` (crmgraph.db.churn_basis),
one row per candidate kept by triggers, for a period that ends after every
interaction (as a rule: one ending now) on PostgreSQL.

What a trigger can keep is what does not depend on the moment: a
candidate's last contact, last purchase and the times and running sums of
its ratings. The signals relative to the moment are then computed from the
candidate's own row: no recent contact and lapsed purchases compare the
last contact and purchase with the cut-offs (as crmgraph.analytics.churn
does from ``customer_activity``); a satisfaction window's number of ratings
is the difference of two binary searches of the rating times
(``width_bucket`` counts the times at or before a moment; one microsecond
before a window's start counts those before it, timestamps being whole
microseconds) and its sum the difference of the running sums at those
positions. The averages are the facts' expression (sum * 1.0 / count, in
numeric), so the ranking equals theirs to the last digit.

Where the customer tally answers the filter, the candidates are the table's
rows under the tally's own conditions (its key columns are copied there);
else the scope's ids joined with it. Every rating of the last 180 days
(1,750,000 at a million customers) was aggregated per customer and joined
with the role holders, and the recency joined from ``customer_activity``:
now each candidate is one row of a table of candidates."""

from __future__ import annotations

import datetime

from crmgraph.analytics import rules
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql
from crmgraph.db import churn_basis, queries

TICK = datetime.timedelta(microseconds=1)


def answers(scope: AnalyticsScope) -> bool:
    """Whether ``churn_basis`` holds the candidates of ``scope`` (its phases
    narrowed to the list's) and the ratings of their windows: on PostgreSQL,
    for a period that ends after every interaction (the caller checks)."""
    phases = set(scope.customers.phases)
    return (
        not scope.dialect.sqlite
        and bool(phases)
        and phases <= set(churn_basis.PHASES)
        and 2 * rules.SATISFACTION_WINDOW_DAYS <= churn_basis.RATING_DAYS
    )


def _rows(scope: AnalyticsScope) -> Sql:
    """``base``: each candidate's row with the number of its ratings before
    the end, before the recent window and before the prior one."""
    recent = max(scope.starts_at, scope.cutoff(rules.SATISFACTION_WINDOW_DAYS))
    prior = max(scope.starts_at, scope.cutoff(2 * rules.SATISFACTION_WINDOW_DAYS))
    ts = scope.ts()
    sql = Sql().add(
        "base AS (SELECT t.customer AS id, t.last_contact_at, t.last_purchase_at, "
        f"t.rating_cum AS cum, width_bucket({ts}, t.rated_at) AS n_end, "
        f"width_bucket({ts}, t.rated_at) AS n_recent, "
        f"width_bucket({ts}, t.rated_at) AS n_prior ",
        scope.ends_at - TICK,
        recent - TICK,
        prior - TICK,
    )
    tally = queries.tally_where(scope.customers)
    if tally is not None:
        sql.add(f"FROM {churn_basis.TABLE} t WHERE {tally.sql()}", *tally.args)
    else:
        sql.add(f"FROM candidates c JOIN {churn_basis.TABLE} t ON t.customer = c.id")
    return sql.add(f"{scope.dialect.fence})")


def signals_ctes(scope: AnalyticsScope, ids: Sql, recency: Sql, overdue: Sql) -> Sql:
    """``WITH ..., signals AS (...)``: each candidate's id and ``signal_*``
    columns. ``ids``: the scope's ``candidates`` CTE, read only where the
    tally does not answer the filter; ``recency``: the no-recent-contact and
    purchases-lapsed columns over the row ``a`` (its last contact and
    purchase); ``overdue``: the overdue-needs column of candidate ``a.id``."""
    sql = Sql().add("WITH ")
    if queries.tally_where(scope.customers) is None:
        sql.extend(ids).add(", ")
    sql.extend(_rows(scope))
    average = (
        "CASE WHEN n_{0} > n_{1} THEN (cum[n_{0} + 1] - cum[n_{1} + 1]) * 1.0 / (n_{0} - n_{1}) END"
    )
    sql.add(
        f", trend AS (SELECT id, last_contact_at, last_purchase_at, "
        f"{average.format('end', 'recent')} AS recent, "
        f"{average.format('recent', 'prior')} AS prior FROM base{scope.dialect.fence})"
    )
    sql.add(", signals AS (SELECT a.id, ").extend(recency)
    sql.add(
        f", CASE WHEN a.recent < {rules.LOW_SATISFACTION} THEN 1 ELSE 0 END "
        "AS signal_low_satisfaction, CASE WHEN a.recent <= a.prior - "
        f"{rules.SATISFACTION_DROP} THEN 1 ELSE 0 END AS signal_falling_satisfaction, "
    )
    sql.extend(overdue)
    # fenced: each signal once per candidate, not once per use in the score
    return sql.add(f" FROM trend a{scope.dialect.fence})")
