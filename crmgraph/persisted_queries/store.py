"""Where automatic persisted queries are kept: this process, and Redis when configured.

A document is kept under its SHA-256, checked against its text before it is
kept, so what a hash names never changes: every copy of it, anywhere, is
right. Each process keeps the documents it has seen (bounded by their total
size, least recently used out first) in front of Redis, so a hash it knows
costs no round trip; with ``CRMGRAPH_REDIS_URL`` a document one worker
registers is found by every other (keys ``crmgraph:apq:<sha256>``, kept
:data:`TTL_SECONDS`; an expired one is sent again by the client, as Apollo's
protocol has it). While Redis is away this process's copies answer alone and
:class:`~crmgraph.redis_link.RedisLink` logs it: a client whose document is
not here re-sends the text, nothing fails.

Not :class:`crmgraph.lru.LRU`: it bounds the number of values, and a
document may be as long as a request body (a megabyte), so a count alone
would not bound the memory a caller can fill.
"""

from __future__ import annotations

from collections import OrderedDict

from crmgraph.redis_link import REDIS_ERRORS, RedisLink

KEY_PREFIX = "crmgraph:apq:"
TTL_SECONDS = 24 * 60 * 60
# what this process keeps, in bytes of document text
LOCAL_BYTES = 16 * 1024 * 1024


class LocalDocuments:
    """Documents by hash, at most ``max_bytes`` of them, least recently used out first."""

    def __init__(self, max_bytes: int = LOCAL_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[str, str] = OrderedDict()

    def get(self, sha256: str) -> str | None:
        text = self._items.get(sha256)
        if text is not None:
            self._items.move_to_end(sha256)
        return text

    def put(self, sha256: str, text: str) -> None:
        if sha256 in self._items or len(text) > self.max_bytes:
            return
        self._items[sha256] = text
        self.size += len(text)
        while self.size > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)


class DocumentStore:
    """APQ documents by SHA-256: this process's, then Redis's (``redis``)."""

    def __init__(
        self,
        redis: RedisLink | None = None,
        ttl_seconds: int = TTL_SECONDS,
        local: LocalDocuments | None = None,
    ) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.local = local or LocalDocuments()

    async def get(self, sha256: str) -> str | None:
        text = self.local.get(sha256)
        link = self.redis
        if text is not None or link is None or not link.worth_trying():
            return text
        try:
            found = await link.client.get(KEY_PREFIX + sha256)
        except REDIS_ERRORS as error:
            link.lost(error, "reading a persisted query")
            return None
        link.answered()
        if found is None:
            return None
        text = found.decode()
        self.local.put(sha256, text)
        return text

    async def put(self, sha256: str, text: str) -> None:
        """Keep ``text`` (whose SHA-256 the caller checked) here and in Redis."""
        self.local.put(sha256, text)
        link = self.redis
        if link is None or not link.worth_trying():
            return
        try:
            await link.client.set(KEY_PREFIX + sha256, text, ex=self.ttl_seconds)
        except REDIS_ERRORS as error:
            link.lost(error, "storing a persisted query")
            return
        link.answered()
