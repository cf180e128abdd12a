"""Delivering outbox events to plugin event handlers.

Mutations write events in their own transaction; this dispatcher hands them
to the handlers plugins return from ``crmgraph_event_handlers``, after the
commit and outside the write, in id order per customer. A failing handler
never undoes the write: the event stays undelivered, its attempts and last
error are recorded, later events of that customer wait behind it, and it is
retried on the next pass (up to ``max_attempts``).

Delivery is at least once: with several workers the same event may reach a
handler twice, and the events a pass handled are marked delivered together
after it, so a process that dies mid-pass hands them out again (see
:meth:`EventDispatcher.deliver_pending`); handlers use ``event.id`` to stay
idempotent.

Plugins write events of their own with :func:`emit` (re-exported from
:mod:`crmgraph.event_types`, where the naming rules are).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pluggy

from crmgraph.background import PollingLoop
from crmgraph.db import dry_run, queries, writes
from crmgraph.db.engine import Database
from crmgraph.event_types import EventTypeError, emit
from crmgraph.extension_points import Event
from crmgraph.plugin_calls import PluginFailure, await_me_maybe, call_guarded
from crmgraph.registry import startup_results

__all__ = ["EVENT_MAX_ATTEMPTS", "EventDispatcher", "EventTypeError", "collect_handlers", "emit"]

logger = logging.getLogger("crmgraph.events")

# Deliveries of one event to the handlers before it is given up (and so may be pruned).
EVENT_MAX_ATTEMPTS = 10
# Event ids marked delivered by one statement (under SQLite's older limit of
# 999 parameters); a pass of the default batch is marked in one.
MARK_CHUNK = 500

Handler = Callable[[Event], Any]


def collect_handlers(pm: pluggy.PluginManager) -> dict[str, list[tuple[str, Handler]]]:
    """Event type (or ``*``) -> [(plugin, handler)], in plugin-name order."""
    handlers: dict[str, list[tuple[str, Handler]]] = defaultdict(list)
    for plugin, declared in startup_results(pm, "crmgraph_event_handlers"):
        for event_type, handler in sorted((declared or {}).items()):
            handlers[event_type].append((plugin, handler))
    return dict(handlers)


class EventDispatcher(PollingLoop):
    task_name = "crmgraph-events"
    failure_message = "event delivery pass failed"

    def __init__(
        self,
        db: Database,
        pm: pluggy.PluginManager,
        poll_seconds: float = 1.0,
        max_attempts: int = EVENT_MAX_ATTEMPTS,
        batch: int = 100,
    ) -> None:
        super().__init__(poll_seconds, logger)
        self.db = db
        self.handlers = collect_handlers(pm)
        self.max_attempts = max_attempts
        self.batch = batch
        # the other readers of the outbox (live subscriptions, webhooks), woken with it
        self.followers: list[Callable[[], None]] = []

    def wake(self) -> None:
        """Called after a write commits, so its events go out without waiting a poll;
        inside a dry run (which commits nothing) it does nothing."""
        if dry_run.active() is not None:
            return
        super().wake()
        for follower in self.followers:
            follower()

    async def deliver_pending(self) -> int:
        """One pass over undelivered events; returns how many were delivered.

        A pass costs a fixed number of statements however many events it
        delivers: one read of up to ``batch`` events, the handlers of each,
        then one ``UPDATE ... WHERE id IN (...)`` marking every delivered event
        of the pass at once. A failure is rare and recorded on its own event as
        it happens (attempts + 1, last error), and that customer's later events
        of the pass are left for the next one, behind it.

        Marking comes after handling, so delivery stays at least once. A pass
        cut short inside the process (``stop()`` cancelling it, a handler's
        ``BaseException``, the failure record itself failing) still marks what
        its handlers finished, so only the event in hand is handed out again,
        as when each event was marked on its own. A process that dies between
        handling and marking (killed, power lost) leaves the whole pass
        unmarked: the next pass, here or in another process, hands those
        events (at most ``batch``) to the handlers again, which is why
        handlers stay idempotent on ``event.id``."""
        rows = await self.db.fetch(
            "SELECT * FROM event WHERE delivered_at IS NULL AND attempts < {} ORDER BY id LIMIT {}",
            self.max_attempts,
            self.batch,
        )
        delivered: list[int] = []
        waiting: set[int | None] = set()
        try:
            for row in rows:
                if row["customer"] is not None and row["customer"] in waiting:
                    continue  # keep each customer's events in order behind a failed one
                event = Event(
                    id=row["id"],
                    type=row["type"],
                    customer_id=row["customer"],
                    payload=queries.load_json(row["payload"]),
                    created_at=row["created_at"],
                )
                try:
                    await self._handle(event)
                except PluginFailure as failure:
                    waiting.add(row["customer"])
                    await self.db.fetch(
                        "UPDATE event SET attempts = attempts + 1, last_error = {} WHERE id = {}",
                        str(failure.message)[:2000],
                        row["id"],
                    )
                    continue
                delivered.append(row["id"])
        finally:
            await self._mark_delivered(delivered)
        return len(delivered)

    async def _mark_delivered(self, ids: list[int]) -> None:
        """One statement per ``MARK_CHUNK`` ids (a pass of the default
        ``batch`` is one): SQLite bounds the parameters of a statement."""
        at = writes.now()
        for start in range(0, len(ids), MARK_CHUNK):
            chunk = ids[start : start + MARK_CHUNK]
            marks = ", ".join("{}" for _ in chunk)
            await self.db.fetch(
                "UPDATE event SET attempts = attempts + 1, delivered_at = {}, last_error = NULL "
                f"WHERE id IN (SELECT id FROM event WHERE id IN ({marks}) "
                f"ORDER BY id{writes.row_locks(self.db)})",
                at,
                *chunk,
            )

    async def _handle(self, event: Event) -> None:
        for plugin, handler in (*self.handlers.get(event.type, ()), *self.handlers.get("*", ())):
            await call_guarded(
                plugin,
                f"event handler for {event.type}",
                lambda handler=handler: await_me_maybe(handler(event)),
            )

    async def run_pass(self) -> float:
        full = await self.deliver_pending() == self.batch
        return 0 if full else self.poll_seconds  # a full batch: more are waiting
