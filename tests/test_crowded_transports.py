"""A crowded e-mail (crmgraph.db.match_crowding) through the ways in that
tests/test_crowded_identifiers.py does not take: creates over the WebSocket
transport, an import on the command line, and two writers taking one e-mail
block across the limit at once (PostgreSQL). Each ends with the stored pairs
what a computation from scratch gives, and the second writer of a block
waits for the first's locks rather than missing its key. A contact naming
its customer by a crowded e-mail is AMBIGUOUS with a message of bounded
length, and its customer's ID still picks one of the crowd."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db import match_crowding, match_keys
from crmgraph.db.engine import Database
from crmgraph.dedupe.matching import Probe
from crmgraph.ids import encode_id
from crmgraph.testing import live_server, settings_for
from crmgraph.transfer.refs import AMBIGUOUS_LISTED
from tests.test_crowded_identifiers import SHARED, keyed, pair_count, unique_name
from tests.test_duplicates import CREATE, pairs_as_recomputed, stored_and_recomputed
from tests.test_export_roundtrip import crmgraph_cli
from tests.test_import_export import csv_bytes
from tests.test_import_related import outcome
from tests.test_pairs_crowded import add, customer
from tests.test_subscriptions import graphql_ws

LIMIT = 3


def test_websocket_creates_take_an_email_over_the_limit(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five createCustomer mutations over graphql-transport-ws share one
    e-mail: each lists the holders before it as duplicates until the block
    is crowded (the fourth lists three, the fifth none), and the pairs the
    first three stored are gone once the fourth takes the block over."""
    monkeypatch.setattr(match_crowding, "BLOCK_LIMIT", LIMIT)
    settings = settings_for(database_url)
    listed = []
    with live_server(settings) as server, graphql_ws(server.url) as ws:
        ws.acknowledged()
        for n in range(LIMIT + 2):
            fields = {"kind": "CLIENT", "name": unique_name(n), "email": SHARED}
            ws.send(
                {
                    "id": f"create-{n}",
                    "type": "subscribe",
                    "payload": {"query": CREATE, "variables": {"input": fields}},
                }
            )
            message = ws.receive()
            assert message["type"] == "next", message
            assert ws.receive() == {"id": f"create-{n}", "type": "complete"}
            answer = message["payload"]["data"]["createCustomer"]
            assert answer["userErrors"] == []
            listed.append(len(answer["duplicates"]))
            if n == LIMIT - 1:
                assert len(pairs_as_recomputed(settings, "three hold it")) == 3
    assert listed == [0, 1, 2, 3, 0]
    assert pairs_as_recomputed(settings, "five hold it: crowded") == {}


