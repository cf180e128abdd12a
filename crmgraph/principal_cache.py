"""A short-lived, bounded cache of API keys' principals.

Looking a key up costs a statement on every request, more CPU than a compiled
read's own statement. A key that authenticated is kept here for
``CRMGRAPH_API_KEY_CACHE_SECONDS`` (0 switches the cache off):

* entries are found by the key's prefix and the SHA-256 of its secret, the
  same hash the database holds, so the cache never holds a secret and a wrong
  secret for a cached prefix is a miss (the database refuses it);
* only keys that authenticated are kept, at most ``max_entries`` of them
  (least recently used out first): unknown, malformed or revoked keys always
  go to the database and cannot grow the cache;
* a revocation or a team change made in this process (:func:`forget`)
  empties the entries it touches at once, in every cache of the process;
  one made elsewhere (the CLI, another worker) reaches this process through
  Redis when ``CRMGRAPH_REDIS_URL`` is set (:mod:`crmgraph.auth_changes`), and
  otherwise when the entry expires: a revoked key can be served for at most
  that many seconds.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

# what a key authenticates as (crmgraph.auth.Principal); opaque here, so the
# cache sits below auth and auth alone knows what a principal is
PrincipalT = TypeVar("PrincipalT")

DEFAULT_MAX_ENTRIES = 10_000

_caches: weakref.WeakSet[PrincipalCache[Any]] = weakref.WeakSet()
# told of every forget(): open WebSocket connections re-check their principals
_listeners: list[Callable[[str | None], None]] = []


class PrincipalCache(Generic[PrincipalT]):
    def __init__(
        self,
        seconds: float,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        # (prefix, secret hash) -> (expires at, principal), least recently used first
        self._entries: OrderedDict[tuple[str, str], tuple[float, PrincipalT]] = OrderedDict()
        # bumped by every forget(): a lookup that started before a revocation
        # must not store what it read (the row as it was before)
        self.generation = 0
        self._lock = threading.Lock()
        _caches.add(self)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, prefix: str, secret_hash: str) -> PrincipalT | None:
        key = (prefix, secret_hash)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, prefix: str, secret_hash: str, principal: PrincipalT, generation: int) -> None:
        """Keep ``principal``, read from the database while the cache was at
        ``generation``; dropped if something was forgotten since."""
        with self._lock:
            if generation != self.generation:
                return
            self._entries[(prefix, secret_hash)] = (self.clock() + self.seconds, principal)
            self._entries.move_to_end((prefix, secret_hash))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, prefix: str | None = None) -> None:
        """Drop one key's entries, or every entry (``None``: a user's teams or
        role changed, which no prefix names)."""
        with self._lock:
            self.generation += 1
            if prefix is None:
                self._entries.clear()
                return
            for key in [k for k in self._entries if k[0] == prefix]:
                del self._entries[key]


def make_cache(seconds: float) -> PrincipalCache[Any] | None:
    return PrincipalCache(seconds) if seconds > 0 else None


def forget(prefix: str | None = None) -> None:
    """Forget a key (or every key) in every cache of this process, and tell
    the listeners (:func:`on_forget`)."""
    for cache in list(_caches):
        cache.forget(prefix)
    for listener in list(_listeners):
        listener(prefix)


def on_forget(listener: Callable[[str | None], None]) -> None:
    """Call ``listener`` (from whichever thread forgets) after every :func:`forget`."""
    _listeners.append(listener)
