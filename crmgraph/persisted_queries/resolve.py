"""The HTTP side of persisted queries: a request naming a document becomes one carrying it.

An ASGI layer inside authentication (a stranger's body is never read) and
outside the direct read path, which then sees an ordinary request: a query
sent by hash is answered as fast as one sent in full. Apollo's protocol
(automatic persisted queries, over POST and GET):

* ``extensions.persistedQuery = {"version": 1, "sha256Hash": H}`` without
  ``query``: the document kept under H runs; none is kept -> HTTP 200
  ``PersistedQueryNotFound`` (code ``PERSISTED_QUERY_NOT_FOUND``), and the
  client sends the text with the hash;
* with ``query``: its SHA-256 must be H (else HTTP 400 ``provided sha does
  not match query``); it is kept (:mod:`.store`) and runs;
* another version: HTTP 400 ``Unsupported persisted query version``; APQ
  switched off (``CRMGRAPH_PERSISTED_QUERIES=0``): HTTP 200
  ``PersistedQueryNotSupported``, on which Apollo's client stops hashing.

With a trusted-documents manifest the manifest is the only store: a hash, a
``documentId`` (``sha256:<hex>`` or a tool's id), Relay's ``doc_id`` or
``id`` name one of its documents, and a text with a hash is never kept (one
not in the manifest is refused here, as :mod:`.trusted` refuses it in the
view). A GET stays a GET (the view refuses mutations over GET). A batch (a
JSON array) is left to the view, which does not accept batches. A body over
the body limit is not read here: the body limit refuses it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from crmgraph.observability import request_facts
from crmgraph.persisted_queries.manifest import Manifest, sha256_hex
from crmgraph.persisted_queries.store import DocumentStore
from crmgraph.persisted_queries.trusted import NOT_ALLOWED, NOT_ALLOWED_MESSAGE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# where a request names a trusted document (besides the APQ hash)
ID_FIELDS = ("documentId", "doc_id", "id")
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
# what a body may hold for this layer to look at it: bytes that every request
# naming a document has, and few others
APQ_MARK = b"persistedQuery"
ID_MARKS = (b'"documentId"', b'"doc_id"', b'"id"')


@dataclass(frozen=True)
class Refused:
    status: int
    message: str
    code: str


NOT_FOUND = Refused(200, "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
NOT_SUPPORTED = Refused(200, "PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED")
BAD_VERSION = Refused(400, "Unsupported persisted query version", "BAD_REQUEST")
MISMATCH = Refused(400, "provided sha does not match query", "BAD_REQUEST")
BAD_HASH = Refused(
    400, "extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits", "BAD_REQUEST"
)
NOT_REGISTERED = Refused(200, f"{NOT_ALLOWED_MESSAGE}: it registers no other", NOT_ALLOWED)
TOO_LARGE = Refused(400, "persisted query larger than the body limit", "BAD_REQUEST")

# a document, an answer, or None: leave the request as it is
Resolution = str | Refused | None


class PersistedQueries:
    """``app``: what answers next (the direct reads, or the body limit).
    ``manifest``: trusted-documents mode; ``apq``: Apollo's automatic
    persisted queries on (without a manifest)."""

    def __init__(
        self,
        app: ASGIApp,
        store: DocumentStore,
        manifest: Manifest | None = None,
        apq: bool = True,
        max_body_bytes: int = 0,
    ) -> None:
        self.app = app
        self.store = store
        self.manifest = manifest
        self.apq = apq
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method") if scope["type"] == "http" else None
        if method == "POST":
            await self.post(scope, receive, send)
        elif method == "GET":
            await self.get(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def names_document(self, body: bytes) -> bool:
        """Whether ``body`` may name a document (a byte search: most do not)."""
        if APQ_MARK in body:
            return True
        return self.manifest is not None and any(mark in body for mark in ID_MARKS)

    def declared_too_long(self, scope: Scope) -> bool:
        """A body declared longer than the limit: not a byte of it is read
        here (the client may be waiting to hear so before sending it)."""
        limit = self.max_body_bytes
        if limit <= 0:
            return False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                return not value.isdigit() or int(value) > limit
        return False

    async def post(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.declared_too_long(scope):
            await self.app(scope, receive, send)  # the body limit refuses it unread
            return
        first = await receive()
        if first["type"] != "http.request":
            return  # the client left
        # the path of nearly every request, kept short (it is in front of the
        # direct reads): a body in one message that names no document goes on
        # as it came; a longer one is read on if it is JSON the body limit takes
        if not (first.get("more_body", False) or self.names_document(first.get("body", b""))):
            await self.app(scope, replay(first, receive), send)
            return
        if not is_json(scope):
            await self.app(scope, replay(first, receive), send)
            return
        read = await read_body(first, receive, self.max_body_bytes)
        if read is None:
            return  # the client left
        body, complete = read
        request = None
        if complete and self.names_document(body):
            request = parse_object(body)
        resolution = None if request is None else await self.resolve(request)
        if isinstance(resolution, Refused):
            await refuse(send, resolution)
            return
        if isinstance(resolution, str):
            assert request is not None
            body = orjson.dumps(with_document(request, resolution))
            scope = {**scope, "headers": with_length(scope.get("headers", ()), len(body))}
        message = {"type": "http.request", "body": body, "more_body": not complete}
        await self.app(scope, replay(message, receive), send)

    async def get(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        request: dict[str, Any] = dict(params)
        resolution = None
        if "extensions" in request or (self.manifest is not None and request.keys() & ID_FIELDS):
            try:
                request["extensions"] = orjson.loads(request.get("extensions") or "null")
            except orjson.JSONDecodeError:
                pass  # the view says what is wrong with it
            else:
                resolution = await self.resolve(request)
        if isinstance(resolution, Refused):
            await refuse(send, resolution)
            return
        if isinstance(resolution, str):
            kept = [(k, v) for k, v in params if k != "query" and k not in ID_FIELDS]
            query_string = urlencode([*kept, ("query", resolution)]).encode()
            scope = {**scope, "query_string": query_string}
        await self.app(scope, receive, send)

    async def resolve(self, request: Mapping[str, Any]) -> Resolution:
        query, extensions = request.get("query"), request.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if persisted is not None:
            return await self.automatic(persisted, query)
        if query is not None or self.manifest is None:
            return None
        for field in ID_FIELDS:
            document_id = request.get(field)
            if isinstance(document_id, str):
                text = self.manifest.document(document_id)
                return text if text is not None else unknown_id(document_id)
        return None

    async def automatic(self, persisted: Any, query: Any) -> Resolution:
        """Apollo's automatic persisted queries (in trusted-documents mode,
        against the manifest)."""
        if self.manifest is None and not self.apq:
            return NOT_SUPPORTED
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            return BAD_VERSION
        sha256 = persisted.get("sha256Hash")
        if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
            return BAD_HASH
        sha256 = sha256.lower()
        if query is None:
            text = self.manifest.document(sha256) if self.manifest else await self.store.get(sha256)
            return NOT_FOUND if text is None else text
        if not isinstance(query, str):
            return None  # the view refuses it
        if sha256_hex(query) != sha256:
            return MISMATCH
        if self.manifest is not None:
            return None if self.manifest.allows(query) else NOT_REGISTERED
        if 0 < self.max_body_bytes < len(query.encode()):
            return TOO_LARGE
        await self.store.put(sha256, query)
        return None


def is_json(scope: Scope) -> bool:
    return any(
        name == b"content-type" and value.lower().startswith(b"application/json")
        for name, value in scope.get("headers", ())
    )


def unknown_id(document_id: str) -> Refused:
    return Refused(
        200, f"no trusted document has the id {document_id!r}", "PERSISTED_QUERY_NOT_FOUND"
    )


def parse_object(body: bytes) -> dict[str, Any] | None:
    """A single request's JSON object; None for anything else (the view answers)."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return request if isinstance(request, dict) else None


