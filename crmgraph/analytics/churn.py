"""The churn-risk list's ranking: each candidate's churn score from its
signals alone, without the other facts of crmgraph.analytics.facts.

The list ranks the customers retained or expanding (``rules.CHURN_PHASES``)
by churn score, riskiest first, and counts those at or above a minimum, so
every candidate is scored (a quarter of the customers): a top-N cannot stop
early, since the total needs every score. No signal itself can be kept by a
trigger, since each is relative to the moment scores are computed as of;
what they are computed from can, when nothing after the moment counts.

For a period that ends after every interaction (one ending now, as a rule)
on PostgreSQL, the signals come from ``churn_basis`` (crmgraph.db.churn_basis,
crmgraph.analytics.churn_kept): one row per candidate with its last contact,
last purchase and the times and running sums of its recent ratings, kept by
triggers, so a candidate is one row read and its windows two binary
searches, where the reads below took 2.2 s at a million customers, most of
it a hash aggregate of every rating of the last 180 days.

Otherwise (another period, SQLite) the candidates come from
``ix_customer_role_phase_kind`` (migration 0041) and each signal from the
cheapest read that answers it exactly (the facts computed every fact of
every candidate: 2.8 s at a million customers):

- no recent contact, purchases lapsed: the lifetime rollup
  (``customer_activity``) when the period holds every interaction; else
  whether the candidate has an interaction since the later of the period's
  start and the contact cut-off, and its last purchase in the period, each
  hashed from an index range for the customers holding a role in the
  candidates' phases;
- low and falling satisfaction: the ratings of the two windows, clipped to
  the period, hashed from ``ix_interaction_rated`` (index-only) for the
  customers holding a role in the candidates' phases, rather than probed
  candidate by candidate (25 times the buffers at 100,000 customers);
- overdue needs: whether one open need is past due (``ix_need_open``).

Only the page's customers then get every fact (crmgraph.analytics.scores).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from crmgraph.analytics import churn_kept, rules
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql
from crmgraph.db import activity, customer_counts, queries
from crmgraph.db.engine import Database


@dataclass(frozen=True)
class Ranked:
    ids: list[int]  # the page, riskiest first, one more than asked when there is a next
    total: int


def candidates(scope: AnalyticsScope) -> AnalyticsScope | None:
    """The scope's customers in the churn phases (None: there are none)."""
    asked = scope.customers.phases
    phases = tuple(p for p in rules.CHURN_PHASES if not asked or p in asked)
    if not phases:
        return None
    return replace(scope, customers=replace(scope.customers, phases=phases))


def _candidates_cte(scope: AnalyticsScope) -> Sql:
    """``candidates``, once for its reads. When the maintained customer
    tally answers the filter (kinds, phases, deleted: crmgraph.db.customer_counts),
    from each customer's stored key in ``customer_tally_key`` (its primary
    kind, its primary role's phase, whether deleted; kept by triggers in the
    writing transaction), one narrow table, instead of joining ``customer``
    (370 MB at a million customers, read row by row where its visibility map
    is not current) with the role rows."""
    d = scope.dialect
    tally = queries.tally_where(scope.customers)
    if tally is not None:
        return Sql().add(
            f"candidates AS {d.materialized}(SELECT t.customer AS id "
            f"FROM {customer_counts.KEYS} t WHERE {tally.sql()})",
            *tally.args,
        )
    return _ids_cte(scope)


def _ids_cte(scope: AnalyticsScope) -> Sql:
    """``candidates`` from the customers and their roles (any filter)."""
    d = scope.dialect
    ids = scope.ids_cte("candidates")
    text = ids.text.replace(
        f"candidates AS {d.not_materialized}", f"candidates AS {d.materialized}"
    )
    return Sql().add(text, *ids.args)


def _recency(scope: AnalyticsScope, lifetime: bool) -> Sql:
    """The no-recent-contact and purchases-lapsed signals of candidate ``c``.
    ``lifetime``: the period ends after every interaction, so the last
    contact and purchase in the period are the rollup row ``a``'s when they
    fall in it (a period ending now, as a rule: then the rollup answers
    whatever the start, where the range of the contact window read
    2,330,000 index entries at a million customers). Else from ``contacted``
    and ``bought`` (``_recency_ctes``) joined as ``k`` and ``b``."""
    ts = scope.ts()
    contact = max(scope.starts_at, scope.cutoff(rules.CONTACT_QUIET_DAYS))
    purchase = scope.cutoff(rules.PURCHASE_QUIET_DAYS)
    if lifetime:
        sql = Sql().add(
            f"CASE WHEN a.last_contact_at IS NULL OR a.last_contact_at < {ts} THEN 1 ELSE 0 END "
            "AS signal_no_recent_contact, ",
            contact,
        )
    else:
        sql = Sql().add(
            "CASE WHEN k.customer IS NULL THEN 1 ELSE 0 END AS signal_no_recent_contact, "
        )
    if scope.starts_at >= purchase:  # every purchase in the period is recent
        return sql.add("0 AS signal_purchases_lapsed")
    if lifetime:
        return sql.add(
            f"CASE WHEN a.last_purchase_at >= {ts} AND a.last_purchase_at < {ts} THEN 1 ELSE 0 "
            "END AS signal_purchases_lapsed",
            scope.starts_at,
            purchase,
        )
    return sql.add(
        f"CASE WHEN b.last_at < {ts} THEN 1 ELSE 0 END AS signal_purchases_lapsed", purchase
    )


