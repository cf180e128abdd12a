"""Revocations and team changes told to every server process through Redis.

A key revoked with ``crmgraph keys revoke`` (another process) would stay in a
server's principal cache until the entry expires. With ``CRMGRAPH_REDIS_URL``
the command publishes the prefix on a channel of the database, and every
server listening forgets it at once; ``*`` stands for every key (a team
change). If the channel is lost a server forgets everything, since it may have
missed a message, and subscribes again; the cache's time limit still bounds
what a lost message can cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import Any

from crmgraph import principal_cache
from crmgraph.settings import Settings

logger = logging.getLogger("crmgraph.auth")

EVERY_KEY = "*"
RETRY_SECONDS = 1.0


def channel_for(database_url: str) -> str:
    """One channel per database: deployments sharing a Redis do not hear each other."""
    return "crmgraph:auth:" + hashlib.sha256(database_url.encode()).hexdigest()[:16]


async def announce(settings: Settings, prefix: str | None) -> None:
    """Tell every listening server to forget ``prefix`` (None: every key)."""
    if not settings.redis_url:
        return
    import redis.asyncio as redis

    client = redis.Redis.from_url(settings.redis_url)
    try:
        await client.publish(channel_for(settings.database_url), prefix or EVERY_KEY)
    finally:
        await client.aclose()


def forget(message: bytes) -> None:
    prefix = message.decode(errors="replace")
    principal_cache.forget(None if prefix == EVERY_KEY else prefix)


class AuthChangeListener:
    """Started with the app when it caches principals and has a Redis URL."""

    def __init__(self, url: str, database_url: str) -> None:
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url)
        self.channel = channel_for(database_url)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self.client.pubsub()
        await pubsub.subscribe(self.channel)
        self._task = asyncio.create_task(self._listen(pubsub), name="crmgraph-auth-redis")

    async def _listen(self, pubsub: Any) -> None:
        import redis

        try:
            while True:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
                except (redis.RedisError, OSError, TimeoutError):
                    logger.exception("API key changes: lost the Redis channel; resubscribing")
                    principal_cache.forget()
                    await asyncio.sleep(RETRY_SECONDS)
                    with contextlib.suppress(Exception):
                        await pubsub.subscribe(self.channel)
                        # what was cached while unsubscribed may have missed a message
                        principal_cache.forget()
                    continue
                if message is not None and message.get("type") == "message":
                    forget(message["data"])
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()


def listener_for(settings: Settings) -> AuthChangeListener | None:
    if not settings.redis_url or settings.api_key_cache_seconds <= 0:
        return None
    return AuthChangeListener(settings.redis_url, settings.database_url)
