"""Outbox readers deliver a pass of events with a fixed number of SQL
statements however many events it holds (counted, not timed), on both
engines: the event dispatcher (one read, one UPDATE marking every delivered
event; a failure recorded on its own event), the live publisher's claim, the
live subscribers' customer reads (one per delivered batch), the webhooks
fan-out and the writing of what a webhooks pass sent (its successes together,
each failure on its own)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from crmgraph.db import writes
from crmgraph.events import EventDispatcher
from crmgraph.live import LocalBroker, Publisher, Subscribers
from crmgraph.operations import interactions
from crmgraph.operations import webhooks as webhook_ops
from crmgraph.operations.actor import Actor
from crmgraph.registry import make_plugin_manager
from crmgraph.testing import settings_for
from crmgraph.webhooks import Outcome, WebhookDeliverer
from tests.operations_world import (
    World,
    counting,
    world_fixture,  # noqa: F401  (the world fixture)
)
from tests.plugins_for_tests import batch_handler
from tests.test_webhooks import Receiver

PLUGIN = "tests.plugins_for_tests.batch_handler"
MARK = "UPDATE event SET attempts = attempts + 1, delivered_at = "


class RoomyReceiver(Receiver):
    """The webhook tests' loopback receiver, listening with a backlog for a
    whole pass: a webhooks pass sends up to ``batch`` requests at once, and
    http.server's backlog of 5 resets some of 30 (ReadError, then retries)."""

    def __init__(self) -> None:
        super().__init__()
        handler = self.server.RequestHandlerClass
        self.close()
        self.server = RoomyServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/crm"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


class RoomyServer(ThreadingHTTPServer):
    request_queue_size = 128


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with contextlib.closing(RoomyReceiver()) as running:
        yield running


@dataclass
class Clock:
    """The dispatcher's "now", moved by the test: a retry falls due when the
    test says so, not after a wait."""

    now: datetime.datetime

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


@dataclass
class Outbox:
    world: World
    actor: Actor
    dispatcher: EventDispatcher
    clock: Clock

    async def customers(self, *names: str) -> list[int]:
        return [await self.world.customer(self.actor, name) for name in names]

    async def log(self, customers: list[int], rounds: int) -> None:
        """``rounds`` interactions for each customer, interleaved (one event each)."""
        for i in range(rounds):
            for customer in customers:
                new = interactions.NewInteraction(
                    customer, None, {"channel": "EMAIL", "direction": "INBOUND", "subject": f"#{i}"}
                )
                w = self.world
                await interactions.log_interaction(w.db, w.catalog, w.pm, self.actor, new)

    async def deliver(self) -> tuple[int, list[str]]:
        """One dispatcher pass: (events delivered, the statements it ran)."""
        with counting() as counter:
            delivered = await self.dispatcher.deliver_pending()
        return delivered, counter.statements

    async def rows(self) -> list[dict[str, Any]]:
        return await self.world.db.fetch(
            "SELECT id, customer, attempts, delivered_at, last_error FROM event ORDER BY id"
        )


@pytest.fixture
async def outbox(world: World, database_url: str) -> Outbox:
    batch_handler.reset()
    pm = make_plugin_manager(settings_for(database_url, plugins=(PLUGIN,)))
    clock = Clock(writes.now())
    dispatcher = EventDispatcher(world.db, pm, clock=clock)
    return Outbox(world, await world.actor("admin"), dispatcher, clock)


async def test_a_pass_marks_every_delivered_event_with_one_statement(outbox: Outbox) -> None:
    first = await outbox.customers("Ada")
    await outbox.log(first, 2)
    few, few_statements = await outbox.deliver()

    more = await outbox.customers("Grace", "Edsger", "Barbara")
    await outbox.log(more, 10)  # 30 interactions, 33 events with the customers'
    many, many_statements = await outbox.deliver()

    assert (few, many) == (3, 33)
    # a read and one UPDATE marking them all, for 3 events as for 33
    assert len(few_statements) == len(many_statements) == 2, many_statements
    assert many_statements[0].startswith("SELECT e.* FROM event e")
    assert many_statements[1].startswith(MARK) and " IN (" in many_statements[1]
    rows = await outbox.rows()
    assert len(rows) == 36
    assert all(r["delivered_at"] and r["attempts"] == 1 and not r["last_error"] for r in rows)
    assert [e.id for e in batch_handler.received] == [r["id"] for r in rows]

    assert await outbox.deliver() == (0, [few_statements[0]])  # nothing new: the read only


