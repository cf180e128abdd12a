"""Delivering outbox events to plugin event handlers.

Mutations write events in their own transaction; this dispatcher hands them
to the handlers plugins return from ``crmgraph_event_handlers``, after the
commit and outside the write, in id order per customer. A failing handler
never undoes the write: the event stays undelivered, its attempts and last
error are recorded, later events of that customer wait behind it, and it is
retried after a pause that doubles with each failure (:class:`Backoff`, the
same policy as webhook deliveries), so a handler that is down for a while
does not use up an event's attempts in the first seconds of a write load
(every commit wakes the dispatcher). After ``event_max_attempts`` it is
given up: it holds nothing back any more and waits, with its last error,
for ``crmgraph events retry``.

Delivery is at least once: with several workers the same event may reach a
handler twice, and the events a pass handled are marked delivered together
after it, so a process that dies mid-pass hands them out again (see
:meth:`EventDispatcher.deliver_pending`); handlers use ``event.id`` to stay
idempotent.

Plugins write events of their own with :func:`emit` (re-exported from
:mod:`crmgraph.event_types`, where the naming rules are).
"""

from __future__ import annotations

import datetime
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from crmgraph.background import PollingLoop
from crmgraph.db import dry_run, queries, writes
from crmgraph.db.engine import Database
from crmgraph.event_types import EventTypeError, emit
from crmgraph.extension_points import Event
from crmgraph.plugin_calls import PluginFailure, await_me_maybe, call_guarded
from crmgraph.registry import startup_results
from crmgraph.settings import Settings

__all__ = [
    "EVENT_MAX_ATTEMPTS",
    "Backoff",
    "EventDispatcher",
    "EventTypeError",
    "collect_handlers",
    "emit",
]

logger = logging.getLogger("crmgraph.events")

# Deliveries of one event to the handlers before it is given up (and so may be
# pruned), unless CRMGRAPH_EVENT_MAX_ATTEMPTS says otherwise.
EVENT_MAX_ATTEMPTS: int = Settings.model_fields["event_max_attempts"].default
# A retry comes up to this fraction of its pause early, at random.
JITTER = 0.2
# Event ids marked delivered by one statement (under SQLite's older limit of
# 999 parameters); a pass of the default batch is marked in one.
MARK_CHUNK = 500

Handler = Callable[[Event], Any]

# The events a pass may hand out: undelivered, not given up, due, and not of a
# customer with an event waiting for its retry (those wait behind it). The
# parameters: the attempt limit and now, twice, then the batch. The waiting
# customers are read once (ix_event_retrying, crmgraph_0047) and hashed, not
# looked up per candidate: with 15,000 customers waiting among 57,000
# undelivered events (PostgreSQL 15) a pass read its 100 in 21 ms, against
# 1.3 s for a NOT EXISTS per candidate, which the planner joined as a loop.
DUE = (
    "SELECT e.* FROM event e WHERE e.delivered_at IS NULL AND e.attempts < {} "
    "AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= {}) "
    "AND (e.customer IS NULL OR e.customer NOT IN (SELECT p.customer FROM event p "
    "WHERE p.delivered_at IS NULL AND p.next_attempt_at IS NOT NULL AND p.customer IS NOT NULL "
    "AND p.attempts < {} AND p.next_attempt_at > {})) "
    "ORDER BY e.id LIMIT {}"
)
# The next retry to wait for: after the pass's read. One due by then was handed
# out by that pass (or is behind one that is not due), so counting it would
# make the loop spin.
NEXT_RETRY = (
    "SELECT MIN(next_attempt_at) FROM event WHERE delivered_at IS NULL "
    "AND next_attempt_at IS NOT NULL AND attempts < {} AND next_attempt_at > {}"
)


