"""A create and a delete of similar customers at once do not deadlock
(PostgreSQL).

createCustomer takes its match keys' advisory locks, finds a similar customer
and inserts their ``duplicate_pair`` row, whose foreign key share-locks that
customer's row (FOR KEY SHARE). deleteCustomer of the similar customer holds
its row's party lock and then waits for the same match keys' locks. When the
party lock was FOR UPDATE, which conflicts with FOR KEY SHARE, each waited for
the other: "deadlock detected", and after four tries a VERSION_CONFLICT. A
party lock is FOR NO KEY UPDATE (crmgraph.db.writes.lock_parties): writers of
one customer still queue behind each other, and a row merely referenced by a
new pair is not waited for, so the advisory locks are the only ones a
screening write waits for while holding others.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db import match_keys, writes
from crmgraph.db.bulk import insert_rows
from crmgraph.db.engine import Database
from crmgraph.db.match_score import Probe
from crmgraph.testing import settings_for
from tests.test_duplicates import stored_and_recomputed
from tests.test_pairs_crowded import customer

TWINS = {"name": "Dana Whitfield", "email": "dana@w.example"}


async def create(db: Database, fields: dict[str, Any], started: list[int] | None = None) -> int:
    """A customer written as createCustomer writes it: the row, then its keys
    and pairs (``started`` receives the backend's pid first)."""
    async with db.transaction():
        if started is not None:
            started.append((await db.fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"])
        (pk,) = await insert_rows(db, "customer", [customer(fields)])
        probe = Probe(name=fields["name"], email=fields.get("email"), kind="client")
        await match_keys.insert_match_keys(db, {pk: probe})
        return pk


async def waits_or_is_done(db: Database, task: asyncio.Task[Any], pid: list[int]) -> None:
    """Until ``task`` has finished or its backend waits for a lock (pg_locks);
    polled, since the wait happens inside PostgreSQL."""
    for _ in range(1000):
        if task.done():
            return
        if pid:
            waiting = await db.fetch(
                "SELECT pid FROM pg_locks WHERE pid = {} AND NOT granted", pid[0]
            )
            if waiting:
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the create neither finished nor waited")


@pytest.mark.parametrize("engine", ["postgres"])
def test_a_create_and_a_delete_of_similar_customers_do_not_deadlock(
    engine: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    from tests.conftest import fresh_database

    async def run(state: AppState) -> None:
        db = state.db
        similar = await create(db, TWINS)
        locked, started, pid = asyncio.Event(), asyncio.Event(), []
        creating: list[asyncio.Task[int]] = []

        async def delete() -> None:
            # deleteCustomer: the party lock and the row, then the keys and pairs
            async with db.transaction():
                await writes.set_deleted(db, similar, True, None)
                locked.set()
                await started.wait()
                await waits_or_is_done(db, creating[0], pid)
                await match_keys.refresh_match_keys(db, [similar])

        deleting = asyncio.create_task(delete())
        await locked.wait()
        creating.append(asyncio.create_task(create(db, dict(TWINS, name="Dana Whitfeld"), pid)))
        started.set()
        results = await asyncio.gather(creating[0], deleting, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == [], errors
        stored, recomputed = await stored_and_recomputed(db)
        assert stored == recomputed == {}  # the similar customer is deleted: no pair

    with fresh_database(engine, request, tmp_path / "unused.sqlite") as url:
        asyncio.run(with_state(settings_for(url), run))
