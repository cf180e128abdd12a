"""Edits of customers in one crowded name block do not queue behind each
other (PostgreSQL): nobody is paired through a crowded block, so a write that
neither joins nor leaves it locks it shared (crmgraph.db.match_keys); a small
block is still locked exclusively, and the stored pairs stay what a
computation from scratch gives."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db import match_crowding, match_keys
from crmgraph.db.engine import Database
from crmgraph.ids import decode_id
from crmgraph.testing import live_server, settings_for
from tests.test_duplicates import CREATE, stored_and_recomputed


async def edit(db: Database, pk: int, column: str, value: str, timeout: str = "10s") -> None:
    """An edit of one of a customer's columns as updateCustomer makes it: the
    row, then its keys and pairs."""
    async with db.transaction():
        await db.fetch(f"SET LOCAL lock_timeout = '{timeout}'")
        await db.fetch(f"UPDATE customer SET {column} = {{}} WHERE id = {{}}", value, pk)
        await match_keys.refresh_match_keys(db, [pk])


async def second_edit_while_first_is_open(
    db: Database,
    first: int,
    second: int,
    timeout: str,
    column: str = "email",
    values: tuple[str, str] = ("one@x.example", "two@x.example"),
) -> None:
    """Edit ``column`` of ``first`` and hold its transaction (and locks) open
    while ``second``'s is edited with ``timeout`` to wait for a lock."""
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with db.transaction():
            await db.fetch(f"UPDATE customer SET {column} = {{}} WHERE id = {{}}", values[0], first)
            await match_keys.refresh_match_keys(db, [first])
            holding.set()
            await release.wait()

    task = asyncio.create_task(hold())
    try:
        await holding.wait()
        await edit(db, second, column, values[1], timeout)
    finally:
        release.set()
        await task


@pytest.mark.parametrize("engine", ["postgres"])
def test_edits_in_a_crowded_block_do_not_wait_for_each_other(
    engine: str, request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import fresh_database

    monkeypatch.setattr(match_crowding, "BLOCK_LIMIT", 3)
    with fresh_database(engine, request, tmp_path / "unused.sqlite") as url:
        settings = settings_for(url)
        with live_server(settings) as server:

            def create(name: str) -> int:
                made = server.gql(CREATE, {"input": {"kind": "CLIENT", "name": name}})
                assert made["createCustomer"]["userErrors"] == []
                return decode_id(made["createCustomer"]["customer"]["id"], "Customer")[1]

            crowd = [create("Ana Lopez") for _ in range(5)]  # over the limit of 3
            pair = [create("Zed Quorum") for _ in range(2)]  # a block of two

        async def run(state: AppState) -> None:
            # the crowded block: the second edit goes through while the first
            # transaction holds its locks (it would wait 10 s, then fail, if the
            # block were locked exclusively)
            await second_edit_while_first_is_open(state.db, crowd[0], crowd[1], "10s")
            # the small block is still exclusive: the second edit waits, and
            # gives up after its 200 ms lock timeout
            with pytest.raises(asyncpg.LockNotAvailableError):
                await second_edit_while_first_is_open(state.db, pair[0], pair[1], "200ms")
            stored, recomputed = await stored_and_recomputed(state.db)
            assert stored == recomputed

        asyncio.run(with_state(settings, run))
