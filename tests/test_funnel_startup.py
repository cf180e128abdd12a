"""The funnel's phase columns recomputed at start-up off the start-up path
(crmgraph.plugins.analytics hands it to the core's crmgraph.startup_work): a
server whose stored columns are not its catalog's starts and answers requests
while the recomputation runs, names it in ``/readyz`` meanwhile; the funnel
waits for it and answers from the columns recomputed. On PostgreSQL the recomputation is held back by a lock another
connection holds, so "meanwhile" is a state the test sees, not a race; on
SQLite the funnel after start-up is checked. Both engines."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from crmgraph.analytics import funnel
from crmgraph.app import with_state
from crmgraph.db import stays
from crmgraph.testing import live_server, settings_for
from tests.helpers import create_customer

MOVE = """mutation($input: TransitionCustomerInput!) { transitionCustomer(input: $input) {
  customer { version } userErrors { message } } }"""
STORED = "SELECT phase_no FROM stage_phase WHERE kind = 'client' AND stage = 'engaged'"
FUNNEL = "{ analytics { funnel { phases { phase entered advanced } } } }"
STALE = "UPDATE stage_phase SET phase_no = 4 WHERE kind = 'client' AND stage = 'engaged'"


def walk_a_client(settings: Any) -> dict[str, Any]:
    """A client moved along its lifecycle; the funnel's phases as they are."""
    with live_server(settings) as server:
        customer = create_customer(server, name="Walker", kind="CLIENT")
        version = customer["version"]
        for to in ("engaged", "negotiating"):
            moved = server.gql(
                MOVE, {"input": {"id": customer["id"], "toStage": to, "expectedVersion": version}}
            )["transitionCustomer"]
            assert moved["userErrors"] == []
            version = moved["customer"]["version"]
        return server.gql(FUNNEL)["analytics"]["funnel"]


async def make_stale(state: Any) -> None:
    """``stage_phase`` (and the columns) as after a plugin changed the catalog."""
    await state.db.fetch(STALE)
    await stays.record_phases(state.db)


async def is_current(state: Any) -> bool:
    return await stays.stored_stage_phases(state.db) == funnel.stage_phases(state.catalog)


def test_start_up_recomputes_in_the_background(database_url: str) -> None:
    settings = settings_for(database_url)
    expected = walk_a_client(settings)
    asyncio.run(with_state(settings, make_stale))
    assert not asyncio.run(with_state(settings, is_current))
    if settings.is_sqlite:
        with live_server(settings) as server:
            assert server.gql(FUNNEL)["analytics"]["funnel"] == expected
        assert asyncio.run(with_state(settings, is_current))
        return

    async def hold() -> asyncpg.Connection:
        # SHARE conflicts with the recomputation's EXCLUSIVE lock, not with reads
        conn = await asyncpg.connect(database_url)
        await conn.execute("BEGIN; LOCK TABLE stage_phase IN SHARE MODE")
        return conn

    loop = asyncio.new_event_loop()
    try:
        holder = loop.run_until_complete(hold())
        with live_server(settings) as server:
            # started, and answering, while the recomputation waits for the lock
            listed = server.gql("{ customers(first: 5) { totalCount } }")
            assert listed["customers"]["totalCount"] == 1
            ready = httpx.get(f"{server.url}/readyz", timeout=30)
            assert (ready.status_code, ready.json()["startupWork"]) == (200, ["funnel phases"])
            stored = loop.run_until_complete(holder.fetchval(STORED))
            assert stored == 4  # not recomputed yet
            loop.run_until_complete(holder.execute("COMMIT"))
            assert server.gql(FUNNEL)["analytics"]["funnel"] == expected
            server.run(lambda state: state.startup_work.finished())
            assert "startupWork" not in httpx.get(f"{server.url}/readyz", timeout=30).json()
        loop.run_until_complete(holder.close())
    finally:
        loop.close()
    assert asyncio.run(with_state(settings, is_current))


def test_only_the_changed_types_are_recomputed() -> None:
    """``stays.changed_kinds``: which types' customers a new catalog recomputes."""
    d = stays.DERIVATION
    stored = {("client", "engaged", 1, 1, 0, d), ("prospect", "new", 1, 1, 0, d)}
    assert stays.changed_kinds(set(), stored) is None  # nothing stored: everything
    older = {(*row[:-1], d - 1) for row in stored}
    assert stays.changed_kinds(older, stored) is None  # another derivation: everything
    assert stays.changed_kinds(stored, stored) == set()
    moved = {("client", "engaged", 4, 4, 0, d), ("prospect", "new", 1, 1, 0, d)}
    assert stays.changed_kinds(stored, moved) == {"client"}
    added = {*stored, ("guarantor", "new", 1, 1, 0, d)}
    assert stays.changed_kinds(stored, added) == {"guarantor"}
    assert stays.changed_kinds(added, stored) == {"guarantor"}  # a type gone
