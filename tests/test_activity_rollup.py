"""The rollups of crmgraph.db.activity (``customer_activity``, ``customer_month``)
stay equal to the interactions they count through every kind of write, on both
engines, and the analytics facts are the same whether they come from the
rollup (the period holds every interaction) or from the interactions
themselves."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from crmgraph.analytics.facts import facts_ctes, shape
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import AppState, with_state
from crmgraph.db import activity, queries, writes
from crmgraph.demo import seed_demo
from crmgraph.testing import settings_for
from tests.helpers import covers_everything, insert_customer

T0 = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)


def day(n: int) -> datetime.datetime:
    return T0 + datetime.timedelta(days=n)


async def rollup(state: AppState, kind: activity.Rollup = activity.ACTIVITY) -> list[tuple]:
    keys = ", ".join(k.name for k in kind.keys)
    # a rollup of delta rows (crmgraph.db.tallies) is read through its view of the sums
    source = getattr(kind, "view", kind.table)
    rows = await state.db.fetch(f"SELECT {kind.columns} FROM {source} ORDER BY {keys}")
    return [tuple(str(v) for v in r.values()) for r in rows]


async def recounted(state: AppState, kind: activity.Rollup) -> list[tuple]:
    rows = await state.db.fetch(kind.totals_select("interaction", sqlite=state.db.is_sqlite))
    return [tuple(str(v) for v in r.values()) for r in rows]


async def assert_rollup_exact(state: AppState, step: str) -> None:
    for kind in activity.ROLLUPS:
        kept, counted = await rollup(state, kind), await recounted(state, kind)
        name = getattr(kind, "view", kind.table)
        assert kept == counted, f"after {step}: {name} {kept} != interactions {counted}"


def test_rollup_follows_every_write(database_url: str) -> None:
    async def work(state: AppState) -> None:
        db = state.db
        ids = [
            await insert_customer(state, f"R{n}", day(0), [("client", "interest", day(0))])
            for n in range(3)
        ]
        a, b, c = ids
        first = await writes.insert(db, "interaction", {
            "customer": a, "channel": "EMAIL", "direction": "INBOUND", "subject": "hello",
            "occurred_at": day(1), "satisfaction": 4, "amount": None,
        })  # fmt: skip
        await assert_rollup_exact(state, "one insert")
        # several customers in one statement, amounts whose float sum is inexact
        await db.fetch(
            "INSERT INTO interaction (customer, channel, direction, subject, occurred_at, "
            "satisfaction, amount) VALUES ({}, 'PHONE', 'OUTBOUND', 'x', {}, NULL, {}), "
            "({}, 'PHONE', 'OUTBOUND', 'y', {}, 2, {}), ({}, 'WEB', 'INBOUND', 'z', {}, 5, {}), "
            "({}, 'WEB', 'INBOUND', 'w', {}, NULL, NULL)",
            a, day(5), 0.1, a, day(3), 0.2, b, day(2), 19.99, c, day(9),
        )  # fmt: skip
        await assert_rollup_exact(state, "a multi-row insert")
        kept_a = (await rollup(state))[0]
        # interactions, purchases, cents (0.1 + 0.2, exactly), rated, rating sum
        assert (kept_a[1], kept_a[4], kept_a[5], kept_a[7], kept_a[8]) == ("3", "2", "30", "2", "6")
        await db.fetch(
            "UPDATE interaction SET amount = {}, satisfaction = NULL, occurred_at = {} "
            "WHERE id = {}",
            12.5, day(40), first,
        )  # fmt: skip
        await assert_rollup_exact(state, "an update of amount, rating and time")
        # a merge moves rows between customers
        await db.fetch("UPDATE interaction SET customer = {} WHERE customer = {}", b, a)
        await assert_rollup_exact(state, "moving interactions to another customer")
        assert a not in {int(r[0]) for r in await rollup(state)}
        await db.fetch("UPDATE interaction SET subject = 'renamed' WHERE customer = {}", b)
        await assert_rollup_exact(state, "an update that changes no total")
        await db.fetch("DELETE FROM interaction WHERE customer = {} AND amount IS NULL", b)
        await assert_rollup_exact(state, "a delete")
        await db.fetch("DELETE FROM interaction")
        await assert_rollup_exact(state, "deleting everything")
        assert await rollup(state) == []

    asyncio.run(with_state(settings_for(database_url), work))


async def all_facts(state: AppState, scope: AnalyticsScope) -> dict[int, dict[str, Any]]:
    rows = await facts_ctes(scope).add(" SELECT * FROM scored").fetch(state.db)
    return {r["id"]: {k: v for k, v in shape(r).items() if k != "signals"} for r in rows}


def test_rollup_and_interactions_give_the_same_facts(database_url: str) -> None:
    """On the demo data the facts come from the rollup; one interaction dated
    next year (outside the period, which ends now) makes the same query read
    the interactions instead, and every customer's facts stay the same."""

    async def work(state: AppState) -> None:
        await seed_demo(state.db, state.catalog, customers=300)
        await assert_rollup_exact(state, "the demo seed")
        scope = AnalyticsScope.create(state.db, queries.CustomerQuery())
        assert await covers_everything(state, scope)
        from_rollup = await all_facts(state, scope)
        some = next(iter(from_rollup))
        await writes.insert(state.db, "interaction", {
            "customer": some, "channel": "EMAIL", "direction": "OUTBOUND", "subject": "later",
            "occurred_at": datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=365),
            "amount": 1000,
        })  # fmt: skip
        assert not await covers_everything(state, scope)
        from_interactions = await all_facts(state, scope)
        assert len(from_rollup) == 300
        assert sum(f["interactions"] for f in from_rollup.values()) > 1000
        for pk, facts in from_rollup.items():
            assert from_interactions[pk] == facts, pk

    asyncio.run(with_state(settings_for(database_url), work))
