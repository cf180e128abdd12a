"""The churn list ranked from ``churn_basis`` (crmgraph.analytics.churn_kept,
PostgreSQL) lists exactly what the ranking from the interactions
(``churn.ranked_from_interactions``, the way SQLite ranks) lists, page by
page, with the same total, for periods ending after every interaction that
start at any point of the windows (before every interaction, before and
after the purchase cut-off, inside the prior and the recent window), for
filters the customer tally answers (kinds, primary or any role, phases,
deleted customers) and filters it does not (a row scope, owners), at
several minimum scores; and the table's rows equal a recomputation from
the interactions after writes of every kind (interactions logged,
re-rated, moved to another customer, re-dated and deleted; customers
entering and leaving the phases, deleted, hard-deleted; a truncation).
SQLite has no such table: there both calls rank from the interactions."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from dataclasses import replace

from crmgraph.analytics import churn, churn_kept, scores
from crmgraph.analytics.facts import facts_ctes
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import AppState, with_state
from crmgraph.db import churn_basis, queries
from crmgraph.demo import seed_demo
from crmgraph.testing import settings_for

NOW = datetime.datetime(2026, 7, 1, tzinfo=datetime.UTC)


def days(n: float) -> datetime.timedelta:
    return datetime.timedelta(days=n)


STARTS = (None, NOW - days(400), NOW - days(200), NOW - days(150), NOW - days(90), NOW - days(45))
MIN_SCORES = (0, 30, 55, 100)


Ranking = Callable[..., Awaitable[churn.Ranked]]


async def pages(
    fn: Ranking, state: AppState, scope: AnalyticsScope, min_score: int, score: dict[int, int]
) -> list[tuple[list[int], int]]:
    """Every page of 7 (by keyset; ``score``: each candidate's, from the
    facts) of one ranking, with its total."""
    found: list[tuple[list[int], int]] = []
    after = None
    for _ in range(200):
        got = await fn(state.db, scope, min_score, 7, after)
        found.append((got.ids[:7], got.total))
        if len(got.ids) <= 7:
            return found
        after = score[got.ids[6]], got.ids[6]
    raise AssertionError("the keyset did not move on")


async def scores_of(state: AppState, scope: AnalyticsScope) -> dict[int, int]:
    rows = await facts_ctes(scope).add(" SELECT id, churn_score FROM scored").fetch(state.db)
    return {int(r["id"]): int(r["churn_score"]) for r in rows}


async def scopes(state: AppState) -> list[queries.CustomerQuery]:
    owner = (await state.db.fetch("SELECT MIN(owner) AS o FROM customer"))[0]["o"]
    assert owner is not None
    return [
        queries.CustomerQuery(),
        queries.CustomerQuery(kinds=("client",)),
        queries.CustomerQuery(kinds=("client",), any_role=True),
        queries.CustomerQuery(phases=("RETENTION",)),
        queries.CustomerQuery(phases=("EXPANSION", "ACQUISITION")),
        queries.CustomerQuery(deleted="DELETED"),
        queries.CustomerQuery(deleted="ALL"),
        queries.CustomerQuery(owner_ids=(owner,)),
        queries.CustomerQuery(scope=queries.CustomerScope(owner, frozenset())),
    ]


async def check_rankings(state: AppState) -> int:
    """Both rankings over every scope, period and minimum; how many listed."""
    listed = 0
    for starts in STARTS:
        period = AnalyticsScope.create(state.db, queries.CustomerQuery(), starts, NOW)
        for customers in await scopes(state):
            scope, _ = scores.churn_candidates(replace(period, customers=customers), 0)
            chosen = churn.candidates(scope)
            assert chosen is not None
            assert churn_kept.answers(chosen) is not state.db.is_sqlite
            score = await scores_of(state, scope)
            for min_score in MIN_SCORES:
                kept = await pages(churn.ranked, state, scope, min_score, score)
                read = await pages(churn.ranked_from_interactions, state, scope, min_score, score)
                assert kept == read, (starts, customers, min_score)
                listed += read[0][1]
    return listed


KEPT = f"SELECT customer, {', '.join(churn_basis.COLUMNS)} FROM {churn_basis.TABLE}"


async def check_rows(state: AppState) -> int:
    """The kept rows equal the rows computed from the interactions now."""
    kept = await state.db.fetch(f"{KEPT} ORDER BY customer")
    fresh = await state.db.fetch(f"SELECT * FROM ({churn_basis.rows_of(None)}) r ORDER BY customer")
    for one, two in zip(kept, fresh, strict=True):
        assert one == two
    return len(kept)


async def candidate_ids(state: AppState, n: int) -> list[int]:
    rows = await state.db.fetch(
        "SELECT t.customer FROM customer_tally_key t WHERE t.deleted = 0 "
        "AND t.phase IN ('RETENTION', 'EXPANSION') ORDER BY t.customer"
    )
    return [int(r["customer"]) for r in rows[:n]]


async def write_everything(state: AppState) -> None:
    """Writes of every kind the triggers follow (PostgreSQL)."""
    db = state.db
    a, b, c, d, e, f = await candidate_ids(state, 6)
    insert = (
        "INSERT INTO interaction (customer, channel, direction, occurred_at, subject, "
        "satisfaction, amount, created_at) VALUES ({}, 'EMAIL', 'INBOUND', {}, 'kept', {}, {}, {})"
    )
    for who, ago, rating, amount in ((a, 10, 1, None), (a, 100, 5, 20), (b, 200, 2, None)):
        await db.fetch(insert, who, NOW - days(ago), rating, amount, NOW - days(ago))
    await db.fetch(
        "UPDATE interaction SET satisfaction = 1 WHERE customer = {} AND satisfaction IS NOT NULL",
        c,
    )
    moved = await db.fetch("SELECT MIN(id) AS id FROM interaction WHERE customer = {}", d)
    await db.fetch("UPDATE interaction SET customer = {} WHERE id = {}", e, moved[0]["id"])
    await db.fetch("UPDATE interaction SET occurred_at = {} WHERE customer = {}", NOW - days(70), e)
    await db.fetch("DELETE FROM interaction WHERE customer = {}", f)
    # leaving and entering the phases, through the roles (the tally's triggers)
    await db.fetch("UPDATE customer_role SET phase = 'ENDED' WHERE customer = {}", b)
    outside = await db.fetch(
        "SELECT MIN(customer) AS id FROM customer_tally_key WHERE phase = 'ENGAGEMENT'"
    )
    await db.fetch(
        "UPDATE customer_role SET phase = 'EXPANSION' WHERE customer = {}", outside[0]["id"]
    )
    await db.fetch("UPDATE customer SET deleted_at = {} WHERE id = {}", NOW - days(1), c)
    await db.fetch("DELETE FROM customer WHERE id = {}", d)


def test_churn_kept_equals_the_interactions(database_url: str) -> None:
    async def work(state: AppState) -> None:
        await seed_demo(state.db, state.catalog, customers=240, now=NOW)
        last = (await state.db.fetch("SELECT MAX(occurred_at) AS at FROM interaction"))[0]["at"]
        if isinstance(last, str):  # SQLite
            last = datetime.datetime.fromisoformat(last)
        assert last < NOW  # every period here ends after every interaction
        if state.db.is_sqlite:
            assert await check_rankings(state)
            return
        before = await check_rows(state)
        assert before
        await write_everything(state)
        assert await check_rows(state) == before - 1  # b out, one in, d gone, c deleted: kept
        assert await check_rankings(state)
        await state.db.fetch("TRUNCATE interaction CASCADE")
        assert await check_rows(state) == before - 1
        await state.db.fetch("TRUNCATE customer_tally_key")
        assert await check_rows(state) == 0

    asyncio.run(with_state(settings_for(database_url), work))
