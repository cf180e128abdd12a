"""One statement at a time on a PostgreSQL transaction's connection, and
writes sent *behind*: started, not waited for.

asyncpg runs one operation per connection, so everything a transaction
sends takes its turn (:class:`StatementTurns`, held around each statement).
A bulk writer whose next rows do not depend on what it just wrote (an
import batch's customers, roles, stage changes, audit entries, events,
match keys: a COPY each) may send one behind (:meth:`StatementTurns.behind`):
the COPY keeps the turn until PostgreSQL has run it, and meanwhile Python
builds the next table's rows, where it would otherwise wait. The next
statement, the COMMIT included, waits for it; a write sent behind that
failed raises its error there (the transaction cannot go on after it).

Only callers that opt in (:func:`writing_behind`) send writes behind: a
write whose failure its caller handles in place (a unique key turned into
a userError) must be waited for where it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

_behind: contextvars.ContextVar[bool] = contextvars.ContextVar("crmgraph_behind", default=False)


@contextlib.contextmanager
def writing_behind() -> Iterator[None]:
    """Within: bulk writes that return nothing go behind (:mod:`crmgraph.db.bulk`)."""
    token = _behind.set(True)
    try:
        yield
    finally:
        _behind.reset(token)


def sends_behind() -> bool:
    return _behind.get()


class StatementTurns:
    """The turn to send on one connection (an asyncio lock, first come first
    served), and the failure of a write sent behind, not raised yet."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._failure: BaseException | None = None
        self._task: asyncio.Future[None] | None = None

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        failure, self._failure = self._failure, None
        if failure is not None:
            self._lock.release()
            raise failure

    async def __aexit__(self, *exc: Any) -> None:
        self._lock.release()

    async def behind(self, write: Callable[[], Awaitable[Any]]) -> None:
        """Send ``write()`` once the turn is ours and return without waiting
        for it; it gives the turn back when it is done."""
        await self.__aenter__()

        async def run() -> None:
            try:
                await write()
            except BaseException as exc:  # raised to the next statement
                self._failure = exc
            finally:
                self._lock.release()

        self._task = asyncio.ensure_future(run())

    async def settle(self) -> None:
        """Wait for a write sent behind; raise its failure."""
        async with self:
            pass

    async def quiet(self) -> None:
        """Wait for a write sent behind, whatever its outcome (before a ROLLBACK)."""
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(task)
        self._failure = None