async def _ends_after_all(db: Database, scope: AnalyticsScope) -> bool:
    """Whether every interaction precedes the period's end (one index end)."""
    rows = await db.fetch(
        "SELECT CASE WHEN (SELECT MAX(occurred_at) FROM interaction) < "
        f"{scope.ts()} THEN 1 ELSE 0 END AS after",
        scope.ends_at,
    )
    return bool(rows[0]["after"])


def _recency_ctes(scope: AnalyticsScope) -> Sql:
    """For a period the rollup does not answer, ``contacted``: the role
    holders with an interaction since the later of the period's start and
    the contact cut-off (``ix_interaction_occurred``), and ``bought``: their
    last purchase in the period (``ix_interaction_purchase``; not needed when
    the period starts after the purchase cut-off). Hashed from the index
    ranges: probing each candidate (its interactions by customer and time,
    ``LIMIT 1``) cost 2.7 s at a million customers, 122,000 probes of an
    index larger than the memory left to it."""
    ts = scope.ts()
    contact = max(scope.starts_at, scope.cutoff(rules.CONTACT_QUIET_DAYS))
    sql = Sql().add(
        "contacted AS (SELECT i.customer FROM interaction i WHERE "
        f"i.occurred_at >= {ts} AND i.occurred_at < {ts} AND i.customer IN (",
        contact,
        scope.ends_at,
    )
    sql.extend(_role_holders(scope)).add(") GROUP BY i.customer)")
    if scope.starts_at >= scope.cutoff(rules.PURCHASE_QUIET_DAYS):
        return sql
    sql.add(
        ", bought AS (SELECT i.customer, MAX(i.occurred_at) AS last_at FROM interaction i "
        "WHERE i.amount IS NOT NULL AND "
    )
    sql.extend(scope.period("i.occurred_at")).add(" AND i.customer IN (")
    return sql.extend(_role_holders(scope)).add(") GROUP BY i.customer)")


def _role_holders(scope: AnalyticsScope) -> Sql:
    """The customers holding a role in the scope's phases (of its kinds,
    unless a kind may be a further role): a superset of the candidates,
    whose primary role is one of those, that PostgreSQL estimates well (one
    index, one column), where its estimate of the candidates (a join on
    customer and kind) was a quarter of them and led it to probe each
    candidate's ratings instead of hashing the window's."""
    sql = Sql().add("SELECT r.customer FROM customer_role r WHERE ")
    where = queries.Where()
    where.add_in("r.phase", scope.customers.phases)
    if scope.kinds and not scope.customers.any_role:
        where.add_in("r.kind", scope.kinds)
    return sql.add(where.sql(), *where.args)


def _trend_cte(scope: AnalyticsScope) -> Sql:
    """``trend``: the average rating in the recent window and in the one
    before, both clipped to the period, as the facts compute them, of the
    role holders (each candidate among them)."""
    ts = scope.ts()
    recent = max(scope.starts_at, scope.cutoff(rules.SATISFACTION_WINDOW_DAYS))
    prior = max(scope.starts_at, scope.cutoff(2 * rules.SATISFACTION_WINDOW_DAYS))
    is_recent = f"CASE WHEN i.occurred_at >= {ts} THEN i.satisfaction END"
    is_prior = f"CASE WHEN i.occurred_at < {ts} THEN i.satisfaction END"
    sql = Sql().add(
        f"trend AS (SELECT i.customer, SUM({is_recent}) * 1.0 / COUNT({is_recent}) AS recent, "
        f"SUM({is_prior}) * 1.0 / COUNT({is_prior}) AS prior FROM interaction i "
        f"WHERE i.satisfaction IS NOT NULL AND i.occurred_at >= {ts} AND i.occurred_at < {ts} "
        "AND i.customer IN (",
        *(recent,) * 4,
        prior,
        scope.ends_at,
    )
    return sql.extend(_role_holders(scope)).add(") GROUP BY i.customer)")


