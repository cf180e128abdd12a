"""The funnel from ``stage_flow`` (crmgraph.analytics.funnel_rollup) equals the
funnel from the history, on both engines: a conversion (a prospect's leftover
stay), a further role held and one ended, a deleted customer, a merged
history (irregular), periods starting mid-day, type filters; and the scopes
the rollup does not answer (a filter, a period ending in the past) read the
history. The triggers keep ``stage_flow`` as a fresh count makes it, and the
medians of a period starting before the history (from the ``l`` histogram
and the middle stays) are the history's, odd or even, the two middle stays
in one length day or two, of a period from the first entry or later (its
whole months from the monthly histogram, the rest from the history)."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from crmgraph.analytics import funnel, funnel_rollup
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import with_state
from crmgraph.db import queries, stage_flow, writes
from crmgraph.dedupe import merge_rows
from crmgraph.testing import LiveServer, settings_for
from tests.helpers import create_customer, insert_customer
from tests.test_funnel_phases import HISTORY, at

MORE = {
    "R": [("client", "interest", "01-07"), ("guarantor", "proposed", "01-08")],
    "E": [("client", "interest", "01-09"), ("guarantor", "proposed", "01-09")],
    "D": [("client", "interest", "01-04"), ("client", "negotiating", "01-20")],
}


def test_the_rollup_equals_the_history(database_url: str) -> None:
    async def work(state: Any) -> None:
        db, catalog = state.db, state.catalog
        await funnel.current_stage_phases(db, catalog)
        ids = {}
        for name, moves in {**HISTORY, **MORE}.items():
            entered = [(kind, key, at(day)) for kind, key, day in moves]
            ids[name] = await insert_customer(state, name, entered[0][2], entered)
        # R holds a further role, E ended its own; D is deleted
        for name, ended in (("R", None), ("E", at("02-10"))):
            await db.fetch(
                "UPDATE customer_role SET added_at = {}, ended_at = {} "
                "WHERE customer = {} AND kind = 'guarantor'",
                at("01-08"),
                ended,
                ids[name],
            )
        await db.fetch("UPDATE customer SET deleted_at = {} WHERE id = {}", at("04-01"), ids["D"])
        async with db.transaction():
            await merge_rows.move_to_survivor(db, ids["M1"], ids["M2"], writes.now())
        now = writes.now() + datetime.timedelta(seconds=1)
        every = queries.CustomerQuery()
        scopes = [
            (every, None, True),
            (
                queries.CustomerQuery(kinds=("client",)),
                at("01-06") + datetime.timedelta(hours=7),
                True,
            ),
            (queries.CustomerQuery(kinds=("prospect", "guarantor")), at("01-09"), True),
            (every, at("01-20") + datetime.timedelta(hours=3), True),
            (queries.CustomerQuery(owner_ids=(1,)), None, False),
            (queries.CustomerQuery(deleted="ALL"), None, False),
        ]
        for customers, starts, rolled in scopes:
            scope = AnalyticsScope.create(db, customers, starts, now)
            assert funnel_rollup.answerable(scope) == rolled
            assert await funnel_rollup.until_now(db, scope)
            rollup = await funnel.lifecycle_funnel(db, catalog, scope)
            history = await funnel.lifecycle_funnel(db, catalog, scope, rollup=False)
            assert rollup == history, (customers, starts)
            assert not rolled or any(s.entered for k in history.kinds for s in k.stages)
            if starts is None and rolled:
                assert await funnel_rollup.before_history(db, scope)
                assert any(s.median_days for k in history.kinds for s in k.stages)
        # a period ending before the merge's stay ends is not "until now"
        past = AnalyticsScope.create(db, every, None, at("07-01"))
        assert not await funnel_rollup.until_now(db, past)
        await kept_as_counted(db)

    asyncio.run(with_state(settings_for(database_url), work))


async def flow_sums(db: Any) -> set[tuple]:
    rows = await db.fetch(
        f"SELECT {stage_flow.DELTAS.key_list}, SUM(n) AS n FROM {stage_flow.TABLE} "
        f"GROUP BY {stage_flow.DELTAS.key_list} HAVING SUM(n) <> 0"
    )
    return {tuple(row.values()) for row in rows}


async def kept_as_counted(db: Any) -> None:
    """What the triggers kept equals a fresh count (``backfill``), lengths included."""
    kept = await flow_sums(db)
    assert {"l", "m", "n"} <= {row[4] for row in kept}
    assert any(row[3] == stage_flow.WHOLE for row in kept)
    async with db.transaction():
        for statement in stage_flow.backfill(db.is_sqlite):
            await db.fetch(statement)
    assert await flow_sums(db) == kept


HOURS_3 = datetime.timedelta(hours=3)
# client interest stays (days) per case, entered 13 days apart; medians from the history's percentile
LENGTHS = {
    "odd": [0.5, 1.25, 1.75, 4.0, 9.0],
    "even, two days": [1.2, 2.5, 3.75, 9.0],
    "even, one day": [2.1, 2.6, 2.3, 7.0, 0.4, 2.9],
}


def test_the_medians_from_the_histogram(database_url: str) -> None:
    async def work(state: Any) -> None:
        db, catalog = state.db, state.catalog
        await funnel.current_stage_phases(db, catalog)
        for case, lengths in LENGTHS.items():
            await db.fetch("DELETE FROM customer")
            for i, days in enumerate(lengths):
                start = at("01-02") + datetime.timedelta(days=13 * i, hours=i)
                moves = [
                    ("client", "interest", start),
                    ("client", "negotiating", start + datetime.timedelta(days=days)),
                ]
                await insert_customer(state, f"{case} {i}", start, moves)
            scope = AnalyticsScope.create(db, queries.CustomerQuery(kinds=("client",)))
            assert await funnel_rollup.before_history(db, scope)
            rollup = await funnel.lifecycle_funnel(db, catalog, scope)
            history = await funnel.lifecycle_funnel(db, catalog, scope, rollup=False)
            assert rollup == history, case
            interest = next(s for s in rollup.kinds[0].stages if s.stage == "interest")
            ordered = sorted(lengths)
            middle = (ordered[(len(lengths) - 1) // 2] + ordered[len(lengths) // 2]) / 2
            assert interest.median_days == round(middle, 2), case
            # a later period: the months it covers whole (m) and the rest of its first
            since = AnalyticsScope.create(db, scope.customers, at("01-20") + HOURS_3, scope.ends_at)
            assert not await funnel_rollup.before_history(db, since)
            later = await funnel.lifecycle_funnel(db, catalog, since)
            assert later == await funnel.lifecycle_funnel(db, catalog, since, rollup=False), case
            assert next(s for s in later.kinds[0].stages if s.stage == "interest").median_days
        await kept_as_counted(db)

    asyncio.run(with_state(settings_for(database_url), work))


async def counted_now(db: Any) -> set[tuple]:
    """``stage_flow``'s sums as a fresh count would make them (its SELECT)."""
    insert = stage_flow.backfill(db.is_sqlite)[1]
    rows = await db.fetch(insert[insert.index("SELECT") :])
    return {(*list(row.values())[:5], int(list(row.values())[5])) for row in rows}


