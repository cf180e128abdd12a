"""A limit on the size of HTTP request bodies, as pure ASGI middleware.

A GraphQL request is parsed whole, so a body of any size would be held in
memory and parsed before any query limit could look at it. The limit sits on
``/graphql`` *inside* authentication: a request without a valid key gets its
401 (and a wrong path or method its 404/405, from the router) before a byte
of its body is read. Then a body over the limit is refused with 413 and a
GraphQL-shaped error body:

* up front, from ``Content-Length``, without reading the body at all;
* while the application reads it, for bodies without ``Content-Length``
  (chunked uploads) or that turn out longer than declared: the read fails
  with :class:`BodyTooLarge` and this middleware answers (every reader of a
  body here reads all of it before it starts a response).

Nothing is buffered here: the body streams to its reader (a multipart file
goes to a spooled temporary file, not memory). A multipart request (a file
for ``importCustomers``) has the larger upload limit only when the caller may
import (``may_upload``); anyone else gets the ordinary limit. Each caller may
have :data:`UPLOADS_PER_CALLER` uploads in flight; another is refused with 429
before it is read, so one key cannot hold the server busy with many at once.
WebSocket and lifespan traffic pass straight through.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from crmgraph.observability import request_facts
from crmgraph.settings import DEFAULTS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = DEFAULTS.max_body_bytes  # CRMGRAPH_MAX_BODY_BYTES's default
UPLOADS_PER_CALLER = 2


class BodyTooLarge(Exception):
    """Raised by the limited ``receive`` once the body passes the limit.
    Not a ValueError: strawberry turns those into a 400 about the form."""


class ClientLeft(Exception):
    """Raised by the limited ``receive`` when the client disconnects before
    sending the whole body (an abandoned upload): nothing to answer or log."""


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server itself rejects a malformed header
    return None


def is_multipart(scope: Scope) -> bool:
    return any(
        name == b"content-type" and value.lower().startswith(b"multipart/form-data")
        for name, value in scope.get("headers", ())
    )


def caller_of(scope: Scope) -> Any:
    """Who authentication let in (None before it, or without it)."""
    return scope.get("state", {}).get("principal")


def error_body(message: str, code: str, **extensions: Any) -> bytes:
    return orjson.dumps(
        {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
    )


async def send_error(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # the rest of the body is left unread: the connection cannot be reused
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Wrap an ASGI app: ``BodySizeLimit(app, N)``; ``max_upload_bytes`` for
    multipart requests of callers ``may_upload`` accepts (by default none).
    A limit of 0 (or less) switches it off."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_upload_bytes: int | None = None,
        may_upload: Callable[[Any], bool] = lambda caller: False,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes or max_body_bytes
        self.may_upload = may_upload
        self.uploads: Counter[Any] = Counter()  # caller -> uploads in flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_body_bytes <= 0:
            await self.app(scope, receive, send)
            return
        caller = caller_of(scope)
        multipart = is_multipart(scope)
        upload = multipart and caller is not None and self.may_upload(caller)
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        if multipart and not upload:  # a file it may not import: no more than either limit
            limit = min(limit, self.max_upload_bytes)
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await self.refuse(send, limit)
            return
        if not upload:
            await self.limited(scope, receive, send, limit)
            return
        if self.uploads[caller] >= UPLOADS_PER_CALLER:
            message = f"at most {UPLOADS_PER_CALLER} uploads at a time per API key"
            request_facts.note_refusal("TOO_MANY_UPLOADS")
            await send_error(send, 429, error_body(message, "TOO_MANY_UPLOADS"))
            return
        self.uploads[caller] += 1
        try:
            await self.limited(scope, receive, send, limit)
        finally:
            self.uploads[caller] -= 1
            if not self.uploads[caller]:
                del self.uploads[caller]

    async def limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app with a ``receive`` that counts; past ``limit`` it fails
        the read and the app's caller here answers 413."""
        size = 0
        complete = started = False

        async def counted() -> Message:
            nonlocal size, complete
            message = await receive()
            if complete:
                return message  # after the body: a disconnect, as the reader expects it
            if message["type"] == "http.disconnect":
                raise ClientLeft
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge
            complete = not message.get("more_body", False)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except ClientLeft:
            return  # mid-body: there is no one to answer
        except BodyTooLarge:
            if started:
                raise  # cannot happen: every reader here reads the body before answering
            await self.refuse(send, limit)

    @staticmethod
    def replay(body: bytes, receive: Receive) -> Receive:
        """The body in one message, then the real channel (for disconnects)."""
        pending = True

        async def replayed() -> Message:
            nonlocal pending
            if pending:
                pending = False
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replayed

    async def refuse(self, send: Send, limit: int) -> None:
        message = "request body too large"
        request_facts.note_refusal("BODY_TOO_LARGE")
        await send_error(send, 413, error_body(message, "BODY_TOO_LARGE", limit=limit))
