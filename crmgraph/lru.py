"""A bounded map shared by the requests of an app, least recently used out first.

The caches of the request path (query costs, field coordinates, compiled
plans and statements) all keep a value per key, computed once and reused,
within a bound; this is that mechanism once. A value may be None (a
document that does not compile, an operation without a cost): absence is
``MISSING``.
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Missing(enum.Enum):
    MISSING = "missing"


MISSING: Final = Missing.MISSING


class LRU(Generic[K, V]):
    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, key: K) -> V | Missing:
        """The value kept for ``key`` (now the most recently used), or MISSING."""
        with self._lock:
            if key not in self._items:
                return MISSING
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            if len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The value kept for ``key``, or ``make()``'s, kept. ``make`` runs
        outside the lock: two requests may both make a value; either is kept."""
        found = self.lookup(key)
        if found is not MISSING:
            return found
        made = make()
        self.put(key, made)
        return made

    def __len__(self) -> int:
        return len(self._items)