def test_the_api_writes_keep_the_counts(server: LiveServer, database_url: str) -> None:
    """Through the API (on PostgreSQL a write transaction sends its statements
    together, crmgraph.db.write_batch): after each write the kept sums are a
    fresh count's."""
    from tests.test_role_analytics import DELETE, LINK, MOVE, role

    def same() -> None:
        async def check(state: Any) -> None:
            kept = {(*row[:5], int(row[5])) for row in await flow_sums(state.db)}
            assert kept == await counted_now(state.db)

        asyncio.run(with_state(settings_for(database_url), check))

    ana = create_customer(server, name="Ana Kept", client={"segment": "CONSUMER"})["id"]
    bo = create_customer(server, name="Bo Kept")["id"]
    same()
    version = role(
        server,
        "addRole",
        {"customerId": ana, "kind": "GUARANTOR", "expectedVersion": 1,
         "guarantor": {"guaranteedAmount": "5000"}},
    )  # fmt: skip
    same()
    link = {"fromId": ana, "toId": bo, "kind": "guarantees"}
    assert server.gql(LINK, {"input": link})["linkCustomers"]["userErrors"] == []
    moved = server.gql(
        MOVE,
        {"input": {"id": ana, "kind": "GUARANTOR", "toStage": "verified",
                   "expectedVersion": version}},
    )["transitionCustomer"]  # fmt: skip
    assert moved["userErrors"] == []
    same()
    version = moved["customer"]["version"]
    role(server, "endRole", {"customerId": ana, "kind": "GUARANTOR", "expectedVersion": version})
    same()
    moved = server.gql(MOVE, {"input": {"id": bo, "toStage": "engaged", "expectedVersion": 1}})
    assert moved["transitionCustomer"]["userErrors"] == []
    same()
    version = moved["transitionCustomer"]["customer"]["version"]
    deleted = server.gql(DELETE, {"id": bo, "version": version})["deleteCustomer"]
    assert deleted["userErrors"] == []
    same()
