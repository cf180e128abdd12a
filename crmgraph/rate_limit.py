"""A per-key budget of query cost per time window.

Each API key may spend ``limit`` cost points (the calculated cost of
:mod:`crmgraph.schema.limits`) per fixed window of ``window_seconds``; an
operation that would go over is refused before it executes, with the seconds
until the window resets, and spends nothing. Windows are aligned on the wall
clock so that every worker agrees on them.

The budget is kept in the process by default; with ``CRMGRAPH_REDIS_URL`` it
lives in Redis, so several workers (or servers) share one budget per key
(while Redis is away, each process keeps its own: :mod:`crmgraph.redis_link`).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from crmgraph.redis_link import REDIS_ERRORS, RedisLink
from crmgraph.settings import Settings


@dataclass(frozen=True)
class Charge:
    allowed: bool
    spent: int  # in the current window, this operation included if allowed
    limit: int
    reset_in: float  # seconds until the window starts again

    @property
    def remaining(self) -> int:
        return max(self.limit - self.spent, 0)

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait, as the Retry-After header wants it."""
        return max(math.ceil(self.reset_in), 1)


class CostBudget(Protocol):
    limit: int
    window_seconds: int

    async def charge(self, key: str, cost: int) -> Charge: ...

    async def close(self) -> None: ...


def _window(window_seconds: int, now: float) -> tuple[int, float]:
    index = int(now // window_seconds)
    return index, (index + 1) * window_seconds - now


class InProcessBudget:
    """Budgets in this process's memory: right for one worker."""

    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._spent: dict[str, tuple[int, int]] = {}  # key -> (window index, spent)
        self._lock = threading.Lock()

    async def charge(self, key: str, cost: int) -> Charge:
        index, reset_in = _window(self.window_seconds, time.time())
        with self._lock:
            if len(self._spent) > 10_000:  # forget keys of past windows
                self._spent = {k: v for k, v in self._spent.items() if v[0] == index}
            window, spent = self._spent.get(key, (index, 0))
            if window != index:
                spent = 0
            allowed = spent + cost <= self.limit
            if allowed:
                spent += cost
            self._spent[key] = (index, spent)
        return Charge(allowed, spent, self.limit, reset_in)

    async def close(self) -> None:
        pass


class RedisBudget:
    """Budgets in Redis, shared by every worker pointed at it. INCRBY is
    atomic, so concurrent workers never both spend the last points; a refused
    operation gives its points back. While Redis is away
    (:mod:`crmgraph.redis_link`) this process's own budgets stand in."""

    def __init__(self, link: RedisLink, limit: int, window_seconds: int) -> None:
        self.link = link
        self.limit = limit
        self.window_seconds = window_seconds
        self.local = InProcessBudget(limit, window_seconds)

    async def charge(self, key: str, cost: int) -> Charge:
        if self.link.worth_trying():
            try:
                charge = await self._charge_shared(key, cost)
            except REDIS_ERRORS as error:
                self.link.lost(error, "charging a rate limit")
            else:
                self.link.answered()
                return charge
        return await self.local.charge(key, cost)

    async def _charge_shared(self, key: str, cost: int) -> Charge:
        index, reset_in = _window(self.window_seconds, time.time())
        name = f"crmgraph:cost:{key}:{index}"
        client = self.link.client
        async with client.pipeline(transaction=True) as pipe:
            pipe.incrby(name, cost)
            pipe.expire(name, self.window_seconds * 2)
            spent, _ = await pipe.execute()
        if spent > self.limit:
            spent = await client.decrby(name, cost)
            return Charge(False, int(spent), self.limit, reset_in)
        return Charge(True, int(spent), self.limit, reset_in)

    async def close(self) -> None:
        pass  # the link belongs to the app, which closes it


def budget_for(settings: Settings, link: RedisLink | None = None) -> CostBudget | None:
    if settings.rate_limit_cost <= 0:
        return None
    if link is not None:
        return RedisBudget(link, settings.rate_limit_cost, settings.rate_limit_window_seconds)
    return InProcessBudget(settings.rate_limit_cost, settings.rate_limit_window_seconds)
