"""Outbox readers deliver a pass of events with a fixed number of SQL
statements however many events it holds (counted, not timed), on both
engines: the event dispatcher (one read, one UPDATE marking every delivered
event; a failure recorded on its own event), the live publisher's claim, the
live subscribers' customer reads (one per delivered batch) and the webhooks
fan-out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from crmgraph.events import EventDispatcher
from crmgraph.live import LocalBroker, Publisher, Subscribers
from crmgraph.operations import interactions
from crmgraph.operations import webhooks as webhook_ops
from crmgraph.operations.actor import Actor
from crmgraph.registry import make_plugin_manager
from crmgraph.testing import settings_for
from crmgraph.webhooks import WebhookDeliverer
from tests.operations_world import (
    World,
    counting,
    world_fixture,  # noqa: F401  (the world fixture)
)
from tests.plugins_for_tests import batch_handler

PLUGIN = "tests.plugins_for_tests.batch_handler"
MARK = "UPDATE event SET attempts = attempts + 1, delivered_at = "


@dataclass
class Outbox:
    world: World
    actor: Actor
    dispatcher: EventDispatcher

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
    return Outbox(world, await world.actor("admin"), EventDispatcher(world.db, pm))


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
    assert many_statements[0].startswith("SELECT * FROM event")
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