async def test_a_failure_is_recorded_on_its_event_and_its_customer_waits(outbox: Outbox) -> None:
    ada, grace, edsger = await outbox.customers("Ada", "Grace", "Edsger")
    await outbox.log([ada, grace, edsger], 10)
    batch_handler.failing.add(grace)

    delivered, statements = await outbox.deliver()

    assert delivered == 22  # Ada's and Edsger's 11 events each
    # the read, Grace's first event's failure, one UPDATE marking the 22
    assert len(statements) == 3, statements
    assert statements[1].startswith("UPDATE event SET attempts = attempts + 1, last_error")
    assert statements[2].startswith(MARK)
    rows = await outbox.rows()
    graces = [r for r in rows if r["customer"] == grace]
    assert "downstream system unavailable" in graces[0]["last_error"]
    assert (graces[0]["attempts"], graces[0]["delivered_at"]) == (1, None)
    # behind the failed one: not handed out, not tried
    assert all((r["attempts"], r["delivered_at"]) == (0, None) for r in graces[1:])
    others = [r for r in rows if r["customer"] != grace]
    assert all(r["attempts"] == 1 and r["delivered_at"] for r in others)
    assert {e.customer_id for e in batch_handler.received} == {ada, edsger}

    batch_handler.failing.clear()
    outbox.clock.advance(outbox.dispatcher.backoff.ceiling(1))  # the retry is due
    assert len((await outbox.deliver())[1]) == 2
    graces = [r for r in await outbox.rows() if r["customer"] == grace]
    assert graces[0]["attempts"] == 2 and graces[0]["last_error"] is None
    assert all(r["delivered_at"] for r in graces)
    handed = [e.id for e in batch_handler.received if e.customer_id == grace]
    assert handed == [r["id"] for r in graces]  # in order, each once


async def test_a_pass_cut_short_marks_what_its_handlers_finished(outbox: Outbox) -> None:
    (ada,) = await outbox.customers("Ada")
    await outbox.log([ada], 9)
    ids = [r["id"] for r in await outbox.rows()]
    batch_handler.cut_at.add(ids[4])

    with pytest.raises(asyncio.CancelledError):
        await outbox.dispatcher.deliver_pending()

    rows = await outbox.rows()
    assert [r["attempts"] for r in rows] == [1] * 4 + [0] * 6
    assert all(r["delivered_at"] for r in rows[:4])
    batch_handler.cut_at.clear()
    assert (await outbox.deliver())[0] == 6
    # only the event in hand when the pass was cut short would be handed out twice
    assert [e.id for e in batch_handler.received] == ids


async def test_live_subscribers_read_a_batchs_customers_once(outbox: Outbox) -> None:
    subscribers = Subscribers()
    publisher = Publisher(outbox.world.db, LocalBroker(subscribers))
    customers = await outbox.customers("Ada", "Grace", "Edsger")
    await outbox.log(customers, 1)
    async with subscribers.subscription() as queue:
        with counting() as claim:
            assert await publisher.publish_pending() == 6
        more = await outbox.customers(*(f"Customer {i}" for i in range(10)))
        await outbox.log(more, 2)  # 30 events
        with counting() as second_claim:
            assert await publisher.publish_pending() == 30
        events = [queue.get_nowait() for _ in range(queue.qsize())]
        with counting() as reads:
            found = [await subscribers.customer_of(outbox.world.db, e) for e in events]
            again = [await subscribers.customer_of(outbox.world.db, e) for e in events]
    assert claim.count == second_claim.count == 1
    assert [e.customer_id for e in events] == [row["id"] for row in found]  # type: ignore[union-attr]
    assert again == found
    assert reads.count == 2, reads.statements  # one per published batch, not per event


