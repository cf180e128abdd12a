"""A limit on the size of HTTP request bodies, as pure ASGI middleware.

A GraphQL request is parsed whole, so a body of any size would be held in
memory and parsed before any query limit could look at it. Refused with 413
and a GraphQL-shaped error body:

* up front, from ``Content-Length``, without reading the body at all;
* while reading, for bodies without ``Content-Length`` (chunked uploads) or
  that turn out longer than declared.

The body is read here before the application runs (bodies are small: a
request is at most the limit), so the application never sees a partial body
and the refusal can always be sent before any response has started.
WebSocket and lifespan traffic pass straight through. A multipart request
(a file upload) has its own, larger limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


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


class BodySizeLimit:
    """Wrap an ASGI app: ``Middleware(BodySizeLimit, max_body_bytes=N)`` in
    Starlette, or ``BodySizeLimit(app, N)``. A limit of 0 (or less) switches it off."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes or max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_body_bytes <= 0:
            await self.app(scope, receive, send)
            return
        limit = self.max_upload_bytes if is_multipart(scope) else self.max_body_bytes
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await self.refuse(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; there is no one to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self.refuse(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, self.replay(b"".join(chunks), receive), send)

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
        body = orjson.dumps(
            {
                "errors": [
                    {
                        "message": "request body too large",
                        "extensions": {"code": "BODY_TOO_LARGE", "limit": limit},
                    }
                ]
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # the rest of the body is left unread: the connection cannot be reused
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
