"""Live events for GraphQL subscriptions: from the outbox to every subscriber.

Each server process runs a :class:`Publisher` that claims the outbox events no
process has published yet — one atomic ``UPDATE … RETURNING``, so with several
workers each event is claimed by exactly one — and hands them to the broker,
which gives them to the :class:`Subscribers` of every process: directly with
one process, through a Redis channel with several (``CRMGRAPH_REDIS_URL``;
each process listens and delivers to its own subscribers, so a subscriber on
any worker sees each event once, whichever worker wrote or claimed it). While
Redis is away a process delivers what it claims to its own subscribers only.

Events reach subscribers after their transaction commits, in id order within
a claimed batch. Live delivery is for connected clients: a client that
reconnects does not get what it missed (webhooks and plugin event handlers are
the paths that retry until delivered).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import orjson

from crmgraph.background import PollingLoop
from crmgraph.db import queries, writes
from crmgraph.db.engine import Database
from crmgraph.extension_points import Event
from crmgraph.redis_link import REDIS_ERRORS, RedisLink, Subscription
from crmgraph.settings import Settings

logger = logging.getLogger("crmgraph.live")

QUEUE_SIZE = 1000  # events a subscriber may fall behind before it is dropped
SNAPSHOTS_KEPT = 1024  # events; a published batch is at most 200 (Publisher.batch)


class SubscriberTooSlow(Exception):
    """A subscriber's queue filled up: it is dropped rather than let it grow without bound."""


class Subscribers:
    """This process's subscriptions, each with its own queue of events."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._queues: set[asyncio.Queue[Event | None]] = set()
        # event id -> the read of its batch's customers (customer id -> row):
        # one read per delivered batch and process, however many subscribe
        self._snapshots: OrderedDict[int, asyncio.Future[dict[int, dict[str, Any]]]] = OrderedDict()
        # event id -> the events with a customer of the batch it was delivered in,
        # until a subscription first asks for one of them
        self._unread: OrderedDict[int, tuple[Event, ...]] = OrderedDict()

    @property
    def count(self) -> int:
        return len(self._queues)

    @contextlib.asynccontextmanager
    async def subscription(self) -> AsyncIterator[asyncio.Queue[Event | None]]:
        """A queue receiving every event published from now on; ``None`` in it
        means the subscriber fell too far behind and was dropped."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(self.queue_size + 1)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def deliver(self, events: Sequence[Event]) -> None:
        if self._queues:
            about_customers = tuple(e for e in events if e.customer_id is not None)
            for event in about_customers:
                self._unread[event.id] = about_customers
            trim(self._unread)
        for queue in list(self._queues):
            for event in events:
                if queue.qsize() >= self.queue_size:
                    self._queues.discard(queue)
                    queue.put_nowait(None)  # the one slot kept free for this
                    break
                queue.put_nowait(event)

    async def customer_of(self, db: Database, event: Event) -> dict[str, Any] | None:
        """The customer an event is about (with its current stage), shared by
        every subscription checking it. The first check of an event of a
        delivered batch reads the customers of the whole batch in one
        statement, so a batch of N events costs one read, not N."""
        if event.customer_id is None:
            return None
        found = self._snapshots.get(event.id)
        if found is None:
            batch = [e for e in self._unread.pop(event.id, ()) if e.id not in self._snapshots]
            if all(e.id != event.id for e in batch):
                batch.append(event)
            pks = sorted({e.customer_id for e in batch if e.customer_id is not None})
            found = asyncio.ensure_future(self._read_customers(db, pks))
            for member in batch:
                self._unread.pop(member.id, None)
                self._snapshots[member.id] = found
            trim(self._snapshots)
        return (await asyncio.shield(found)).get(event.customer_id)

    @staticmethod
    async def _read_customers(db: Database, pks: list[int]) -> dict[int, dict[str, Any]]:
        return await queries.customers_holding(db, pks)


def trim(kept: OrderedDict[int, Any]) -> None:
    """Forget the oldest entries beyond ``SNAPSHOTS_KEPT`` (an event forgotten
    before a slow subscription checks it is read again, on its own)."""
    while len(kept) > SNAPSHOTS_KEPT:
        kept.popitem(last=False)


class Broker(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, events: Sequence[Event]) -> None: ...


