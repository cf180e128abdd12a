"""The loop behind each outbox reader of a server process (plugin event
handlers, live subscriptions, webhooks): a pass over the database as soon as
a write commits (``wake``), otherwise when the pause a pass asked for is over;
a failed pass is logged and the loop goes on (the database may be briefly away)."""

from __future__ import annotations

import asyncio
import contextlib
import logging


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; True if it was set.

    asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for loses a
    cancellation that arrives as the event is set, so a task looping on it
    never stops (seen when a server stopped right after a write)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


class PollingLoop:
    """Subclasses implement ``run_pass``; ``start``/``stop`` run it as one task."""

    task_name = "crmgraph-loop"
    failure_message = "background pass failed"

    def __init__(self, poll_seconds: float, logger: logging.Logger) -> None:
        self.poll_seconds = poll_seconds
        self.logger = logger
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Called after a write commits, so its events go out without waiting a poll."""
        self._wake.set()

    async def run_pass(self) -> float:
        """One pass; returns the seconds to pause before the next (0: go on at once)."""
        raise NotImplementedError

    async def run(self) -> None:
        while True:
            self._wake.clear()
            pause = self.poll_seconds
            try:
                pause = await self.run_pass()
            except Exception:
                self.logger.exception(self.failure_message)
            if pause <= 0:
                continue
            await wait_for_event(self._wake, pause)

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
