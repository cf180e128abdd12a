"""The event dispatcher retries a failing handler after growing pauses
(crmgraph.events.Backoff) and gives an event up only after its last attempt,
on both engines. Time is the dispatcher's clock, moved by the test: each pass
runs at a chosen "now" and the pauses are read from the stored
``next_attempt_at``, so nothing here waits for a retry to fall due."""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from crmgraph.db import queries, writes
from crmgraph.events import DEFAULT_BACKOFF, Backoff, EventDispatcher
from crmgraph.registry import make_plugin_manager
from crmgraph.settings import Settings
from crmgraph.testing import settings_for
from crmgraph.webhooks import backoff as webhook_backoff
from tests.operations_world import (
    World,
    counting,
    world_fixture,  # noqa: F401  (the world fixture)
)
from tests.plugins_for_tests import flaky_handler
from tests.test_event_batches import Clock, Outbox

PLUGIN = "tests.plugins_for_tests.flaky_handler"
SECOND = datetime.timedelta(seconds=1)


@dataclass
class Stepped(Outbox):
    """test_event_batches' outbox whose dispatcher passes run at the test's
    clock, and what each failure stored: event id -> [(the clock as it
    failed, next_attempt_at)]."""

    failures: dict[int, list[tuple[datetime.datetime, datetime.datetime | None]]]

    async def rows(self) -> list[dict[str, Any]]:
        rows = await self.world.db.fetch(
            "SELECT id, customer, attempts, delivered_at, last_error, next_attempt_at "
            "FROM event ORDER BY id"
        )
        for row in rows:
            row["next_attempt_at"] = queries.read_timestamp(row["next_attempt_at"])
        return rows

    async def run(self, at: datetime.datetime) -> int:
        """A pass at ``at``; records each failure it stored."""
        self.clock.now = at
        before = {r["id"]: r["attempts"] for r in await self.rows()}
        delivered = await self.dispatcher.deliver_pending()
        for row in await self.rows():
            if row["attempts"] > before[row["id"]] and row["delivered_at"] is None:
                self.failures.setdefault(row["id"], []).append((at, row["next_attempt_at"]))
        return delivered

    async def next_due(self) -> datetime.datetime | None:
        due = [r["next_attempt_at"] for r in await self.rows() if r["next_attempt_at"]]
        return min(due) if due else None


@pytest.fixture
async def make(world: World, database_url: str) -> Callable[..., Stepped]:
    """Builds the dispatcher under test, with its backoff and poll interval."""
    flaky_handler.reset()
    admin = await world.actor("admin")
    pm = make_plugin_manager(settings_for(database_url, plugins=(PLUGIN,)))

    def build(backoff: Backoff, poll: float = 1.0) -> Stepped:
        clock = Clock(writes.now())
        dispatcher = EventDispatcher(world.db, pm, poll, backoff=backoff, clock=clock)
        return Stepped(world, admin, dispatcher, clock, {})

    return build


def pauses(failures: list[tuple[datetime.datetime, datetime.datetime | None]]) -> list[float]:
    return [(due - at).total_seconds() for at, due in failures if due is not None]


def test_the_policy_doubles_jitters_down_and_is_the_webhooks_one() -> None:
    policy = Backoff(2.0, 16.0, 6, draw=lambda: 1.0)
    assert [policy.ceiling(n) for n in range(1, 7)] == [2, 4, 8, 16, 16, 16]
    assert [policy.pause(n) for n in (1, 4)] == [1.6, 12.8]  # at most a fifth early
    assert Backoff(2.0, 16.0, 6, draw=lambda: 0.0).pause(3) == 8
    assert not policy.exhausted(5) and policy.exhausted(6)
    assert policy.span() == 2 + 4 + 8 + 16 + 16
    assert policy.ceiling(5000) == 16  # no float overflow however many tries
    # the defaults retry for hours, not seconds, before an event is given up
    assert 2 * 3600 < DEFAULT_BACKOFF.span() < 6 * 3600
    assert Backoff.for_events(Settings.model_construct()) == DEFAULT_BACKOFF
    settings = Settings(webhook_backoff_seconds=10, webhook_backoff_max_seconds=60)
    assert webhook_backoff(settings) == Backoff(10, 60, settings.webhook_max_attempts)


