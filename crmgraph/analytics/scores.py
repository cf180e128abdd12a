"""Customer-level answers built on the facts: each customer's knowledge
profile, RFM segments with their members, and the churn-risk list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from crmgraph.analytics import churn as churn_list
from crmgraph.analytics import rfm, rules
from crmgraph.analytics.facts import facts_ctes, shape
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql
from crmgraph.db.engine import Database
from crmgraph.db.queries import Where


async def knowledge(db: Database, scope: AnalyticsScope, ids: Sequence[int]) -> dict[int, dict]:
    """Facts, interactions by channel and the next best action of each customer
    (two statements for any number of customers)."""
    rows = (await _facts_of(db, scope, ids, tuned=False)).values()
    where = Where()
    where.add_in("customer", tuple(ids))
    channel_sql = Sql().add(
        f"SELECT customer, channel, COUNT(*) AS n FROM interaction WHERE {where.sql()} AND ",
        *where.args,
    )
    channel_sql.extend(scope.period("occurred_at")).add(
        " GROUP BY customer, channel ORDER BY customer, channel"
    )
    by_channel: dict[int, list[tuple[str, int]]] = {}
    for row in await channel_sql.fetch(db, tuned=False):
        by_channel.setdefault(row["customer"], []).append((row["channel"], int(row["n"])))
    found = {}
    for row in rows:
        facts = shape(row)
        facts["as_of"] = scope.ends_at
        facts["by_channel"] = by_channel.get(row["id"], [])
        facts["action"] = rules.next_best_action(facts, facts["signals"], facts["churn_level"])
        found[row["id"]] = facts
    return found


@dataclass(frozen=True)
class SegmentSummary:
    key: str
    description: str
    customers: int
    revenue: float
    purchases: int


async def rfm_segments(db: Database, scope: AnalyticsScope) -> list[SegmentSummary]:
    """Every segment, in the rules' order, from the buyers alone (crmgraph.analytics.rfm)."""
    found = await rfm.segment_totals(db, scope)
    empty = rfm.SegmentTotals(0, 0, 0)
    return [
        SegmentSummary(
            segment.key,
            segment.description,
            found.get(segment.key, empty).customers,
            round(found.get(segment.key, empty).cents / 100, 2),
            found.get(segment.key, empty).purchases,
        )
        for segment in rules.RFM_SEGMENTS
    ]


@dataclass(frozen=True)
class ScoredPage:
    rows: list[dict[str, Any]]  # shaped facts, customer columns included
    has_next: bool
    total: int


async def scored_page(
    db: Database,
    scope: AnalyticsScope,
    condition: Sql,
    order: str,
    limit: int,
    after: tuple[int, int] | None,
) -> ScoredPage:
    """One page of scored customers matching ``condition``, in keyset order
    ``order`` (``"segment"``: by id; ``"churn"``: riskiest first, then by id).

    The page and the total are chosen on the ranking columns alone (id and,
    in churn order, the churn score), then only the page's customers get
    every fact: the columns the ranking does not read are not computed for
    the other customers (PostgreSQL drops unused outputs of the inlined
    CTEs), nor carried through the count and the sort. In id order the facts
    are read without detail: a condition on RFM scores needs no satisfaction
    trend, which would be computed for every customer in scope."""
    if isinstance(condition, SegmentMembers):
        return await _segment_page(db, scope, condition.segment, limit, after)
    if isinstance(condition, ChurnCandidates) and order == "churn":
        chosen = await churn_list.ranked(db, scope, condition.min_score, limit, after)
        return await _page_of(db, scope, chosen.ids, limit, chosen.total)
    churn = order == "churn"
    ranking = "id, churn_score" if churn else "id"
    sql = facts_ctes(scope, detail=churn).add(
        f" SELECT * FROM (SELECT {ranking}, COUNT(*) OVER () AS total "
    )
    sql.add("FROM scored WHERE ").extend(condition).add(") page")
    if after is not None:
        value, pk = after
        if churn:
            sql.add(" WHERE (churn_score < {} OR (churn_score = {} AND id > {}))", value, value, pk)
        else:
            sql.add(" WHERE id > {}", pk)
    ordering = "churn_score DESC, id" if churn else "id"
    sql.add(f" ORDER BY {ordering} LIMIT {{}}", limit + 1)
    rows = await sql.fetch(db)
    total = int(rows[0]["total"]) if rows else 0
    page = rows[:limit]
    found = await _facts_of(db, scope, [r["id"] for r in page])
    # a customer deleted since the ranking statement is left out of its page
    shaped = [shape(found[r["id"]]) for r in page if r["id"] in found]
    return ScoredPage(shaped, len(rows) > limit, total)


async def _segment_page(
    db: Database,
    scope: AnalyticsScope,
    segment: str,
    limit: int,
    after: tuple[int, int] | None,
) -> ScoredPage:
    """A segment's members by id: the page's ids and the segment's total
    from the buyers alone (crmgraph.analytics.rfm), every fact for the page
    only. The page is a walk in id order that stops after ``limit + 1``
    members, where ranking the facts of every customer took 1.5 s at a
    million customers."""
    ids = await rfm.member_ids(db, scope, segment, after[1] if after else None, limit + 1)
    totals = await rfm.segment_totals(db, scope)
    total = totals[segment].customers if segment in totals else 0
    return await _page_of(db, scope, ids, limit, total)


async def _page_of(
    db: Database, scope: AnalyticsScope, ids: list[int], limit: int, total: int
) -> ScoredPage:
    """The page of the first ``limit`` of ``ids`` (one more: there is a next
    page), each customer with every fact."""
    page = ids[:limit]
    found = await _facts_of(db, scope, page)
    # a customer deleted since the ranking statement is left out of its page
    shaped = [shape(found[pk]) for pk in page if pk in found]
    return ScoredPage(shaped, len(ids) > limit, total)


async def _facts_of(
    db: Database, scope: AnalyticsScope, ids: Sequence[int], *, tuned: bool = True
) -> dict[int, dict]:
    """Every fact of the customers ``ids`` (within ``scope``), by id."""
    if not ids:
        return {}
    scope = replace(scope, customers=replace(scope.customers, ids=tuple(ids)))
    rows = await facts_ctes(scope).add(" SELECT * FROM scored").fetch(db, tuned=tuned)
    return {r["id"]: r for r in rows}


@dataclass
class SegmentMembers(Sql):
    """The condition of a segment's members, which ``scored_page`` answers
    from the buyers alone (crmgraph.analytics.rfm) rather than every fact."""

    segment: str = ""


def segment_members(segment: str) -> Sql:
    return SegmentMembers(segment=segment).add("rfm_segment = {}", segment)


def churn_candidates(scope: AnalyticsScope, min_score: int) -> tuple[AnalyticsScope, Sql]:
    """The churn list's scope and condition. The scope is narrowed to the
    phases the list covers (unless it names phases itself), so the facts are
    computed for those customers only; the condition keeps its own phase
    filter for a scope that named others."""
    if not scope.customers.phases:
        phases_only = replace(scope.customers, phases=rules.CHURN_PHASES)
        scope = replace(scope, customers=phases_only)
    phases = ", ".join(f"'{p}'" for p in rules.CHURN_PHASES)
    condition = ChurnCandidates(min_score=min_score)
    return scope, condition.add(f"phase IN ({phases}) AND churn_score >= {{}}", min_score)


@dataclass
class ChurnCandidates(Sql):
    """The churn list's condition, which ``scored_page`` ranks from the
    churn signals alone (crmgraph.analytics.churn) rather than every fact."""

    min_score: int = 0
