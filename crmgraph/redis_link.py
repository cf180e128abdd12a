"""Redis for several workers, and what a worker does while Redis is away.

With ``CRMGRAPH_REDIS_URL`` Redis holds the rate limit's budgets (shared by
every worker) and carries live events and API key changes between workers.
No data lives there, so losing Redis must not take the API down: every use
goes through one :class:`RedisLink`, which knows whether Redis answered last
time. While it is away (unreachable at start, or lost later) the server runs
*degraded*:

* rate limits are kept per process (a key may spend its budget once in each
  worker while Redis is away);
* live events go to the subscribers of the process that claimed them, not to
  those connected to other workers;
* API key changes announced by other processes are not heard: the principal
  cache's time limit bounds how long a revoked key still works;
* automatic persisted queries are known per process (a client re-sends a
  text the process has not seen, crmgraph.persisted_queries.store);
* ``/readyz`` still answers 200 (every worker would be equally "unready", and a
  load balancer taking them all out turns a degraded service into an outage),
  with ``"redis": "degraded"`` for monitoring.

A warning is logged when Redis is lost and when it is back. While it is away
it is tried again at most once every :data:`RETRY_SECONDS` (so requests do not
each wait for a connection attempt), and subscriptions resubscribe on their
own; the shared behaviour resumes as soon as it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.exceptions import RedisError

logger = logging.getLogger("crmgraph.redis")

RETRY_SECONDS = 1.0
# a connection attempt or a command that takes longer counts as Redis being away
TIMEOUT_SECONDS = 2.0
# what a Redis call raises when Redis is away (redis-py's own ConnectionError
# and TimeoutError are RedisErrors, not the builtins)
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

DEGRADED = (
    "rate limits per process, live events to this process's subscribers only, "
    "API key changes of other processes bounded by the key cache's time limit, "
    "persisted queries per process"
)


def safe_url(url: str) -> str:
    """The URL without its password, for the log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisLink:
    """One Redis client and whether Redis answered its last call, shared by
    everything in the process that uses Redis."""

    def __init__(self, url: str, retry_seconds: float = RETRY_SECONDS) -> None:
        self.url = url
        self.client: Any = redis.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
        )
        self.retry_seconds = retry_seconds
        self.lost_at: float | None = None  # time.monotonic() when it went away
        self._next_try = 0.0

    @property
    def degraded(self) -> bool:
        return self.lost_at is not None

    def worth_trying(self) -> bool:
        """While Redis is away, True for one caller every ``retry_seconds`` (it
        probes); the others go degraded at once instead of each waiting for a
        connection attempt."""
        if self.lost_at is None:
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self.retry_seconds
        return True

    def lost(self, error: BaseException, doing: str) -> None:
        now = time.monotonic()
        self._next_try = now + self.retry_seconds
        if self.lost_at is None:
            self.lost_at = now
            logger.warning(
                "Redis at %s is unavailable while %s (%s): running degraded (%s) until it is back",
                safe_url(self.url),
                doing,
                error.__class__.__name__ + (f": {error}" if str(error) else ""),
                DEGRADED,
            )

    def answered(self) -> None:
        if self.lost_at is not None:
            logger.warning(
                "Redis at %s is back after %.1f s: shared rate limits and live events again",
                safe_url(self.url),
                time.monotonic() - self.lost_at,
            )
            self.lost_at = None

    async def ping(self) -> bool:
        """Whether Redis answers (``/readyz``); while it is away, asked only
        when a probe is due, so a load balancer's checks do not each wait."""
        if not self.worth_trying():
            return False
        try:
            await self.client.ping()
        except REDIS_ERRORS as error:
            self.lost(error, "answering a ping")
            return False
        self.answered()
        return True

    async def close(self) -> None:
        await self.client.aclose()


class Subscription:
    """A Redis channel listened to while it runs: subscribed again each time
    Redis comes back, every message handed to ``on_message``. ``listening``
    says whether messages published now reach it.

    ``on_missed`` is called each time, after it first listened, the channel is
    lost or an attempt to subscribe again fails, and once it is subscribed
    again: messages published in between were not heard."""

    def __init__(
        self,
        link: RedisLink,
        channel: str,
        on_message: Callable[[bytes], None],
        name: str,
        on_missed: Callable[[], None] | None = None,
    ) -> None:
        self.link = link
        self.channel = channel
        self.on_message = on_message
        self.name = name
        self.on_missed = on_missed
        self.listening = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        missed = False  # lost the channel after listening on it
        while True:
            pubsub = self.link.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.listening = True
                self.link.answered()
                if missed:
                    missed = False
                    self.missed()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
                    if message is not None and message.get("type") == "message":
                        self.handle(message["data"])
            except REDIS_ERRORS as error:
                self.link.lost(error, f"listening on {self.channel}")
                if self.listening or missed:
                    missed = True
                    self.missed()
            finally:
                self.listening = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(self.link.retry_seconds)  # a pause between attempts

    def missed(self) -> None:
        if self.on_missed is not None:
            self.on_missed()

    def handle(self, data: bytes) -> None:
        try:
            self.on_message(data)
        except Exception:  # one bad message must not end the listening
            logger.exception("%s: a message on %s could not be handled", self.name, self.channel)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
