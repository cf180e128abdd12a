"""The churn-risk list ranked from the churn signals alone
(crmgraph.analytics.churn) lists exactly the customers the full facts
(crmgraph.analytics.facts) score at or above the minimum, riskiest first
then by id, with their total, on both engines: over periods the lifetime
rollup answers and periods it does not (each signal then read from the
interactions: a start before and after the purchase cut-off, one inside
the satisfaction windows, an end before the last interaction), for every
customer, one kind, one churn phase and a phase outside the list, and
several minimum scores."""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import replace

from crmgraph.analytics import rules, scores
from crmgraph.analytics.facts import facts_ctes, shape
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import AppState, with_state
from crmgraph.db import queries
from crmgraph.demo import seed_demo
from crmgraph.testing import settings_for
from tests.helpers import covers_everything, every_scored_page

NOW = datetime.datetime(2026, 7, 1, tzinfo=datetime.UTC)


def days(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


PERIODS = (  # (starts, ends)
    (None, NOW),
    (None, NOW - days(30)),
    (NOW - days(400), NOW),
    (NOW - days(120), NOW),
    (NOW - days(45), NOW),
    (NOW - days(200), NOW - days(20)),
)
SCOPES = (
    queries.CustomerQuery(),
    queries.CustomerQuery(kinds=("client",)),
    queries.CustomerQuery(phases=("RETENTION",)),
    queries.CustomerQuery(phases=("ACQUISITION",)),
)


async def pages(state: AppState, scope: AnalyticsScope, min_score: int) -> tuple[list, set]:
    """Every page of the list (5 rows each, by keyset) and the totals they gave."""
    churn_scope, condition = scores.churn_candidates(scope, min_score)
    return await every_scored_page(state, churn_scope, condition, "churn", 5)


async def check(state: AppState, scope: AnalyticsScope) -> int:
    rows = await facts_ctes(scope).add(" SELECT * FROM scored").fetch(state.db)
    facts = [shape(r) for r in rows]
    listed = 0
    for min_score in (0, 30, 55):
        wanted = [
            f for f in facts if f["phase"] in rules.CHURN_PHASES and f["churn_score"] >= min_score
        ]
        wanted.sort(key=lambda f: (-f["churn_score"], f["id"]))
        got, totals = await pages(state, scope, min_score)
        assert [r["id"] for r in got] == [f["id"] for f in wanted], (scope, min_score)
        assert got == wanted
        assert totals == {len(wanted)}
        listed += len(wanted)
    return listed


def test_churn_ranking_equals_the_facts(database_url: str) -> None:
    async def work(state: AppState) -> None:
        await seed_demo(state.db, state.catalog, customers=240, now=NOW)
        covering = set()
        signals: set[str] = set()
        for starts, ends in PERIODS:
            period = AnalyticsScope.create(state.db, queries.CustomerQuery(), starts, ends)
            covering.add(await covers_everything(state, period))
            for customers in SCOPES:
                scope = replace(period, customers=customers)
                listed = await check(state, scope)
                assert listed or customers.phases == ("ACQUISITION",), scope
            rows = await facts_ctes(period).add(" SELECT * FROM scored").fetch(state.db)
            signals |= {s for r in rows for s in shape(r)["signals"]}
        assert covering == {True, False}
        # every signal took part in some ranking above
        assert signals == {s.code for s in rules.CHURN_SIGNALS}

    asyncio.run(with_state(settings_for(database_url), work))
