"""Satisfaction by channel, outcome and direction equals, on both engines, what
counting the rated interactions in Python gives: for a scope of every active
customer (all interactions less the deleted customers', ``AnalyticsScope.
left_out``), for every other scope (joined with the customers in scope), for
each calendar bucket, and for periods that start and end inside a day (the
report groups by UTC day first and adds the days up)."""

from __future__ import annotations

import asyncio
import datetime
from collections import defaultdict
from fractions import Fraction
from typing import Any

from crmgraph.analytics.satisfaction import GROUPINGS, satisfaction
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import AppState, with_state
from crmgraph.db import queries
from crmgraph.db.queries import read_timestamp
from crmgraph.testing import settings_for
from tests.helpers import BUCKET_FORMATS as FORMATS
from tests.helpers import in_scope, recount_world

Row = tuple[str | None, str | None, int, float, float]


def expected(
    customers: list[dict[str, Any]],
    interactions: list[dict[str, Any]],
    scope: AnalyticsScope,
    by: str,
    bucket: str,
) -> tuple[list[Row], list[Row]]:
    """(overall, over time) counted in Python from the rows."""
    scoped = {c["id"] for c in customers if in_scope(c, scope.customers)}
    column = GROUPINGS[by].removeprefix("i.")
    ratings: dict[tuple[str | None, str | None], list[int]] = defaultdict(list)
    for i in interactions:
        at = read_timestamp(i["occurred_at"]).astimezone(datetime.UTC)
        if i["satisfaction"] is None or i["customer"] not in scoped:
            continue
        if scope.starts_at <= at < scope.ends_at:
            period = at.strftime(FORMATS[bucket])
            ratings[(i[column], period)].append(i["satisfaction"])
            ratings[(i[column], None)].append(i["satisfaction"])

    def row(key: str | None, period: str | None, values: list[int]) -> Row:
        n = len(values)
        average = round(float(Fraction(sum(values), n)), 4)
        return (key, period, n, average, round(sum(v >= 4 for v in values) / n, 4))

    rows = [row(k, p, v) for (k, p), v in ratings.items()]
    order = sorted(rows, key=lambda r: (r[0] is None, r[0] or "", r[1] or ""))
    return [r for r in order if r[1] is None], [r for r in order if r[1] is not None]


async def check(
    state: AppState, q: queries.CustomerQuery, starts: Any, ends: Any, by: str, bucket: str
) -> int:
    db = state.db
    customers = await db.fetch("SELECT id, kind, owner, deleted_at FROM customer")
    interactions = await db.fetch(
        "SELECT customer, occurred_at, satisfaction, channel, outcome, direction FROM interaction"
    )
    scope = AnalyticsScope.create(db, q, starts, ends)
    found = await satisfaction(db, scope, by, bucket)
    as_rows = [
        [(r.key, r.period, r.rated, r.average, r.satisfied_share) for r in rows]
        for rows in (found.overall, found.over_time)
    ]
    assert tuple(as_rows) == expected(customers, interactions, scope, by, bucket), (q, by)
    return sum(r.rated for r in found.overall)


def test_satisfaction_equals_a_count_of_the_rated_interactions(database_url: str) -> None:
    async def work(state: AppState) -> None:
        db = state.db
        scopes, _ = await recount_world(state, "satisfaction")
        deleted = await db.fetch(
            "SELECT COUNT(*) AS n FROM interaction i JOIN customer c ON c.id = i.customer "
            "WHERE c.deleted_at IS NOT NULL AND i.satisfaction IS NOT NULL"
        )
        assert int(deleted[0]["n"]) > 0
        for q, starts, ends in scopes:
            for by in GROUPINGS:
                for bucket in FORMATS:
                    assert await check(state, q, starts, ends, by, bucket) > 0

    asyncio.run(with_state(settings_for(database_url), work))
