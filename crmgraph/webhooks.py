"""Webhooks: outbox events POSTed, signed, to the URLs administrators subscribe.

Delivery runs in every server process, in three steps that stay correct with
several processes on one database:

1. **Fan-out.** A pass claims events nobody has fanned out yet with one
   ``UPDATE event SET webhooks_claimed_at ... WHERE webhooks_claimed_at IS NULL
   ... RETURNING`` and, in the same transaction, writes one ``webhook_delivery``
   per active webhook whose event types match. Two processes never both claim
   an event (PostgreSQL makes the second UPDATE wait on the row lock and
   re-check ``IS NULL``; SQLite serialises writers), and a crash rolls the
   claim back together with the deliveries, so each event is fanned out once.
2. **Lease.** Due deliveries are leased (``locked_until`` and a ``claim``
   token) by one UPDATE. A delivery is not picked while an earlier delivery of
   the same webhook for the same customer is still pending, so a customer's
   events reach a webhook in order: a later one waits while an earlier one is
   retried.
3. **Send.** One signed POST per leased delivery, all of a pass at once;
   then, only for the deliveries whose lease is still ours, the outcomes are
   written: the pass's successes together in one transaction (a fixed number
   of statements however many: their status, their delivery log rows, the
   reset of their webhooks' failure counts), each failure (rare) in a
   transaction of its own with its webhook's failure count. A pass cut short
   by ``stop()`` still writes what it sent and hands back the rest. A process
   killed after sending and before writing (or mid-request) leaves the
   leases to expire and another pass sends again: at least once, so
   receivers de-duplicate on the event id.

A failed attempt is retried after ``backoff_seconds * 2**(n-1)`` (capped,
less up to a fifth at random: the outbox's one policy, crmgraph.events.Backoff);
after ``max_attempts`` the delivery fails, and ``disable_after`` failed
deliveries in a row disable the webhook, with the reason kept on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from crmgraph.background import PollingLoop
from crmgraph.db import queries, writes
from crmgraph.db.engine import Database
from crmgraph.events import Backoff
from crmgraph.ids import encode_id
from crmgraph.observability import metrics
from crmgraph.settings import Settings

logger = logging.getLogger("crmgraph.webhooks")

WEBHOOK_MANAGE = "webhook.manage"

# Request headers; docs/live-events-and-webhooks.md ("Webhooks") documents them for receivers.
EVENT_ID_HEADER = "X-Crmgraph-Event-Id"
EVENT_TYPE_HEADER = "X-Crmgraph-Event-Type"
DELIVERY_HEADER = "X-Crmgraph-Delivery-Id"
ATTEMPT_HEADER = "X-Crmgraph-Attempt"
TIMESTAMP_HEADER = "X-Crmgraph-Timestamp"
SIGNATURE_HEADER = "X-Crmgraph-Signature"
USER_AGENT = "crmgraph-webhooks/1"

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"

# "customer.created", "customer.*" or "*"; plugins define their own event
# types without declaring them, so only the shape can be checked.
EVENT_TYPE_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$")

# Kept of each response body in the delivery log.
RESPONSE_EXCERPT = 1000
# A lease outlives the request's time limit by this much, for the database
# writes that record the outcome; a killed process's lease expires after it.
LEASE_MARGIN_SECONDS = 10.0
# The shortest pause between passes, so a pass that finds work it cannot
# claim (another process holds it) does not spin.
MIN_PAUSE_SECONDS = 0.02


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of
    "<timestamp>.<body>" keyed with the secret>``. The timestamp is signed
    with the body so a captured request cannot be replayed later."""
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    tolerance_seconds: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: the signature matches and is recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).rpartition("v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def matches(patterns: Sequence[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def backoff(settings: Settings) -> Backoff:
    """The retry policy of webhook deliveries: the event dispatcher's, with
    the webhook settings."""
    return Backoff(
        settings.webhook_backoff_seconds,
        settings.webhook_backoff_max_seconds,
        settings.webhook_max_attempts,
    )


def backoff_seconds(settings: Settings, tries: int) -> float:
    """The pause after the ``tries``-th failed attempt of a delivery, before jitter."""
    return backoff(settings).ceiling(tries)


def event_types(value: Any) -> list[str]:
    loaded = orjson.loads(value) if isinstance(value, (str, bytes)) else value
    return [str(item) for item in loaded or ()]


def request_body(row: dict[str, Any]) -> bytes:
    """The JSON a receiver gets: the event, with the customer as its GraphQL ID."""
    created = queries.read_timestamp(row["event_created_at"])
    return orjson.dumps(
        {
            "id": row["event"],
            "type": row["event_type"],
            "createdAt": created.isoformat() if created else None,
            "customerId": encode_id("Customer", row["customer"]) if row["customer"] else None,
            "data": queries.load_json(row["payload"]),
        }
    )


@dataclass
class Outcome:
    """One POST of a leased delivery, to be written."""

    row: dict[str, Any]  # the leased delivery, as lease_due read it
    attempt: int
    started: datetime.datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    excerpt: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def log_row(self, next_at: datetime.datetime | None) -> tuple[Any, ...]:
        """Its ``webhook_attempt`` row, in ``ATTEMPT_COLUMNS`` order."""
        return (
            self.row["id"],
            self.attempt,
            self.started,
            self.duration_ms,
            self.status_code,
            self.error,
            self.excerpt,
            next_at,
        )


ATTEMPT_COLUMNS = (
    "delivery, attempt, started_at, duration_ms, status_code, error, response_body, next_retry_at"
)


# Deliveries a pass may send: pending, of an active webhook, not leased by a
# live process, and not behind an earlier pending delivery of the same webhook
# for the same customer (events without a customer keep no order).
ELIGIBLE = (
    "FROM webhook_delivery d JOIN webhook w ON w.id = d.webhook "
    "WHERE d.status = 'pending' AND w.active = {} "
    "AND (d.locked_until IS NULL OR d.locked_until < {}) "
    "AND NOT EXISTS (SELECT 1 FROM webhook_delivery p WHERE p.webhook = d.webhook "
    "AND p.customer = d.customer AND p.status = 'pending' AND p.event < d.event)"
)


class WebhookDeliverer(PollingLoop):
    """The background task of one server process (the webhooks plugin's
    background service, started in the app's lifespan),
    woken after a write commits and after a replay."""

    task_name = "crmgraph-webhooks"
    failure_message = "webhook delivery pass failed"

    def __init__(self, db: Database, settings: Settings, batch: int = 50) -> None:
        super().__init__(settings.event_poll_seconds, logger)
        self.db = db
        self.settings = settings
        self.batch = batch
        self._client: httpx.AsyncClient | None = None
        self._claims: set[str] = set()

    async def fan_out(self) -> int:
        """Claim a batch of new events and write their deliveries; returns how
        many events were claimed."""
        # a read first: on SQLite the claim's transaction takes the write lock,
        # which an idle server should not do on every poll
        if not await self.db.fetch(
            "SELECT id FROM event WHERE webhooks_claimed_at IS NULL LIMIT 1"
        ):
            return 0
        at = writes.now()
        async with self.db.transaction():
            events = await self.db.fetch(
                "UPDATE event SET webhooks_claimed_at = {} WHERE id IN "
                "(SELECT id FROM event WHERE webhooks_claimed_at IS NULL ORDER BY id LIMIT {}"
                f"{writes.row_locks(self.db)}) "
                "AND webhooks_claimed_at IS NULL RETURNING id, type, customer, created_at",
                at,
                self.batch,
            )
            if not events:
                return 0
            hooks = await self.db.fetch(
                "SELECT id, event_types, created_at FROM webhook WHERE active = {}", True
            )
            rows: list[tuple[Any, ...]] = []
            for event in sorted(events, key=lambda e: e["id"]):
                created = queries.read_timestamp(event["created_at"])
                for hook in hooks:
                    # a webhook receives what happens after it was created, not
                    # older events that were still waiting to be fanned out
                    hook_created = queries.read_timestamp(hook["created_at"])
                    if created and hook_created and created < hook_created:
                        continue
                    if matches(event_types(hook["event_types"]), event["type"]):
                        rows.append((hook["id"], event["id"], event["type"], event["customer"]))
            for start in range(0, len(rows), 200):  # SQLite's bound-parameter limit
                chunk = rows[start : start + 200]
                marks = ", ".join("({}, {}, {}, {}, {}, {}, {}, {})" for _ in chunk)
                values = [v for row in chunk for v in (*row, PENDING, at, at, at)]
                await self.db.fetch(
                    "INSERT INTO webhook_delivery (webhook, event, event_type, customer, status, "
                    f"next_attempt_at, created_at, updated_at) VALUES {marks} "
                    "ON CONFLICT (webhook, event) DO NOTHING",
                    *values,
                )
        return len(events)

    async def lease_due(self) -> tuple[str, list[dict[str, Any]]]:
        """Lease the deliveries due now; returns the claim token and their rows
        with what sending needs (URL, secret, event)."""
        at = writes.now()
        token = secrets.token_hex(16)
        # a read first, as in fan_out: the lease is a write
        if not await self.db.fetch(
            f"SELECT d.id {ELIGIBLE} AND d.next_attempt_at <= {{}} LIMIT 1", True, at, at
        ):
            return token, []
        lease = at + datetime.timedelta(
            seconds=self.settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
        )
        claimed = await self.db.fetch(
            "UPDATE webhook_delivery SET locked_until = {}, claim = {} WHERE id IN "
            f"(SELECT d.id {ELIGIBLE} AND d.next_attempt_at <= {{}} "
            "ORDER BY d.event, d.id LIMIT {}) "
            "AND status = 'pending' AND (locked_until IS NULL OR locked_until < {}) RETURNING id",
            lease,
            token,
            True,
            at,
            at,
            self.batch,
            at,
        )
        if not claimed:
            return token, []
        self._claims.add(token)
        rows = await self.db.fetch(
            "SELECT d.*, w.url, w.secret, e.payload, e.created_at AS event_created_at "
            "FROM webhook_delivery d JOIN webhook w ON w.id = d.webhook "
            "JOIN event e ON e.id = d.event WHERE d.claim = {} ORDER BY d.event",
            token,
        )
        return token, rows

    async def deliver_due(self) -> int:
        """Send every delivery due now, concurrently (at most one per webhook
        and customer, so the order holds), then write the outcomes; returns
        how many were sent."""
        token, rows = await self.lease_due()
        if not rows:
            return 0
        sent: list[Outcome] = []

        async def send(row: dict[str, Any]) -> None:
            sent.append(await self.attempt(row))

        try:
            results = await asyncio.gather(*(send(row) for row in rows), return_exceptions=True)
        finally:
            # also when stop() cuts the pass short: what was sent is not sent again
            await self.record_all(sent)
        # only after a whole pass: stop() hands back what a pass cut short left leased
        self._claims.discard(token)
        for result in results:
            if isinstance(result, Exception):
                logger.error("sending a webhook delivery failed", exc_info=result)
        return len(rows)

    async def record_all(self, sent: list[Outcome]) -> None:
        """Each failure in its transaction, then the pass's successes in one
        (a success resets its webhook's failure count, whichever of the
        pass's concurrent requests ended first). A write that fails is logged:
        its lease expires and the delivery is sent again."""
        successes = [o for o in sent if o.ok]
        for outcome in (o for o in sent if not o.ok):
            await self._logged(self.record_failure(outcome))
        if successes:
            await self._logged(self.record_successes(successes))

    @staticmethod
    async def _logged(write: Awaitable[None]) -> None:
        try:
            await write
        except Exception:
            logger.exception("recording a webhook attempt failed")

    async def attempt(self, row: dict[str, Any]) -> Outcome:
        body = request_body(row)
        attempt = row["attempts"] + 1
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_ID_HEADER: str(row["event"]),
            EVENT_TYPE_HEADER: row["event_type"],
            DELIVERY_HEADER: str(row["id"]),
            ATTEMPT_HEADER: str(attempt),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(row["secret"], timestamp, body),
        }
        started = writes.now()
        clock = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        excerpt: str | None = None
        try:
            # the whole exchange within the time limit (httpx's limit is per
            # read), so the lease always outlives it
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                excerpt, status_code = await self._post(row["url"], body, headers)
        except TimeoutError:
            error = f"timed out after {self.settings.webhook_timeout_seconds:g}s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        duration_ms = round((time.monotonic() - clock) * 1000)
        return Outcome(row, attempt, started, duration_ms, status_code, error, excerpt)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int]:
        assert self._client is not None, "start() the deliverer first"
        async with self._client.stream("POST", url, content=body, headers=headers) as response:
            received = b""
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) >= RESPONSE_EXCERPT:
                    break  # a receiver's long answer is not ours to download
            return received[:RESPONSE_EXCERPT].decode(errors="replace"), response.status_code

    async def record_failure(self, outcome: Outcome) -> None:
        """A failed attempt: the delivery retried later or failed for good,
        its log row and, when it failed for good, the webhook's failure count,
        in one transaction, only while the lease is still ours."""
        settings = self.settings
        at = writes.now()
        row = outcome.row
        tries = outcome.attempt - row["round_start"]
        policy = backoff(settings)
        if policy.exhausted(tries):
            status, next_at = FAILED, None
        else:
            status = PENDING
            next_at = at + datetime.timedelta(seconds=policy.pause(tries))
        failure = outcome.error or f"HTTP {outcome.status_code}"
        async with self.db.transaction():
            owned = await self.db.fetch(
                "UPDATE webhook_delivery SET status = {}, attempts = {}, next_attempt_at = {}, "
                "locked_until = NULL, claim = NULL, last_status_code = {}, last_error = {}, "
                "updated_at = {}, delivered_at = NULL WHERE id = {} AND claim = {} RETURNING id",
                status,
                outcome.attempt,
                next_at,
                outcome.status_code,
                failure,
                at,
                row["id"],
                row["claim"],
            )
            if not owned:
                # the lease ran out (another process took the delivery over) or
                # the webhook was deleted: its state is someone else's to write
                return
            await self.log_attempts([outcome.log_row(next_at)])
            if status == FAILED:
                await self._count_failure(row["webhook"], tries, failure, at)
        metrics.webhook_delivery("failed" if status == FAILED else "retrying")

    async def record_successes(self, outcomes: list[Outcome]) -> None:
        """Successful attempts of one lease, in one transaction of a fixed
        number of statements: their deliveries marked succeeded (one UPDATE
        per status code and attempt number, nearly always one), only while
        the lease is still ours; their log rows; their webhooks' failure
        counts reset."""
        at = writes.now()
        groups: dict[tuple[int | None, int], list[Outcome]] = {}
        for outcome in outcomes:
            groups.setdefault((outcome.status_code, outcome.attempt), []).append(outcome)
        async with self.db.transaction():
            owned: set[int] = set()
            for (status_code, attempt), group in groups.items():
                ids = [o.row["id"] for o in group]
                marks = ", ".join("{}" for _ in ids)
                rows = await self.db.fetch(
                    "UPDATE webhook_delivery SET status = {}, attempts = {}, "
                    "next_attempt_at = NULL, locked_until = NULL, claim = NULL, "
                    "last_status_code = {}, last_error = NULL, updated_at = {}, delivered_at = {} "
                    f"WHERE claim = {{}} AND id IN ({marks}) RETURNING id",
                    SUCCEEDED,
                    attempt,
                    status_code,
                    at,
                    at,
                    group[0].row["claim"],
                    *ids,
                )
                owned.update(row["id"] for row in rows)
            # the others' leases ran out (another process took them over) or
            # their webhooks were deleted: their state is someone else's to write
            kept = [o for o in outcomes if o.row["id"] in owned]
            if not kept:
                return
            await self.log_attempts([o.log_row(None) for o in kept])
            hooks = sorted({o.row["webhook"] for o in kept})
            await self.db.fetch(
                "UPDATE webhook SET consecutive_failures = 0 WHERE consecutive_failures <> 0 "
                f"AND id IN ({', '.join('{}' for _ in hooks)})",
                *hooks,
            )
        metrics.webhook_delivery("succeeded", len(kept))

    async def log_attempts(self, rows: list[tuple[Any, ...]]) -> None:
        """Rows of the delivery log, 100 a statement (8 parameters each:
        SQLite's bound-parameter limit)."""
        for start in range(0, len(rows), 100):
            chunk = rows[start : start + 100]
            marks = ", ".join("({}, {}, {}, {}, {}, {}, {}, {})" for _ in chunk)
            await self.db.fetch(
                f"INSERT INTO webhook_attempt ({ATTEMPT_COLUMNS}) VALUES {marks}",
                *(value for row in chunk for value in row),
            )

    async def _count_failure(
        self, webhook: int, tries: int, failure: str, at: datetime.datetime
    ) -> None:
        counted = await self.db.fetch(
            "UPDATE webhook SET consecutive_failures = consecutive_failures + 1, updated_at = {} "
            "WHERE id = {} RETURNING consecutive_failures, active",
            at,
            webhook,
        )
        limit = self.settings.webhook_disable_after
        if counted and counted[0]["active"] and counted[0]["consecutive_failures"] >= limit:
            reason = (
                f"disabled automatically after {counted[0]['consecutive_failures']} consecutive "
                f"failed deliveries (each tried {tries} times); the last failed with: {failure}"
            )
            await self.db.fetch(
                "UPDATE webhook SET active = {}, disabled_at = {}, disabled_reason = {} "
                "WHERE id = {}",
                False,
                at,
                reason,
                webhook,
            )
            logger.warning("webhook %s %s", webhook, reason)

    async def pause(self) -> float:
        """Seconds until the next delivery this process could send falls due,
        at most the poll interval (other processes' writes are seen by polling)."""
        at = writes.now()
        rows = await self.db.fetch(f"SELECT MIN(d.next_attempt_at) AS due {ELIGIBLE}", True, at)
        due = queries.read_timestamp(rows[0]["due"]) if rows else None
        if due is None:
            return self.poll_seconds
        return min(max((due - at).total_seconds(), MIN_PAUSE_SECONDS), self.poll_seconds)

    async def run_once(self) -> tuple[int, int]:
        """One fan-out and one sending pass: (events claimed, deliveries sent)."""
        return await self.fan_out(), await self.deliver_due()

    async def run_pass(self) -> float:
        fanned, sent = await self.run_once()
        if fanned == self.batch or sent == self.batch:
            return 0  # more waiting: no pause
        return await self.pause()

    def open_client(self) -> None:
        """The HTTP client sending needs (``start`` opens it; a test running
        passes by hand, without the loop, opens it alone; ``stop`` closes it)."""
        # no proxies from the environment: receivers are addressed directly
        self._client = httpx.AsyncClient(
            timeout=self.settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
        )

    async def start(self) -> None:
        self.open_client()
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        # hand back what this process leased but did not finish, so another
        # process (or the next start) sends it now rather than after the lease
        for token in list(self._claims):
            with contextlib.suppress(Exception):
                await self.db.fetch(
                    "UPDATE webhook_delivery SET locked_until = NULL, claim = NULL "
                    "WHERE claim = {}",
                    token,
                )
        self._claims.clear()
        if self._client is not None:
            await self._client.aclose()
