"""``Idempotency-Key`` for POST /graphql: a retried request with the same key
gets the first response and writes nothing new.

The key is reserved (a unique row) before the request runs, so two copies
sent at once cannot both execute: the second gets 409 while the first is in
flight, then the stored response. A key reused for a different request body
gets 422. A request that crashes frees its key so it can be retried, and so
does one whose mutations were all dry runs (``dryRun: true``: nothing kept).

Records expire after ``CRMGRAPH_IDEMPOTENCY_TTL_HOURS`` (a key may then be
used again), and a reservation left pending by a server that died mid-request
after ``ABANDONED_AFTER``; expired rows are purged as requests come in.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crmgraph.db import writes
from crmgraph.db.engine import Database

HEADER = b"idempotency-key"
# the request's scope state: which kinds of mutation fields it ran ("dry",
# "real"); a request that ran dry runs only leaves its key unused
MUTATIONS_RAN = "crmgraph.mutations_ran"
MAX_KEY_LENGTH = 255
ABANDONED_AFTER = datetime.timedelta(minutes=10)
PURGE_EVERY = 500  # reservations between two purges of every expired record


def error_body(message: str, code: str) -> bytes:
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


async def send_response(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"idempotent-replay", b"true")]
            if status == 200
            else [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class IdempotentRequests:
    """ASGI wrapper around the GraphQL endpoint."""

    def __init__(self, app: ASGIApp, db: Database, ttl_hours: float = 24) -> None:
        self.app = app
        self.db = db
        self.ttl = datetime.timedelta(hours=ttl_hours)
        self.reservations = 0

    async def expire(self, scoped: str | None) -> None:
        """Drop expired records: this key's now, everyone's every PURGE_EVERY calls."""
        now = writes.now()
        where = "(created_at < {} OR (status = 'pending' AND created_at < {}))"
        args: list[Any] = [now - self.ttl, now - ABANDONED_AFTER]
        if scoped is not None:
            where += " AND key = {}"
            args.append(scoped)
        await self.db.fetch(f"DELETE FROM idempotency_record WHERE {where}", *args)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = dict(scope.get("headers") or ()).get(HEADER) if scope["type"] == "http" else None
        if key is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            await send_response(
                send, 400, error_body("Idempotency-Key must be 1 to 255 characters", "BAD_KEY")
            )
            return
        body = await read_body(receive)
        digest = hashlib.sha256(body).hexdigest()
        principal = scope.get("state", {}).get("principal")
        owner = principal.key_prefix if principal and principal.key_prefix else "anonymous"
        scoped = f"{owner}:{key.decode(errors='replace')}"  # one key space per API key
        self.reservations += 1
        await self.expire(None if self.reservations % PURGE_EVERY == 0 else scoped)
        reserved = await self.db.fetch(
            "INSERT INTO idempotency_record (key, request_hash, status, created_at) "
            "VALUES ({}, {}, 'pending', {}) ON CONFLICT (key) DO NOTHING RETURNING id",
            scoped,
            digest,
            writes.now(),
        )
        if not reserved:
            await self.replay(send, scoped, digest)
            return
        try:
            status, response = await self.run_capturing(scope, body, send)
        except BaseException:  # crashed: free the key so the client can retry
            await self.db.fetch("DELETE FROM idempotency_record WHERE key = {}", scoped)
            raise
        if scope.get("state", {}).get(MUTATIONS_RAN) == {"dry"}:  # it changed nothing
            await self.db.fetch("DELETE FROM idempotency_record WHERE key = {}", scoped)
            return
        await self.db.fetch(
            "UPDATE idempotency_record SET status = 'done', response = {}, status_code = {} "
            "WHERE key = {}",
            response.decode(),
            status,
            scoped,
        )

    async def replay(self, send: Send, scoped: str, digest: str) -> None:
        rows = await self.db.fetch(
            "SELECT request_hash, status, response, status_code FROM idempotency_record "
            "WHERE key = {}",
            scoped,
        )
        record = rows[0] if rows else None
        if record is None or record["status"] != "done":
            await send_response(
                send, 409, error_body("a request with this Idempotency-Key is in progress",
                                      "IDEMPOTENCY_IN_PROGRESS"),
            )  # fmt: skip
        elif record["request_hash"] != digest:
            await send_response(
                send, 422, error_body("this Idempotency-Key was used for a different request",
                                      "IDEMPOTENCY_KEY_REUSED"),
            )  # fmt: skip
        else:
            await send_response(send, record["status_code"], record["response"].encode())

    async def run_capturing(self, scope: Scope, body: bytes, send: Send) -> tuple[int, bytes]:
        """Run the request, passing its response through and keeping a copy."""
        sent = False
        status = 500
        chunks: list[bytes] = []

        async def replay_body() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay_body, capture)
        return status, b"".join(chunks)


async def read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message: dict[str, Any] = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)