async def test_a_failing_handler_gets_every_event_in_order_after_growing_pauses(
    make: Callable[..., Stepped],
) -> None:
    outbox = make(Backoff(2.0, 60.0, 8, draw=random.Random(7).random))
    flaky_handler.reset(failing_attempts=3)
    ada, grace = await outbox.customers("Ada", "Grace")
    await outbox.log([ada, grace], 3)  # 4 events each, interleaved
    at = outbox.clock.now
    for _ in range(60):
        await outbox.run(at)
        due = await outbox.next_due()
        if due is None:
            break
        calls = len(flaky_handler.calls)
        # a pass just before the next retry hands nothing out
        assert await outbox.run(due - datetime.timedelta(milliseconds=1)) == 0
        assert len(flaky_handler.calls) == calls
        at = due
    rows = await outbox.rows()
    assert all(r["delivered_at"] and r["attempts"] == 4 for r in rows)
    for customer in (ada, grace):
        tried = [c.event for c in flaky_handler.calls if c.customer == customer]
        assert tried == sorted(tried)  # never a later event before an earlier one
        delivered = [
            c.event for c in flaky_handler.calls if c.customer == customer and not c.failed
        ]
        assert delivered == [r["id"] for r in rows if r["customer"] == customer]
    for row in rows:
        waited = pauses(outbox.failures[row["id"]])
        assert len(waited) == 3
        for tries, pause in enumerate(waited, start=1):
            assert 0.8 * 2.0 * 2 ** (tries - 1) <= pause <= 2.0 * 2 ** (tries - 1)
        assert waited == sorted(waited)


async def test_an_event_is_given_up_only_after_its_last_attempt(
    make: Callable[..., Stepped],
) -> None:
    outbox = make(Backoff(2.0, 16.0, 5))
    flaky_handler.down.set()
    (ada,) = await outbox.customers("Ada")
    await outbox.log([ada], 2)
    first, *later = [r["id"] for r in await outbox.rows()]
    start = at = outbox.clock.now
    for tries in range(1, 6):
        await outbox.run(at)
        row = (await outbox.rows())[0]
        assert (row["attempts"], row["delivered_at"]) == (tries, None)
        assert "downstream system unavailable" in row["last_error"]
        if tries < 5:  # not given up: due again
            assert row["next_attempt_at"] is not None
            at = row["next_attempt_at"]
    assert row["next_attempt_at"] is None  # given up: never due again
    assert 0.8 * outbox.dispatcher.backoff.span() <= (at - start).total_seconds()
    assert (at - start).total_seconds() <= outbox.dispatcher.backoff.span()
    assert {c.event for c in flaky_handler.calls} == {first}  # the later ones waited

    flaky_handler.down.clear()
    assert await outbox.run(at + 100 * 3600 * SECOND) == 2  # it holds nothing back any more
    assert [c.event for c in flaky_handler.calls if not c.failed] == later
    assert len(flaky_handler.calls_of(first)) == 5  # and is not tried again


async def test_a_customer_waiting_for_a_retry_holds_back_only_its_own_events(
    make: Callable[..., Stepped],
) -> None:
    outbox = make(Backoff(30.0, 600.0, 5), poll=60.0)
    (ada,) = await outbox.customers("Ada")
    flaky_handler.failing.add(ada)
    now = outbox.clock.now
    await outbox.run(now)
    # written while Ada's first event waits for its retry, as by later commits
    (grace,) = await outbox.customers("Grace")
    await outbox.log([ada, grace], 1)
    assert await outbox.run(now + SECOND) == 2  # Grace's two, at once
    assert [c.customer for c in flaky_handler.calls] == [ada, grace, grace]
    ada_rows = [r for r in await outbox.rows() if r["customer"] == ada]
    assert [r["attempts"] for r in ada_rows] == [1, 0]  # her later event was not read

    # the loop sleeps until the retry is due (at most the poll interval)
    assert 23 <= await outbox.dispatcher.pause() <= 29
    outbox.dispatcher.poll_seconds = 5.0
    assert await outbox.dispatcher.pause() == 5.0

    flaky_handler.failing.clear()
    due = ada_rows[0]["next_attempt_at"]
    assert await outbox.run(due) == 2
    assert [c.event for c in flaky_handler.calls if c.customer == ada][1:] == [
        r["id"] for r in ada_rows
    ]
    assert await outbox.dispatcher.pause() == 5.0  # no retry pending any more
    with counting() as idle:
        assert await outbox.dispatcher.pause() == 5.0
    assert idle.count == 0  # and no read to find that out again
