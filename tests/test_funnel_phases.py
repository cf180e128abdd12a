"""The funnel's stored phase columns (``crmgraph.db.stays.PHASE_COLUMNS``): the
customers counted one by one (a phase entered in two types, merged histories)
counted once per phase, the columns kept by every write that changes a history
equal to a recomputation, and recomputed when the catalog's stages change. On
both engines.

As of 2026-07-01 00:00 UTC:
- X: prospect new 01-10, converted 02-01 into a client: interest 02-01, engaged
  03-01. ENGAGEMENT entered in both types: advanced through the prospect's
  conversion, still there as a client.
- Y: client interest 01-05, negotiating 02-01, churned 03-01.
- M1, M2: clients in interest since 01-05 and 01-06; M2 is merged into M1 (now,
  after the period's end, so at its end both stays are open).
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from crmgraph.analytics import funnel
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import with_state
from crmgraph.db import queries, stays, writes
from crmgraph.dedupe import merge_rows
from crmgraph.testing import live_server, settings_for
from tests.helpers import create_customer, insert_customer, log_interaction

AS_OF = datetime.datetime(2026, 7, 1, tzinfo=datetime.UTC)


def at(day: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(f"2026-{day}T00:00:00+00:00")


HISTORY = {
    "X": [
        ("prospect", "new", "01-10"),
        ("prospect", "converted", "02-01"),
        ("client", "interest", "02-01"),
        ("client", "engaged", "03-01"),
    ],
    "Y": [
        ("client", "interest", "01-05"),
        ("client", "negotiating", "02-01"),
        ("client", "churned", "03-01"),
    ],
    "M1": [("client", "interest", "01-05")],
    "M2": [("client", "interest", "01-06")],
}


def phase_counts(result: funnel.Funnel) -> dict[str, tuple[int, int, int, int]]:
    """(entered, advanced, dropped off, current) per phase that has any."""
    return {
        p.phase: (p.entered, p.advanced, p.dropped_off, p.current)
        for p in result.phases
        if p.entered or p.current
    }


def stage(result: funnel.Funnel, kind: str, key: str) -> funnel.StageFunnel:
    stages = next(k.stages for k in result.kinds if k.kind == kind)
    return next(s for s in stages if s.stage == key)


async def phase_columns(db: Any) -> list[dict[str, Any]]:
    columns = ", ".join(stays.PHASE_COLUMNS)
    rows = await db.fetch(f"SELECT id, {columns} FROM stage_change ORDER BY id")
    return [
        {k: queries.read_timestamp(v) if k.endswith("_at") else v for k, v in row.items()}
        for row in rows
    ]


def test_customers_counted_once_per_phase(database_url: str) -> None:
    async def work(state: Any) -> None:
        db, catalog = state.db, state.catalog
        ids = {}
        for name, moves in HISTORY.items():
            entered = [(kind, key, at(day)) for kind, key, day in moves]
            ids[name] = await insert_customer(state, name, entered[0][2], entered)
        scope = AnalyticsScope.create(db, queries.CustomerQuery(), None, AS_OF)
        before = await funnel.lifecycle_funnel(db, catalog, scope)
        # X's ENGAGEMENT entries are in two types: counted one by one
        irregular = await db.fetch(
            "SELECT customer, to_stage FROM stage_change WHERE irregular = 1 ORDER BY id"
        )
        assert [(r["customer"], r["to_stage"]) for r in irregular] == [
            (ids["X"], "new"),
            (ids["X"], "interest"),
            (ids["X"], "engaged"),
        ]
        assert phase_counts(before) == {
            # X (advanced by converting; still there as a client), Y (advanced), M1, M2
            "ENGAGEMENT": (4, 2, 0, 3),
            "ACQUISITION": (1, 0, 1, 0),  # Y, then churned
            # X's conversion and Y's churn; Y is there now, X is a client
            "ENDED": (2, 0, 0, 1),
        }

        async with db.transaction():
            moved = await merge_rows.move_to_survivor(db, ids["M1"], ids["M2"], writes.now())
        merged = await funnel.lifecycle_funnel(db, catalog, scope)
        # M1 holds two stays in interest, both open at the period's end: two
        # entries in the stage, one customer in the phase
        assert (
            stage(merged, "client", "interest").entered,
            stage(merged, "client", "interest").current,
        ) == (4, 2)
        assert phase_counts(merged)["ENGAGEMENT"] == (3, 2, 0, 2)
        assert await phase_columns(db) == await recomputed(db)

        async with db.transaction():
            await merge_rows.move_back(db, moved, ids["M2"])
        assert phase_counts(await funnel.lifecycle_funnel(db, catalog, scope)) == phase_counts(
            before
        )
        assert await phase_columns(db) == await recomputed(db)

        # from 02-01: X's ENGAGEMENT entry is the client's (the prospect's was
        # earlier), which has not advanced
        since = AnalyticsScope.create(db, queries.CustomerQuery(), at("02-01"), AS_OF)
        assert phase_counts(await funnel.lifecycle_funnel(db, catalog, since)) == {
            "ENGAGEMENT": (1, 0, 0, 3),
            "ACQUISITION": (1, 0, 1, 0),
            "ENDED": (2, 0, 0, 1),
        }

    asyncio.run(with_state(settings_for(database_url), work))


async def recomputed(db: Any) -> list[dict[str, Any]]:
    """The phase columns as computed afresh from the whole history (rolled back)."""
    try:
        async with db.transaction():
            await stays.record_phases(db)
            rows = await phase_columns(db)
            raise Rollback(rows)
    except Rollback as done:
        return done.rows


class Rollback(Exception):
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows


MOVE = """mutation($input: TransitionCustomerInput!) { transitionCustomer(input: $input) {
  customer { version } userErrors { message } } }"""


def test_writes_keep_the_columns_and_a_new_catalog_recomputes_them(database_url: str) -> None:
    settings = settings_for(database_url)
    with live_server(settings) as server:

        async def catalog_known(state: Any) -> None:
            await funnel.current_stage_phases(state.db, state.catalog)

        asyncio.run(with_state(settings, catalog_known))

        def walk(kind: str, stages: list[str]) -> None:
            customer = create_customer(server, name=f"Walker {kind}", kind=kind)
            version = customer["version"]
            for to in stages:
                if to in ("active", "qualified"):
                    log_interaction(server, customer["id"], subject="order", amount="10.00")
                moved = server.gql(
                    MOVE,
                    {"input": {"id": customer["id"], "toStage": to, "expectedVersion": version}},
                )["transitionCustomer"]
                assert moved["userErrors"] == [], (kind, to, moved)
                version = moved["customer"]["version"]

        walk(
            "CLIENT",
            ["engaged", "negotiating", "active", "at_risk", "active", "at_risk", "churned"],
        )
        walk("PROSPECT", ["contacted", "qualified", "converted"])
        walk("PROSPECT", ["contacted", "disqualified", "contacted"])

    async def check(state: Any) -> None:
        db = state.db
        kept = await phase_columns(db)
        assert kept == await recomputed(db)
        # the walks advanced, exited and converted (the conversion is irregular
        # only where both types share a phase)
        assert sum(1 for r in kept if r["advanced_at"] is not None) >= 5
        assert sum(1 for r in kept if r["exited_at"] is not None) >= 3
        assert sum(1 for r in kept if r["phase_prev_at"] is not None) >= 3

        # a catalog whose stages differ from the stored ones (a plugin changed
        # them): the next funnel recomputes every row first
        await db.fetch(
            "UPDATE stage_phase SET phase_no = 4 WHERE kind = 'client' AND stage = 'engaged'"
        )
        await stays.record_phases(db)
        assert await phase_columns(db) != kept
        await funnel.lifecycle_funnel(
            db, state.catalog, AnalyticsScope.create(db, queries.CustomerQuery())
        )
        assert await stays.stored_stage_phases(db) == funnel.stage_phases(state.catalog)
        assert await phase_columns(db) == kept

    asyncio.run(with_state(settings, check))
