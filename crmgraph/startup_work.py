"""Work a server starts when it starts and runs beside its first requests.

``crmgraph_startup`` runs before the first request is answered, so what it
does there delays every start: fine for a cache warmed in milliseconds, not
for work that grows with the data (the funnel's phase columns after a
catalog change: minutes at millions of stage moves). A plugin hands such
work to :class:`StartupWork` instead (the hook's ``startup_work``
argument): it runs as a task of its own while the server answers, is named
in ``GET /readyz`` (``startupWork``) until it is done, is cancelled when the
server stops (its transaction rolls back; the next start begins it again),
and tests and tools wait for it with :meth:`StartupWork.finished` instead of
knowing which plugin started what. Whatever reads the work's result while
it runs must still wait for it by its own means (a lock the work holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class StartupWork:
    """The start-up tasks of one app, by name."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as a task named ``name``; if one of that name still
        runs, ``work`` is dropped and that task is returned."""
        running = self._tasks.get(name)
        if running is not None and not running.done():
            work.close()
            return running
        task = asyncio.create_task(work, name=f"crmgraph-startup-{name}")
        self._tasks[name] = task
        task.add_done_callback(self._log_failure)
        return task

    def pending(self) -> list[str]:
        """The names of the tasks still running, in the order they started."""
        return [name for name, task in self._tasks.items() if not task.done()]

    async def finished(self) -> None:
        """Wait until every task started so far is done (failed ones too:
        their failure is logged). A waiter given up cancels none of them."""
        running = [task for task in self._tasks.values() if not task.done()]
        if running:
            await asyncio.wait(running)

    async def stop(self) -> None:
        """Cancel the tasks still running and wait for them to end."""
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        self._tasks.clear()

    @staticmethod
    def _log_failure(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("start-up work %s failed", task.get_name(), exc_info=task.exception())
