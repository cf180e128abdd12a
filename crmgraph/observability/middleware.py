"""The outermost ASGI layer: one request id and one :class:`RequestFacts` per request.

Every HTTP request (the ``POST /graphql`` short-cut included) and every
WebSocket goes through :class:`RequestObservation` first. It names the
request (the client's ``X-Request-Id`` when it is a sane one, so a proxy's id
follows the request through; otherwise a new one), returns that id in the
response's ``X-Request-Id`` header, and keeps the request's facts current
while it runs, so deeper code can record what only it knows and every log
line can carry the id. Once the response is sent, each observer (access
log, metrics, the request's span) reads the facts; an observer that fails is
logged and never changes the answer.

A WebSocket gets an id too (in the ``websocket.accept`` headers, and on
every log line while it is open), but no observer call: a connection that
lives for hours is not a request, and would only distort request durations.

Written as a raw ASGI wrapper, not Starlette middleware: it sits in front
of the ``POST /graphql`` short-cut that skips Starlette (crmgraph.app.CRMApp),
and costs one coroutine and a header scan per request.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from crmgraph.observability.request_facts import Observer, RequestFacts, begin, end

logger = logging.getLogger("crmgraph.observability")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER = b"x-request-id"
# what a client may name its request: short, and nothing a log line or a
# header could be confused by (no spaces, quotes, newlines, control characters)
SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def internal_error() -> Message:
    return {
        "type": "http.response.start",
        "status": 500,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")],
    }


def request_id(scope: Scope) -> str:
    """The client's ``X-Request-Id`` when it is sane, otherwise a new one."""
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            if SANE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    # 128 random bits as 32 hex digits, like uuid4().hex. An id must be unique,
    # not secret: the process's Mersenne Twister (seeded from the OS, and
    # again in a forked child) makes one in a tenth of a microsecond, where
    # uuid4's os.urandom is a system call (several microseconds here)
    return f"{random.getrandbits(128):032x}"


class RequestObservation:
    """``observers`` is read at each request's end, so what is appended to it
    after start-up (the metrics, the access log) observes from then on."""

    def __init__(self, app: ASGIApp, observers: Sequence[Observer]) -> None:
        self.app = app
        self.observers = observers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        facts = RequestFacts(request_id(scope), scope.get("method", ""), scope.get("path", ""))
        id_header = (HEADER, facts.request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                facts.status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        token = begin(facts)
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException as exc:
            # The facts stay current: the server logs the exception next, in
            # this request's own task (uvicorn runs one per request), and its
            # line carries the request id.
            facts.outcome = "failed"
            if facts.status is None and isinstance(exc, Exception):  # not a cancellation
                # answered here rather than by the server, so the client gets
                # the id to report too (Starlette's 500 already carries it)
                with contextlib.suppress(Exception):  # the client left: the fault still counts
                    await send_with_id(internal_error())
                    await send({"type": "http.response.body", "body": b"Internal Server Error"})
            elif facts.status < 500:
                facts.status = 500
            self.observe(facts)
            raise
        if facts.status is not None and facts.status >= 500:
            facts.outcome = "failed"
        self.observe(facts)
        end(token)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        facts = RequestFacts(request_id(scope), "WEBSOCKET", scope.get("path", ""))
        id_header = (HEADER, facts.request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        token = begin(facts)
        await self.app(scope, receive, send_with_id)
        end(token)

    def observe(self, facts: RequestFacts) -> None:
        for observer in self.observers:
            try:
                observer(facts)
            except Exception:  # an observer's fault never becomes the client's
                logger.exception("request observer %r failed", observer)