def test_command_line_imports_take_an_email_over_the_limit(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``crmgraph import customers`` of rows holding an e-mail that two
    customers hold (one pair): five written anyway (``--on-duplicate
    create``) take its block over the limit and the pair goes; then two more
    in the default ``skip`` mode repeat nobody through it, now crowded, and
    are created too."""
    monkeypatch.setattr(match_crowding, "BLOCK_LIMIT", LIMIT)
    settings = settings_for(database_url)

    async def seed(state: AppState) -> int:
        await keyed(state.db, [customer({"name": unique_name(n), "email": SHARED}) for n in (0, 1)])
        return await pair_count(state.db)

    def imported(names: range, *flags: str) -> str:
        source = tmp_path / f"crowd-{names.start}.csv"
        rows = [["name", "email", "kind"]]
        source.write_bytes(
            csv_bytes(rows + [[unique_name(n), SHARED.upper(), "client"] for n in names])
        )
        done = crmgraph_cli(database_url, "import", "customers", str(source), "--quiet", *flags)
        assert done.returncode == 0, done.stderr
        return str(done.stdout)

    assert asyncio.run(with_state(settings, seed)) == 1
    assert "created 5," in imported(range(10, 15), "--on-duplicate", "create")
    assert pairs_as_recomputed(settings, "seven hold it: crowded") == {}
    assert "created 2, merged 0, skipped as duplicate 0" in imported(range(20, 22))
    assert pairs_as_recomputed(settings, "nine hold it") == {}


async def create_in_own_transaction(
    db: Database, row: dict[str, Any], hold: tuple[asyncio.Event, asyncio.Event] | None = None
) -> None:
    """A customer written as createCustomer writes it: the row, its keys and
    pairs. ``hold`` (holding, release): once written, set the first and keep
    the transaction (and its locks) open until the second is set."""
    async with db.transaction():
        await db.fetch("SET LOCAL lock_timeout = '30s'")
        (pk,) = await add(db, [row])
        await match_keys.insert_match_keys(db, {pk: Probe.from_row(row)})
        if hold is not None:
            hold[0].set()
            await hold[1].wait()


async def delete_in_own_transaction(db: Database, pk: int) -> None:
    async with db.transaction():
        await db.fetch("SET LOCAL lock_timeout = '30s'")
        await db.fetch("UPDATE customer SET deleted_at = updated_at WHERE id = {}", pk)
        await match_keys.refresh_match_keys(db, [pk])


async def lock_waiters(db: Database) -> int:
    rows = await db.fetch(
        "SELECT COUNT(*) AS n FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return int(rows[0]["n"])


async def until_waiting(db: Database) -> None:
    """Until a backend of this database waits for a lock (bounded)."""
    for _ in range(3000):
        if await lock_waiters(db):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the second writer never waited for the first's locks")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("second", ["create", "delete"])
def test_two_writers_take_one_email_block_across_the_limit_at_once(
    database_url: str, second: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create joins a block at the limit (taking it over) and holds its
    transaction open; meanwhile a second writer of the same e-mail, a create
    (four to five: crowded still) or a delete of a holder (back to the limit:
    roomy again), waits for the first's lock on the e-mail; once the first
    commits, the second counts its key and the pairs come out as from scratch."""
    monkeypatch.setattr(match_crowding, "BLOCK_LIMIT", LIMIT)

    async def run(state: AppState) -> tuple[Any, Any, int]:
        db = state.db
        held = await keyed(
            db, [customer({"name": unique_name(n), "email": SHARED}) for n in range(LIMIT)]
        )
        assert await pair_count(db) == 3
        holding, release = asyncio.Event(), asyncio.Event()

        first = customer({"name": unique_name(10), "email": SHARED})
        opened = asyncio.create_task(create_in_own_transaction(db, first, (holding, release)))
        await holding.wait()
        if second == "create":
            row = customer({"name": unique_name(11), "email": SHARED})
            writer = asyncio.create_task(create_in_own_transaction(db, row))
        else:
            writer = asyncio.create_task(delete_in_own_transaction(db, held[0]))
        await until_waiting(db)
        assert not writer.done()
        release.set()
        await asyncio.gather(opened, writer)
        stored, recomputed = await stored_and_recomputed(db)
        return stored, recomputed, await pair_count(db)

    stored, recomputed, pairs = asyncio.run(with_state(settings_for(database_url), run))
    assert stored == recomputed
    assert pairs == (0 if second == "create" else 3)


def test_a_contact_naming_its_customer_by_a_crowded_email(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight customers hold an e-mail (the limit lowered to three): a contact
    row naming its customer by it alone is AMBIGUOUS, its message naming the
    first five by ID and counting the three others (it named every holder, a
    thousand IDs for an e-mail a thousand share); with a holder's ID as well,
    the row goes to that one (every holder is read to know the ID fits)."""
    monkeypatch.setattr(match_crowding, "BLOCK_LIMIT", LIMIT)
    holders = LIMIT + 5

    async def work(state: AppState) -> tuple[list[int], dict[str, Any]]:
        rows = [customer({"name": unique_name(n), "email": SHARED}) for n in range(holders)]
        ids = await keyed(state.db, rows)
        picked = encode_id("Customer", ids[-1])
        found = await outcome(
            state,
            "contacts",
            [
                ["customer", "customer.email", "name"],
                ["", SHARED, "Which one"],
                [picked, SHARED.upper(), "Picked"],
            ],
            "SELECT k.name, k.customer FROM contact k ORDER BY k.id",
        )
        return ids, found

    ids, found = asyncio.run(with_state(settings_for(database_url), work))
    assert found["reasons"] == {2: [("customer.email", "AMBIGUOUS")]}
    (message,) = found["messages"][2]
    named = [encode_id("Customer", pk) for pk in sorted(ids)]
    assert message.startswith(f"{holders} customers have e-mail")
    assert all(gid in message for gid in named[:AMBIGUOUS_LISTED])
    assert not any(gid in message for gid in named[AMBIGUOUS_LISTED:])
    assert f"and {holders - AMBIGUOUS_LISTED} more" in message
    assert found["written"] == [("Picked", ids[-1])]