def with_document(request: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The request as if it had been sent with its text (and no id)."""
    plain = {k: v for k, v in request.items() if k not in ID_FIELDS and k != "extensions"}
    plain["query"] = text
    extensions = request.get("extensions")
    if isinstance(extensions, dict):
        rest = {k: v for k, v in extensions.items() if k != "persistedQuery"}
        if rest:
            plain["extensions"] = rest
    return plain


def with_length(headers: Any, length: int) -> list[tuple[bytes, bytes]]:
    kept = [(n, v) for n, v in headers if n not in (b"content-length", b"transfer-encoding")]
    return [*kept, (b"content-length", str(length).encode())]


async def read_body(first: Message, receive: Receive, limit: int) -> tuple[bytes, bool] | None:
    """The body (``first`` its first message) and whether it is all there:
    past ``limit`` (0: none) it stops reading, and the body limit reads on
    and refuses it. None when the client left."""
    message = first
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if 0 < limit < size:
            return b"".join(chunks), False
        message = await receive()


def replay(message: Message, receive: Receive) -> Receive:
    """``message`` (what was read), then the rest from ``receive``."""
    pending: Message | None = message

    async def replayed() -> Message:
        nonlocal pending
        if pending is None:
            return await receive()
        sent, pending = pending, None
        return sent

    return replayed


async def refuse(send: Send, refused: Refused) -> None:
    request_facts.note_refusal(refused.code)
    body = orjson.dumps(
        {"errors": [{"message": refused.message, "extensions": {"code": refused.code}}]}
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # Apollo's: a CDN in front of GET must not keep a miss
        (b"cache-control", b"private, no-cache, must-revalidate"),
    ]
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
