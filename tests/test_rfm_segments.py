"""The RFM segments read from purchases alone (crmgraph.analytics.rfm) give
the answers the full facts give (crmgraph.analytics.facts), on both engines:
the segments report, revenue by RFM segment, and every page of every
segment's members (NO_PURCHASE included), for every active customer (the
deleted ones left out by id), every customer (deleted too), one kind and
the churn phases, over all time (the lifetime rollup) and over 90 days (the
purchases themselves)."""

from __future__ import annotations

import asyncio
import datetime
from collections import defaultdict
from dataclasses import replace
from typing import Any

from crmgraph.analytics import revenue, rules, scores
from crmgraph.analytics.facts import facts_ctes, shape
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import AppState, with_state
from crmgraph.db import queries
from crmgraph.demo import seed_demo
from crmgraph.testing import settings_for
from tests.helpers import covers_everything, every_scored_page

NOW = datetime.datetime(2026, 7, 1, tzinfo=datetime.UTC)
SCOPES = (
    queries.CustomerQuery(),
    queries.CustomerQuery(deleted="ALL"),
    queries.CustomerQuery(kinds=("client",)),
    queries.CustomerQuery(phases=rules.CHURN_PHASES),
)


async def facts_by_id(state: AppState, scope: AnalyticsScope) -> dict[int, dict[str, Any]]:
    rows = await facts_ctes(scope).add(" SELECT * FROM scored").fetch(state.db)
    return {r["id"]: shape(r) for r in rows}


def expected_segments(facts: dict[int, dict[str, Any]]) -> dict[str, tuple[int, float, int]]:
    """(customers, revenue, purchases) per segment, summed from the facts."""
    found: dict[str, list] = defaultdict(lambda: [0, 0.0, 0])
    for f in facts.values():
        row = found[f["rfm_segment"]]
        row[0] += 1
        row[1] += f["purchase_total"]
        row[2] += f["purchases"]
    return {k: (n, round(total, 2), p) for k, (n, total, p) in found.items()}


async def members(state: AppState, scope: AnalyticsScope, segment: str) -> tuple[list, set]:
    """Every page of a segment's members (4 rows each, by keyset) and their totals."""
    condition = scores.segment_members(segment)
    return await every_scored_page(state, scope, condition, "segment", 4)


async def check(state: AppState, scope: AnalyticsScope) -> None:
    facts = await facts_by_id(state, scope)
    expected = expected_segments(facts)
    summaries = await scores.rfm_segments(state.db, scope)
    assert [s.key for s in summaries] == [s.key for s in rules.RFM_SEGMENTS]
    for s in summaries:
        assert (s.customers, s.revenue, s.purchases) == expected.get(s.key, (0, 0.0, 0)), s
    rows = await revenue.revenue(state.db, scope, "RFM_SEGMENT")
    bought = {k: v for k, v in expected.items() if v[2]}
    assert {r.segment: (r.customers, r.revenue, r.purchases) for r in rows} == bought
    for segment in rules.RFM_SEGMENTS:
        wanted = sorted(
            (f for f in facts.values() if f["rfm_segment"] == segment.key), key=lambda f: f["id"]
        )
        pages, totals = await members(state, scope, segment.key)
        assert pages == wanted, (scope.customers, segment.key)
        assert totals == {len(wanted)}


def test_segments_from_purchases_equal_the_facts(database_url: str) -> None:
    async def work(state: AppState) -> None:
        await seed_demo(state.db, state.catalog, customers=240, now=NOW)
        deleted = [
            r["id"]
            for r in await state.db.fetch(
                "SELECT a.customer_id AS id FROM customer_activity a WHERE a.purchases > 0 "
                "ORDER BY a.customer_id LIMIT 6"
            )
        ]
        await state.db.fetch(
            f"UPDATE customer SET deleted_at = {{}} WHERE id IN ({', '.join(map(str, deleted))})",
            NOW - datetime.timedelta(days=1),
        )
        lifetime = AnalyticsScope.create(state.db, queries.CustomerQuery(), None, NOW)
        assert await covers_everything(state, lifetime)
        recent = replace(lifetime, starts_at=NOW - datetime.timedelta(days=90))
        assert not await covers_everything(state, recent)
        segments_seen = set()
        for period in (lifetime, recent):
            for customers in SCOPES:
                scope = replace(period, customers=customers)
                await check(state, scope)
                facts = await facts_by_id(state, scope)
                segments_seen |= {f["rfm_segment"] for f in facts.values()}
                has_deleted = any(pk in facts for pk in deleted)
                assert has_deleted == (customers.deleted == "ALL")
        # the pages and counts above went through most segments, NO_PURCHASE included
        assert len(segments_seen) >= 6 and "NO_PURCHASE" in segments_seen

    asyncio.run(with_state(settings_for(database_url), work))