@dataclass(frozen=True)
class Backoff:
    """When a failed delivery is tried again, and when it is given up.

    The n-th failed attempt is followed by a pause of ``first_seconds *
    2**(n-1)``, at most ``max_seconds``, less up to ``jitter`` of it at
    random, so what failed together (a receiver down for a moment) does not
    all come back in the same instant; after ``max_attempts`` attempts it is
    given up. The one policy of the event dispatcher and of webhook
    deliveries (crmgraph.webhooks)."""

    first_seconds: float
    max_seconds: float
    max_attempts: int
    jitter: float = JITTER
    # not the secrets module: spreading retries needs no unpredictability
    draw: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    @classmethod
    def for_events(cls, settings: Settings) -> Backoff:
        return cls(
            settings.event_backoff_seconds,
            settings.event_backoff_max_seconds,
            settings.event_max_attempts,
        )

    def ceiling(self, tries: int) -> float:
        """The pause after the ``tries``-th failed attempt, before jitter."""
        # the exponent bounded: a float overflows past 2**1023
        return min(self.first_seconds * 2.0 ** min(tries - 1, 64), self.max_seconds)

    def pause(self, tries: int) -> float:
        """The pause after the ``tries``-th failed attempt, jittered."""
        return self.ceiling(tries) * (1 - self.jitter * self.draw())

    def exhausted(self, tries: int) -> bool:
        return tries >= self.max_attempts

    def span(self) -> float:
        """The longest a failing delivery is retried before it is given up:
        its pauses, without jitter, between the first and the last attempt."""
        return sum(self.ceiling(n) for n in range(1, self.max_attempts))


DEFAULT_BACKOFF = Backoff(
    Settings.model_fields["event_backoff_seconds"].default,
    Settings.model_fields["event_backoff_max_seconds"].default,
    EVENT_MAX_ATTEMPTS,
)


def collect_handlers(pm: pluggy.PluginManager) -> dict[str, list[tuple[str, Handler]]]:
    """Event type (or ``*``) -> [(plugin, handler)], in plugin-name order."""
    handlers: dict[str, list[tuple[str, Handler]]] = defaultdict(list)
    for plugin, declared in startup_results(pm, "crmgraph_event_handlers"):
        for event_type, handler in sorted((declared or {}).items()):
            handlers[event_type].append((plugin, handler))
    return dict(handlers)


