"""Revocations and team changes told to every server process through Redis.

A key revoked with ``crmgraph keys revoke`` (another process) would stay in a
server's principal cache until the entry expires. With ``CRMGRAPH_REDIS_URL``
the command publishes the prefix on a channel of the database, and every
server listening forgets it at once; ``*`` stands for every key (a team
change). If the channel is lost a server forgets everything, since it may have
missed a message, and subscribes again; the cache's time limit still bounds
what a lost message can cost.

Open WebSocket connections hold the principal their key had when they were
opened. :class:`LiveSessions` reads those principals again whenever this
process forgets a key (a revocation or team change here, or one heard through
Redis) and at least every ``CRMGRAPH_API_KEY_CACHE_SECONDS`` (1 s without the
cache): the bound HTTP has. A connection whose key was revoked (or whose user
is gone) is closed with code 4403 and the reason "API key revoked", and no
event reaches it after that. A user whose role or teams changed keeps the
connection under the new rights: row scope applies to the next event, and each
live subscription checks its fields again at once, ending with a FORBIDDEN
error if the new role may not read one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crmgraph import principal_cache
from crmgraph.auth import PRINCIPAL_ROWS, Principal, principals_of
from crmgraph.background import wait_for_event
from crmgraph.db.engine import Database
from crmgraph.settings import Settings

if TYPE_CHECKING:
    from crmgraph.redis_link import RedisLink, Subscription

logger = logging.getLogger("crmgraph.auth")

EVERY_KEY = "*"


def channel_for(database_url: str) -> str:
    """One channel per database: deployments sharing a Redis do not hear each other."""
    return "crmgraph:auth:" + hashlib.sha256(database_url.encode()).hexdigest()[:16]


async def announce(settings: Settings, prefix: str | None) -> bool:
    """Tell every listening server to forget ``prefix`` (None: every key).

    The change is already committed when this runs, so Redis being away must
    not fail the command: servers then learn it within the principal cache's
    time limit (and open connections at their periodic re-check). Returns
    whether the announcement went out."""
    if not settings.redis_url:
        return True
    import redis.asyncio as redis

    from crmgraph.redis_link import REDIS_ERRORS, TIMEOUT_SECONDS, safe_url

    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
    )
    try:
        await client.publish(channel_for(settings.database_url), prefix or EVERY_KEY)
    except REDIS_ERRORS as exc:
        logger.warning(
            "could not announce the change on Redis at %s (%s): servers apply it within "
            "CRMGRAPH_API_KEY_CACHE_SECONDS",
            safe_url(settings.redis_url),
            exc,
        )
        return False
    finally:
        await client.aclose()
    return True


def forget(message: bytes) -> None:
    prefix = message.decode(errors="replace")
    principal_cache.forget(None if prefix == EVERY_KEY else prefix)


def listener_for(settings: Settings, link: RedisLink | None) -> Subscription | None:
    """The app's listener for API key changes, when it caches principals and
    has Redis. Redis away at start: the server starts degraded and the
    listener subscribes once it is back; having lost the channel it forgets
    every key (it may have missed a message), and again once subscribed."""
    if link is None or settings.api_key_cache_seconds <= 0:
        return None
    from crmgraph.redis_link import Subscription

    return Subscription(
        link,
        channel_for(settings.database_url),
        forget,
        name="crmgraph-auth-redis",
        on_missed=principal_cache.forget,
    )


# ---------------------------------------------------------------------------
# Open WebSocket connections


REVOKED_CLOSE_CODE = 4403  # graphql-transport-ws: Forbidden
REVOKED_REASON = "API key revoked"
NO_CACHE_RECHECK_SECONDS = 1.0
PREFIXES_PER_STATEMENT = 500


@dataclass(eq=False)
class Session:
    """One WebSocket connection whose principal is watched."""

    context: weakref.ref[Any]  # the connection's context, shared by its operations
    prefix: str
    db: Database
    watcher: LiveSessions
    closed: bool = False
    # one per live subscription: makes it check its fields again
    wakers: set[Callable[[], None]] = field(default_factory=set)

    def wake(self) -> None:
        for waker in list(self.wakers):
            waker()


class LiveSessions:
    """This event loop's watched connections (one per app in practice)."""

    def __init__(self) -> None:
        self.sessions: dict[int, Session] = {}
        self.changed = asyncio.Event()
        # changes heard; settled once a re-check that began after the last of
        # them finished: an event is delivered only once every change heard
        # before it has been applied
        self.generation = 0
        self.settled = asyncio.Event()
        self.settled.set()
        self.loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None

    def track(self, context: Any) -> Session:
        session = self.sessions.get(id(context))
        if session is not None:
            return session
        session = Session(weakref.ref(context), context.principal.key_prefix, context.db, self)
        self.sessions[id(context)] = session
        weakref.finalize(context, self.sessions.pop, id(context), None)
        # read at once (the key may have changed since connection_init), without
        # holding up other connections' events as a heard change does
        self.changed.set()
        if self._task is None or self._task.done():
            seconds = context.settings.api_key_cache_seconds
            interval = seconds if seconds > 0 else NO_CACHE_RECHECK_SECONDS
            # a context of its own: not the request's statement counter or transaction
            self._task = self.loop.create_task(
                self._watch(interval), name="crmgraph-live-sessions", context=contextvars.Context()
            )
        return session

    def mark_changed(self) -> None:
        self.generation += 1
        self.settled.clear()
        self.changed.set()

    def signal(self) -> None:
        """From any thread: something about keys or users changed."""
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self.loop.call_soon_threadsafe(self.mark_changed)

    async def _watch(self, interval: float) -> None:
        while self.sessions:
            await wait_for_event(self.changed, interval)
            self.changed.clear()
            started = self.generation
            try:
                await self.recheck()
            except Exception:  # the database away for a moment: try again next time
                logger.exception("open connections: re-reading their API keys failed")
            if started == self.generation:  # nothing heard while re-checking
                self.settled.set()
        self.settled.set()  # nobody left to wait

    async def recheck(self) -> None:
        by_db: dict[int, list[Session]] = {}
        for session in list(self.sessions.values()):
            if not session.closed and session.context() is not None:
                by_db.setdefault(id(session.db), []).append(session)
        for sessions in by_db.values():
            current = await current_principals(sessions[0].db, {s.prefix for s in sessions})
            for session in sessions:
                await self.apply(session, current.get(session.prefix))

    async def apply(self, session: Session, principal: Principal | None) -> None:
        context = session.context()
        if context is None or session.closed:
            return
        if principal is None:
            session.closed = True  # before closing: not one more event
            self.sessions.pop(id(context), None)
            session.wake()
            with contextlib.suppress(Exception):  # already closing
                await context.request.close(code=REVOKED_CLOSE_CODE, reason=REVOKED_REASON)
            return
        if principal != context.principal:
            context.principal = principal
            context.access = context.access.policy.access(principal)
            session.wake()