class LocalBroker:
    """One process: published events go straight to its subscribers."""

    def __init__(self, subscribers: Subscribers) -> None:
        self.subscribers = subscribers

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def publish(self, events: Sequence[Event]) -> None:
        self.subscribers.deliver(events)


def encode_events(events: Sequence[Event]) -> bytes:
    return orjson.dumps(
        [
            {
                "id": e.id,
                "type": e.type,
                "customer": e.customer_id,
                "payload": e.payload,
                "created_at": e.created_at.isoformat(),
            }
            for e in events
        ]
    )


def decode_events(data: bytes) -> list[Event]:
    return [
        Event(
            id=item["id"],
            type=item["type"],
            customer_id=item["customer"],
            payload=item["payload"],
            created_at=datetime.datetime.fromisoformat(item["created_at"]),
        )
        for item in orjson.loads(data)
    ]


class RedisBroker:
    """Several processes: a batch is published once on a Redis channel that
    every process listens to, each delivering it to its own subscribers.

    While Redis is away (:mod:`crmgraph.redis_link`) a batch goes to this
    process's subscribers only, as does one published while this process's
    own listener is not subscribed (it would not hear it back); subscribers
    on other workers miss those events (the outbox still has them for the
    reliable paths: webhooks and plugin event handlers)."""

    def __init__(self, link: RedisLink, subscribers: Subscribers, channel: str) -> None:
        self.link = link
        self.subscribers = subscribers
        self.channel = channel
        self.listener = Subscription(
            link, channel, self.deliver_encoded, name="crmgraph-live-redis"
        )

    def deliver_encoded(self, data: bytes) -> None:
        self.subscribers.deliver(decode_events(data))

    async def start(self) -> None:
        await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()

    async def publish(self, events: Sequence[Event]) -> None:
        if self.link.worth_trying():
            try:
                await self.link.client.publish(self.channel, encode_events(events))
            except REDIS_ERRORS as error:
                self.link.lost(error, "publishing live events")
            else:
                self.link.answered()
                if self.listener.listening:
                    return
        self.subscribers.deliver(events)


def channel_for(database_url: str) -> str:
    """One channel per database: deployments sharing a Redis do not hear each other."""
    return "crmgraph:events:" + hashlib.sha256(database_url.encode()).hexdigest()[:16]


def make_broker(settings: Settings, subscribers: Subscribers, link: RedisLink | None) -> Broker:
    if link is None:
        return LocalBroker(subscribers)
    return RedisBroker(link, subscribers, channel_for(settings.database_url))


class Publisher(PollingLoop):
    """Claims unpublished outbox events and publishes them, woken after each
    write commits and otherwise every ``poll_seconds`` (for events written by
    other processes or tools)."""

    task_name = "crmgraph-live"
    failure_message = "live events: publishing failed"  # database or Redis briefly away

    def __init__(
        self, db: Database, broker: Broker, poll_seconds: float = 1.0, batch: int = 200
    ) -> None:
        super().__init__(poll_seconds, logger)
        self.db = db
        self.broker = broker
        self.batch = batch

    async def claim(self) -> list[Event]:
        """The oldest unpublished events, marked published by this process.
        ``published_at IS NULL`` is checked again on each row, so when two
        processes race for the same rows PostgreSQL lets only the first have
        them (the second re-reads them after the first commits); SQLite
        serialises writers."""
        rows = await self.db.fetch(
            "UPDATE event SET published_at = {} WHERE published_at IS NULL AND id IN "
            "(SELECT id FROM event WHERE published_at IS NULL ORDER BY id LIMIT {}"
            f"{writes.row_locks(self.db)}) "
            "RETURNING id, type, customer, payload, created_at",
            writes.now(),
            self.batch,
        )
        return [
            Event(
                id=row["id"],
                type=row["type"],
                customer_id=row["customer"],
                payload=queries.load_json(row["payload"]),
                created_at=queries.read_timestamp(row["created_at"]),
            )
            for row in sorted(rows, key=lambda r: r["id"])
        ]

    async def publish_pending(self) -> int:
        events = await self.claim()
        if events:
            await self.broker.publish(events)
        return len(events)

    async def run_pass(self) -> float:
        full = await self.publish_pending() == self.batch
        return 0 if full else self.poll_seconds

    async def start(self) -> None:
        await self.broker.start()
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        await self.broker.stop()