def _overdue(scope: AnalyticsScope, alias: str) -> Sql:
    """The overdue-needs signal of candidate ``alias.id`` (``ix_need_open``)."""
    return Sql().add(
        f"CASE WHEN EXISTS (SELECT 1 FROM need n WHERE n.customer = {alias}.id AND "
        f"n.{activity.OPEN_NEED} AND n.due_date < {{}}) THEN 1 ELSE 0 END "
        "AS signal_overdue_needs",
        scope.ends_at.date(),
    )


def _signals_cte(scope: AnalyticsScope, lifetime: bool) -> Sql:
    sql = Sql().add("signals AS (SELECT c.id, ").extend(_recency(scope, lifetime))
    sql.add(
        f", CASE WHEN t.recent < {rules.LOW_SATISFACTION} THEN 1 ELSE 0 END "
        "AS signal_low_satisfaction, CASE WHEN t.recent <= t.prior - "
        f"{rules.SATISFACTION_DROP} THEN 1 ELSE 0 END AS signal_falling_satisfaction, "
    )
    sql.extend(_overdue(scope, "c")).add(" FROM candidates c ")
    if lifetime:
        sql.add("LEFT JOIN customer_activity a ON a.customer_id = c.id ")
    else:
        sql.add("LEFT JOIN contacted k ON k.customer = c.id ")
        if scope.starts_at < scope.cutoff(rules.PURCHASE_QUIET_DAYS):
            sql.add("LEFT JOIN bought b ON b.customer = c.id ")
    # fenced: each signal once per candidate, not once per use in the score
    return sql.add(f"LEFT JOIN trend t ON t.customer = c.id{scope.dialect.fence})")


def churn_score() -> str:
    """The churn score of a row with the ``signal_*`` columns (capped at 100)."""
    total = " + ".join(f"signal_{s.code.lower()} * {s.points}" for s in rules.CHURN_SIGNALS)
    return f"CASE WHEN {total} > 100 THEN 100 ELSE {total} END"


async def ranked(
    db: Database,
    scope: AnalyticsScope,
    min_score: int,
    limit: int,
    after: tuple[int, int] | None,
) -> Ranked:
    """The candidates scoring at least ``min_score``, riskiest first then by
    id, after the keyset ``after`` (score, id): ``limit`` of them and one
    more when there is a next page, and how many there are in all. Scored
    from ``churn_basis`` when it answers (crmgraph.analytics.churn_kept),
    else from the interactions (:func:`ranked_from_interactions`)."""
    chosen = candidates(scope)
    if chosen is None:
        return Ranked([], 0)
    lifetime = await _ends_after_all(db, chosen)
    if lifetime and churn_kept.answers(chosen):
        signals = churn_kept.signals_ctes(
            chosen, _ids_cte(chosen), _recency(chosen, True), _overdue(chosen, "a")
        )
        return await _page(db, signals, min_score, limit, after)
    return await _ranked(db, chosen, lifetime, min_score, limit, after)


async def ranked_from_interactions(
    db: Database,
    scope: AnalyticsScope,
    min_score: int,
    limit: int,
    after: tuple[int, int] | None,
) -> Ranked:
    """:func:`ranked` without ``churn_basis``: each signal read from the
    interactions, rollups and indexes (the way SQLite always ranks)."""
    chosen = candidates(scope)
    if chosen is None:
        return Ranked([], 0)
    lifetime = await _ends_after_all(db, chosen)
    return await _ranked(db, chosen, lifetime, min_score, limit, after)


async def _ranked(
    db: Database,
    chosen: AnalyticsScope,
    lifetime: bool,
    min_score: int,
    limit: int,
    after: tuple[int, int] | None,
) -> Ranked:
    sql = Sql().add("WITH ").extend(_candidates_cte(chosen)).add(", ")
    sql.extend(_trend_cte(chosen)).add(", ")
    if not lifetime:
        sql.extend(_recency_ctes(chosen)).add(", ")
    sql.extend(_signals_cte(chosen, lifetime))
    return await _page(db, sql, min_score, limit, after)


async def _page(
    db: Database, signals: Sql, min_score: int, limit: int, after: tuple[int, int] | None
) -> Ranked:
    """The page and the total over ``signals`` (``WITH ..., signals AS
    (...)``: each candidate's id and ``signal_*`` columns)."""
    sql = Sql().extend(signals)
    sql.add(
        f", scored AS (SELECT id, {churn_score()} AS churn_score FROM signals)"
        " SELECT * FROM (SELECT id, churn_score, COUNT(*) OVER () AS total "
        "FROM scored WHERE churn_score >= {}) page",
        min_score,
    )
    if after is not None:
        value, pk = after
        sql.add(" WHERE (churn_score < {} OR (churn_score = {} AND id > {}))", value, value, pk)
    rows = await sql.add(" ORDER BY churn_score DESC, id LIMIT {}", limit + 1).fetch(db)
    return Ranked([int(r["id"]) for r in rows], int(rows[0]["total"]) if rows else 0)