class EventDispatcher(PollingLoop):
    """The dispatcher of one server process. ``clock`` is when "now" is (a
    test passes its own to step through the pauses without waiting them)."""

    task_name = "crmgraph-events"
    failure_message = "event delivery pass failed"

    def __init__(
        self,
        db: Database,
        pm: pluggy.PluginManager,
        poll_seconds: float = 1.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        batch: int = 100,
        clock: Callable[[], datetime.datetime] = writes.now,
    ) -> None:
        super().__init__(poll_seconds, logger)
        self.db = db
        self.handlers = collect_handlers(pm)
        self.backoff = backoff
        self.batch = batch
        self.clock = clock
        # whether an event may wait for a retry: until a pass finds none, each
        # reads when the next is due (a pass of a process just started, too,
        # for those another process left); this process's failures set it again
        self._retries_pending = True
        self._read_at = clock()  # the "now" of the last pass's read
        # the other readers of the outbox (live subscriptions, webhooks), woken with it
        self.followers: list[Callable[[], None]] = []

    @property
    def max_attempts(self) -> int:
        return self.backoff.max_attempts

    def wake(self) -> None:
        """Called after a write commits, so its events go out without waiting a poll;
        inside a dry run (which commits nothing) it does nothing."""
        if dry_run.active() is not None:
            return
        super().wake()
        for follower in self.followers:
            follower()

    async def deliver_pending(self) -> int:
        """One pass over the events due now; returns how many were delivered.

        A pass costs a fixed number of statements however many events it
        delivers: one read of up to ``batch`` events, the handlers of each,
        then one ``UPDATE ... WHERE id IN (...)`` marking every delivered event
        of the pass at once. A failure is rare and recorded on its own event as
        it happens (attempts + 1, last error, when it is due again), and that
        customer's later events of the pass are left behind it: the read
        leaves out a customer's events behind one not due yet.

        Marking comes after handling, so delivery stays at least once. A pass
        cut short inside the process (``stop()`` cancelling it, a handler's
        ``BaseException``, the failure record itself failing) still marks what
        its handlers finished, so only the event in hand is handed out again,
        as when each event was marked on its own. A process that dies between
        handling and marking (killed, power lost) leaves the whole pass
        unmarked: the next pass, here or in another process, hands those
        events (at most ``batch``) to the handlers again, which is why
        handlers stay idempotent on ``event.id``."""
        now, limit = self.clock(), self.max_attempts
        self._read_at = now
        rows = await self.db.fetch(DUE, limit, now, limit, now, self.batch)
        delivered: list[int] = []
        waiting: set[int | None] = set()
        try:
            for row in rows:
                if row["customer"] is not None and row["customer"] in waiting:
                    continue  # keep each customer's events in order behind a failed one
                try:
                    await self._handle(event_of(row))
                except PluginFailure as failure:
                    waiting.add(row["customer"])
                    await self._record_failure(row, str(failure.message))
                    continue
                delivered.append(row["id"])
        finally:
            await self._mark_delivered(delivered)
        return len(delivered)

    async def _record_failure(self, row: dict[str, Any], message: str) -> None:
        """Attempts + 1, the error, and when it is due again: a pause ahead,
        or never (NULL) once it is given up."""
        tries = row["attempts"] + 1
        at = self.clock()
        given_up = self.backoff.exhausted(tries)
        next_at = None if given_up else at + datetime.timedelta(seconds=self.backoff.pause(tries))
        await self.db.fetch(
            "UPDATE event SET attempts = attempts + 1, last_error = {}, next_attempt_at = {} "
            "WHERE id = {}",
            message[:2000],
            next_at,
            row["id"],
        )
        self._retries_pending = self._retries_pending or not given_up
        if given_up:
            logger.warning(
                "event %s (%s) given up after %s attempts; the last failed with: %s",
                row["id"],
                row["type"],
                tries,
                message[:200],
            )

    async def _mark_delivered(self, ids: list[int]) -> None:
        """One statement per ``MARK_CHUNK`` ids (a pass of the default
        ``batch`` is one): SQLite bounds the parameters of a statement."""
        at = writes.now()
        for start in range(0, len(ids), MARK_CHUNK):
            chunk = ids[start : start + MARK_CHUNK]
            marks = ", ".join("{}" for _ in chunk)
            await self.db.fetch(
                "UPDATE event SET attempts = attempts + 1, delivered_at = {}, last_error = NULL, "
                f"next_attempt_at = NULL WHERE id IN (SELECT id FROM event WHERE id IN ({marks}) "
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
        if await self.deliver_pending() == self.batch:
            return 0  # a full batch: more are waiting
        return await self.pause()

    async def pause(self) -> float:
        """Seconds until the next retry falls due, at most the poll interval
        (other processes' writes are seen by polling; this one's wake it).
        No read while no retry is known to be pending: a wake with nothing
        new costs the pass's one read."""
        if not self._retries_pending:
            return self.poll_seconds
        # after the pass's read, not now: one falling due since is not missed
        due = queries.read_timestamp(
            await self.db.read_value(NEXT_RETRY, self.max_attempts, self._read_at)
        )
        if due is None:
            self._retries_pending = False
            return self.poll_seconds
        return min(max((due - self.clock()).total_seconds(), 0.001), self.poll_seconds)


def event_of(row: dict[str, Any]) -> Event:
    return Event(
        id=row["id"],
        type=row["type"],
        customer_id=row["customer"],
        payload=queries.load_json(row["payload"]),
        created_at=row["created_at"],
    )


async def given_up(db: Database, max_attempts: int, limit: int = 100) -> list[dict[str, Any]]:
    """The events the dispatcher gave up on, oldest first (``crmgraph events
    failed``): undelivered, out of attempts, each with its last error."""
    return await db.fetch(
        "SELECT id, type, customer, attempts, created_at, last_error FROM event "
        "WHERE delivered_at IS NULL AND attempts >= {} ORDER BY id LIMIT {}",
        max_attempts,
        limit,
    )


async def retry_given_up(db: Database, max_attempts: int, ids: list[int] | None) -> list[int]:
    """A fresh round of attempts, due now, for the given-up events ``ids``
    (every one when None); returns those it applied to. A running dispatcher
    hands them out at its next poll; each comes after whatever of its
    customer's events were delivered while it was given up."""
    if ids == []:
        return []
    chosen = "" if ids is None else f" AND id IN ({', '.join('{}' for _ in ids)})"
    rows = await db.fetch(
        "UPDATE event SET attempts = 0, next_attempt_at = NULL "
        f"WHERE delivered_at IS NULL AND attempts >= {{}}{chosen} RETURNING id",
        max_attempts,
        *(ids or ()),
    )
    return sorted(int(row["id"]) for row in rows)