async def test_webhook_fan_out_costs_the_same_for_3_events_as_for_30(
    outbox: Outbox, database_url: str
) -> None:
    w = outbox.world
    hook = webhook_ops.NewWebhook("https://example.com/hook", ["*"], "s" * 20, None)
    await webhook_ops.create_webhook(w.db, w.catalog, w.pm, outbox.actor, hook)
    deliverer = WebhookDeliverer(w.db, settings_for(database_url))
    (ada,) = await outbox.customers("Ada")
    await outbox.log([ada], 2)
    with counting() as few:
        assert await deliverer.fan_out() == 3
    await outbox.log([ada], 30)
    with counting() as many:
        assert await deliverer.fan_out() == 30
    assert few.count == many.count == 4, many.statements  # probe, claim, webhooks, insert
    deliveries = await w.db.fetch("SELECT event FROM webhook_delivery ORDER BY event")
    assert [r["event"] for r in deliveries] == [r["id"] for r in await outbox.rows()]


async def test_what_a_wake_with_nothing_new_costs(outbox: Outbox, database_url: str) -> None:
    """Pinned as measured (not a goal): each reader's pass on an outbox with
    nothing new still runs statements, on every wake and every poll."""
    w = outbox.world
    (ada,) = await outbox.customers("Ada")
    await outbox.log([ada], 1)
    publisher = Publisher(w.db, LocalBroker(Subscribers()))
    deliverer = WebhookDeliverer(w.db, settings_for(database_url))
    for reader in (outbox.dispatcher, publisher, deliverer):
        await reader.run_pass()  # the events already there
    costs = {}
    for reader in (outbox.dispatcher, publisher, deliverer):
        with counting() as counter:
            await reader.run_pass()
        costs[reader.task_name] = [s.split()[0] for s in counter.statements]
    assert costs == {
        "crmgraph-events": ["SELECT"],
        "crmgraph-live": ["UPDATE"],  # the claim itself: a write, even with nothing to claim
        "crmgraph-webhooks": ["SELECT"] * 3,  # fan-out probe, lease probe, next due time
    }


@dataclass
class Hooked:
    outbox: Outbox
    deliverer: WebhookDeliverer

    async def events(self, customers: int, rounds: int) -> list[int]:
        """New customers with ``rounds`` interactions each, fanned out; their ids."""
        names = [f"Customer {time.monotonic_ns()} {i}" for i in range(customers)]
        made = await self.outbox.customers(*names)
        await self.outbox.log(made, rounds)
        while await self.deliverer.fan_out():
            pass
        return made

    async def deliveries(self) -> list[dict[str, Any]]:
        return await self.outbox.world.db.fetch(
            "SELECT d.*, (SELECT COUNT(*) FROM webhook_attempt a WHERE a.delivery = d.id) AS logged "
            "FROM webhook_delivery d ORDER BY d.event"
        )


@pytest.fixture
async def hooked(outbox: Outbox, receiver: Receiver, database_url: str) -> AsyncIterator[Hooked]:
    w = outbox.world
    hook = webhook_ops.NewWebhook(receiver.url, ["*"], "s" * 20, None)
    await webhook_ops.create_webhook(w.db, w.catalog, w.pm, outbox.actor, hook)
    settings = settings_for(database_url, webhook_timeout_seconds=10, webhook_backoff_seconds=60)
    deliverer = WebhookDeliverer(w.db, settings)
    deliverer.open_client()  # passes run by hand: no loop
    try:
        yield Hooked(outbox, deliverer)
    finally:
        await deliverer.stop()


