"""Cohort retention read from the ``customer_month`` rollup (crmgraph.db.activity)
gives, on both engines, what counting each customer's interactions month by
month gives: for every filter the report takes (type, owner, team, period;
a type's cohort is of the parties' first entries into it, issue 24),
for periods ending inside a month, at a month's first instant and in the past,
and when the period's last month holds interactions after its end (then that
month is read from the interactions, not the rollup)."""

from __future__ import annotations

import asyncio
import datetime
from collections import defaultdict
from typing import Any

from crmgraph.analytics.cohorts import cohort_retention
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import AppState, with_state
from crmgraph.db import queries, writes
from crmgraph.db.queries import read_timestamp
from crmgraph.demo import seed_demo
from crmgraph.testing import settings_for

NOW = datetime.datetime(2026, 11, 18, 15, 30, tzinfo=datetime.UTC)


def month_of(at: datetime.datetime) -> int:
    return at.year * 12 + at.month - 1


def acquisitions(
    customers: list[dict[str, Any]], history: list[dict[str, Any]], kinds: tuple[str, ...]
) -> dict[int, datetime.datetime]:
    """When each customer was acquired: its creation, or asked for types its
    first entry into one of them (issue 24: per role, from the history)."""
    if not kinds:
        return {c["id"]: read_timestamp(c["created_at"]) for c in customers}
    first: dict[int, datetime.datetime] = {}
    for entry in history:
        at = read_timestamp(entry["at"])
        if entry["kind"] in kinds and (
            entry["customer"] not in first or at < first[entry["customer"]]
        ):
            first[entry["customer"]] = at
    return first


def expected(
    customers: list[dict[str, Any]],
    interactions: list[dict[str, Any]],
    q: queries.CustomerQuery,
    starts: datetime.datetime,
    ends: datetime.datetime,
    history: list[dict[str, Any]],
) -> list[tuple[str, int, list[int]]]:
    """Cohorts counted in Python from the rows: (month, size, active per offset)."""
    cohort: dict[int, int] = {}
    acquired = acquisitions(customers, history, q.kinds)
    for c in customers:
        created = acquired.get(c["id"])
        if c["deleted_at"] is not None or created is None or not starts <= created < ends:
            continue
        if q.owner_ids and c["owner"] not in q.owner_ids:
            continue
        if q.team_ids and c["team"] not in q.team_ids:
            continue
        cohort[c["id"]] = month_of(created)
    active: dict[int, set[int]] = defaultdict(set)
    for i in interactions:
        occurred = read_timestamp(i["occurred_at"])
        if i["customer"] in cohort and occurred < ends:
            active[i["customer"]].add(month_of(occurred))
    month_start = ends.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = month_of(ends) - (1 if ends == month_start else 0)
    sizes: dict[int, int] = defaultdict(int)
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for pk, m0 in cohort.items():
        sizes[m0] += 1
        for m in active[pk]:
            if m >= m0:
                counts[(m0, m - m0)] += 1
    return [
        (
            f"{m0 // 12:04d}-{m0 % 12 + 1:02d}",
            size,
            [counts[(m0, k)] for k in range(max(last - m0, 0) + 1)],
        )
        for m0, size in sorted(sizes.items())
    ]


async def check(state: AppState, q: queries.CustomerQuery, starts: Any, ends: Any) -> int:
    db = state.db
    customers = await db.fetch("SELECT id, kind, owner, team, created_at, deleted_at FROM customer")
    interactions = await db.fetch("SELECT customer, occurred_at FROM interaction")
    history = await db.fetch("SELECT customer, kind, at FROM stage_change")
    scope = AnalyticsScope.create(db, q, starts, ends)
    found = [
        (c.month, c.size, [m.active for m in c.months]) for c in await cohort_retention(db, scope)
    ]
    want = expected(customers, interactions, q, scope.starts_at, scope.ends_at, history)
    assert found == want, (q, starts, ends)
    return sum(sum(active) for _, _, active in found)


def test_cohorts_from_the_rollup_match_the_interactions(database_url: str) -> None:
    async def work(state: AppState) -> None:
        db = state.db
        await seed_demo(db, state.catalog, customers=400, now=NOW)
        owner = (await db.fetch("SELECT MIN(owner) AS o FROM customer"))[0]["o"]
        team = (await db.fetch("SELECT MIN(team) AS t FROM customer"))[0]["t"]
        year_ago = NOW - datetime.timedelta(days=365)
        everything = queries.CustomerQuery()
        scopes = [
            (everything, None, NOW),
            (queries.CustomerQuery(kinds=("client",)), None, NOW),
            (queries.CustomerQuery(kinds=("prospect", "guarantor")), year_ago, NOW),
            (queries.CustomerQuery(owner_ids=(owner,)), year_ago, NOW),
            (queries.CustomerQuery(team_ids=(team,)) if team else everything, None, NOW),
            # ends at a month's first instant, and inside a past month
            (everything, None, datetime.datetime(2026, 9, 1, tzinfo=datetime.UTC)),
            (everything, year_ago, datetime.datetime(2026, 8, 17, 9, tzinfo=datetime.UTC)),
        ]
        for q, starts, ends in scopes:
            assert await check(state, q, starts, ends) > 0
        # interactions after the period's end in its last month: the rollup's
        # row for that month counts them, so that month comes from the
        # interactions; the months before still come from the rollup
        some = (await db.fetch("SELECT MIN(id) AS id FROM customer WHERE deleted_at IS NULL"))[0]
        await writes.insert(db, "interaction", {
            "customer": some["id"], "channel": "EMAIL", "direction": "OUTBOUND",
            "subject": "booked for later this month",
            "occurred_at": NOW + datetime.timedelta(days=5),
        })  # fmt: skip
        for q, starts, ends in scopes:
            await check(state, q, starts, ends)
        await check(state, everything, None, NOW + datetime.timedelta(days=6))

    asyncio.run(with_state(settings_for(database_url), work))
