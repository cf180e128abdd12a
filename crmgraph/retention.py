"""Retention: the outbox and the webhook delivery log would otherwise grow for ever.

Two kinds of rows are pruned, each in bounded batches (one short statement at
a time, so a large backlog never holds a long lock):

* **Webhook deliveries** (with their attempts, by ``ON DELETE CASCADE``) that
  are finished — succeeded or failed for good, not pending — and were last
  touched more than ``CRMGRAPH_WEBHOOK_LOG_RETENTION_DAYS`` ago.
* **Events** older than ``CRMGRAPH_EVENT_RETENTION_DAYS`` that nothing needs
  any more: delivered to the plugin event handlers (or given up after the
  dispatcher's last attempt), published to live subscribers, fanned out to
  webhooks (or older than every webhook, so none will ever receive it), and
  with no delivery left that is pending or still kept by the log's retention
  (a delivery's replay reads its event).

A retention of 0 days keeps that kind of row for ever. Every server process
runs a :class:`Pruner`; passes of several processes at once delete disjoint
or already deleted rows, so they need no coordination. ``crmgraph prune``
runs the same deletion once, to the end.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from crmgraph.background import PollingLoop
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.events import EVENT_MAX_ATTEMPTS
from crmgraph.settings import Settings
from crmgraph.webhooks import PENDING

logger = logging.getLogger("crmgraph.retention")

BATCH = 500

# Finished deliveries past the log's retention.
DELIVERY_DUE = "d.status <> 'pending' AND d.updated_at < {}"

# Events nothing needs any more; the parameters are, in order: the events'
# cutoff, the dispatcher's attempt limit, and the delivery log's cutoff.
EVENT_DUE = (
    "e.created_at < {} "
    "AND (e.delivered_at IS NOT NULL OR e.attempts >= {}) "
    "AND e.published_at IS NOT NULL "
    "AND (e.webhooks_claimed_at IS NOT NULL "
    "OR NOT EXISTS (SELECT 1 FROM webhook w WHERE w.created_at <= e.created_at)) "
    "AND NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.event = e.id "
    "AND (d.status = 'pending' OR d.updated_at >= {}))"
)

# A cutoff for "keep for ever": no row is older than the earliest datetime.
FOREVER = datetime.datetime.min.replace(tzinfo=datetime.UTC) + datetime.timedelta(days=1)


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these are past their retention."""

    events: datetime.datetime
    deliveries: datetime.datetime
    # the dispatcher's attempt limit: events past it were given up
    max_attempts: int = EVENT_MAX_ATTEMPTS

    @classmethod
    def at(cls, settings: Settings, now: datetime.datetime | None = None) -> Cutoffs:
        moment = now or writes.now()

        def before(days: float) -> datetime.datetime:
            return moment - datetime.timedelta(days=days) if days > 0 else FOREVER

        return cls(
            events=before(settings.event_retention_days),
            deliveries=before(settings.webhook_log_retention_days),
            max_attempts=settings.event_max_attempts,
        )


@dataclass(frozen=True)
class Pruned:
    events: int = 0
    deliveries: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.events + other.events, self.deliveries + other.deliveries)


async def prune_deliveries(db: Database, cutoffs: Cutoffs, batch: int = BATCH) -> int:
    """Delete one batch of finished deliveries past retention; returns how many.
    ``status`` is checked again on the deleted row itself, so a delivery replayed
    (made pending) meanwhile is kept."""
    rows = await db.fetch(
        "DELETE FROM webhook_delivery WHERE status <> {} AND id IN "
        f"(SELECT d.id FROM webhook_delivery d WHERE {DELIVERY_DUE} ORDER BY d.id LIMIT {{}}) "
        "RETURNING id",
        PENDING,
        cutoffs.deliveries,
        batch,
    )
    return len(rows)


async def prune_events(
    db: Database, cutoffs: Cutoffs, max_attempts: int | None = None, batch: int = BATCH
) -> int:
    """Delete one batch of events nothing needs any more; returns how many."""
    rows = await db.fetch(
        "DELETE FROM event WHERE id IN "
        f"(SELECT e.id FROM event e WHERE {EVENT_DUE} ORDER BY e.id LIMIT {{}}) RETURNING id",
        cutoffs.events,
        cutoffs.max_attempts if max_attempts is None else max_attempts,
        cutoffs.deliveries,
        batch,
    )
    return len(rows)


async def prune_batch(db: Database, cutoffs: Cutoffs, batch: int = BATCH) -> Pruned:
    """One batch of each; deliveries first, as they may free their events."""
    deliveries = await prune_deliveries(db, cutoffs, batch)
    return Pruned(events=await prune_events(db, cutoffs, batch=batch), deliveries=deliveries)


async def prune(db: Database, settings: Settings, batch: int = BATCH) -> Pruned:
    """Everything due now, batch after batch (``crmgraph prune``)."""
    cutoffs = Cutoffs.at(settings)
    total = Pruned()
    while True:
        done = await prune_batch(db, cutoffs, batch)
        total += done
        if done.events < batch and done.deliveries < batch:
            return total


async def due(db: Database, settings: Settings) -> Pruned:
    """What is due now (``crmgraph prune --dry-run``). Pruning an event also
    removes its deliveries past retention, so it may report fewer deliveries."""
    cutoffs = Cutoffs.at(settings)
    deliveries = await db.fetch(
        f"SELECT COUNT(*) AS n FROM webhook_delivery d WHERE {DELIVERY_DUE}", cutoffs.deliveries
    )
    events = await db.fetch(
        f"SELECT COUNT(*) AS n FROM event e WHERE {EVENT_DUE}",
        cutoffs.events,
        cutoffs.max_attempts,
        cutoffs.deliveries,
    )
    return Pruned(events=int(events[0]["n"]), deliveries=int(deliveries[0]["n"]))


class Pruner(PollingLoop):
    """The background pruning of one server process: a batch of each kind per
    pass, the next pass at once while batches come back full, otherwise after
    ``CRMGRAPH_PRUNE_INTERVAL_SECONDS``. Not woken by writes (``wake`` is
    never called): new rows are never due."""

    task_name = "crmgraph-retention"
    failure_message = "pruning pass failed"

    def __init__(self, db: Database, settings: Settings, batch: int = BATCH) -> None:
        super().__init__(settings.prune_interval_seconds, logger)
        self.db = db
        self.settings = settings
        self.batch = batch

    async def run_pass(self) -> float:
        done = await prune_batch(self.db, Cutoffs.at(self.settings), self.batch)
        if done.events or done.deliveries:
            logger.info("pruned %d events, %d webhook deliveries", done.events, done.deliveries)
        full = done.events == self.batch or done.deliveries == self.batch
        return 0 if full else self.poll_seconds