async def test_a_webhooks_pass_writes_its_successes_with_a_fixed_number_of_statements(
    hooked: Hooked, receiver: Receiver
) -> None:
    # a pass sends one delivery per customer (the next waits behind it)
    await hooked.events(3, 0)
    with counting() as few:
        assert await hooked.deliverer.deliver_due() == 3
    await hooked.events(30, 0)
    with counting() as many:
        assert await hooked.deliverer.deliver_due() == 30
    # the lease (probe, UPDATE, read) and the successes: one UPDATE of the
    # deliveries, one INSERT of their log rows, one reset of failure counts
    assert few.count == many.count == 6, many.statements
    rows = await hooked.deliveries()
    assert len(rows) == len(receiver.delivered()) == 33
    assert all(r["status"] == "succeeded" and r["attempts"] == 1 for r in rows)
    assert all(r["claim"] is None and r["delivered_at"] and r["logged"] == 1 for r in rows)
    assert {r["last_status_code"] for r in rows} == {200}


async def test_a_webhook_failure_is_written_on_its_own_delivery(
    hooked: Hooked, receiver: Receiver
) -> None:
    customers = await hooked.events(10, 1)
    refusing = set(customers[:3])
    refused = {r["event"] for r in await hooked.deliveries() if r["customer"] in refusing}
    receiver.answer = lambda request: 503 if int(request.event_id) in refused else 200

    with counting() as counter:
        assert await hooked.deliverer.deliver_due() == 10  # each customer's first event
    # the lease (3), each failure (UPDATE, INSERT), the successes (3)
    assert counter.count == 3 + 3 * 2 + 3, counter.statements
    rows = await hooked.deliveries()
    firsts = {c: next(r for r in rows if r["customer"] == c) for c in customers}
    for customer, first in firsts.items():
        if customer in refusing:
            assert (first["status"], first["attempts"], first["last_error"]) == (
                "pending",
                1,
                "HTTP 503",
            )
            assert first["next_attempt_at"] and first["claim"] is None
        else:
            assert (first["status"], first["attempts"]) == ("succeeded", 1)
        assert first["logged"] == 1
    later = [r for r in rows if r["id"] not in {f["id"] for f in firsts.values()}]
    assert len(later) == 10 and all(r["attempts"] == 0 for r in later)  # waiting their turn


class Watched(WebhookDeliverer):
    """Says when ``expected`` requests have had their answer."""

    def __init__(self, *args: Any, expected: int) -> None:
        super().__init__(*args)
        self.answered: list[int] = []
        self.all_answered = asyncio.Event()
        self.expected = expected

    async def attempt(self, row: dict[str, Any]) -> Outcome:
        outcome = await super().attempt(row)
        self.answered.append(row["event"])
        if len(self.answered) == self.expected:
            self.all_answered.set()
        return outcome


async def test_a_webhooks_pass_cut_short_writes_what_it_sent_and_hands_back_the_rest(
    outbox: Outbox, receiver: Receiver, database_url: str
) -> None:
    w = outbox.world
    # a receiver that takes the request and never answers: in flight until cut short
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}/hooks/crm"
    for url in (receiver.url, silent_url):
        hook = webhook_ops.NewWebhook(url, ["*"], "s" * 20, None)
        await webhook_ops.create_webhook(w.db, w.catalog, w.pm, outbox.actor, hook)
    settings = settings_for(database_url, webhook_timeout_seconds=30)
    deliverer = Watched(w.db, settings, expected=4)
    deliverer.open_client()
    try:
        await outbox.customers("Ada", "Grace", "Edsger", "Barbara")
        assert await deliverer.fan_out() == 4
        sending = asyncio.create_task(deliverer.deliver_due())
        await asyncio.wait_for(deliverer.all_answered.wait(), 20)
        sending.cancel()  # what stop() does to a pass in flight
        with pytest.raises(asyncio.CancelledError):
            await sending
    finally:
        await deliverer.stop()
        silent.close()

    rows = await w.db.fetch(
        "SELECT d.*, w.url FROM webhook_delivery d JOIN webhook w ON w.id = d.webhook"
    )
    answered = [r for r in rows if r["url"] == receiver.url]
    assert len(answered) == 4 and all(r["status"] == "succeeded" for r in answered)
    # sent without an answer: handed back at once, not left leased until it expires
    cut = [r for r in rows if r["url"] == silent_url]
    assert [(r["status"], r["attempts"], r["claim"], r["locked_until"]) for r in cut] == [
        ("pending", 0, None, None)
    ] * 4