async def current_principals(db: Database, prefixes: Iterable[str]) -> dict[str, Principal]:
    """The principal of each key that is still valid (not revoked, its user there)."""
    found: dict[str, Principal] = {}
    ordered = sorted(prefixes)
    for start in range(0, len(ordered), PREFIXES_PER_STATEMENT):
        chunk = ordered[start : start + PREFIXES_PER_STATEMENT]
        rows = await db.fetch(
            f"{PRINCIPAL_ROWS} WHERE k.revoked_at IS NULL "
            f"AND k.prefix IN ({', '.join('{}' for _ in chunk)})",
            *chunk,
        )
        found.update(principals_of(rows))
    return found


_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LiveSessions] = (
    weakref.WeakKeyDictionary()
)
_sessions_lock = threading.Lock()  # forget() may run on another thread than the loops


def session_of(context: Any) -> Session | None:
    """The watched session of a WebSocket operation's context (tracked from
    its first operation on); None over HTTP, where every request authenticates,
    and for the anonymous development caller."""
    request = getattr(context, "request", None)
    if getattr(request, "scope", {}).get("type") != "websocket":
        return None
    principal = getattr(context, "principal", None)
    if principal is None or principal.key_prefix is None:
        return None
    loop = asyncio.get_running_loop()
    sessions = _sessions.get(loop)
    if sessions is None:
        with _sessions_lock:
            sessions = _sessions[loop] = LiveSessions()
    return sessions.track(context)


def _signal_every_loop(prefix: str | None) -> None:
    with _sessions_lock:
        every = list(_sessions.values())
    for sessions in every:
        if sessions.sessions:
            sessions.signal()


principal_cache.on_forget(_signal_every_loop)
