"""crmgraph.startup_work: a start-up task runs beside the caller, one per
name, is listed while it runs, is waited for without being cancelled by a
waiter given up, logs its failure, and is cancelled when the server stops."""

from __future__ import annotations

import asyncio
import logging

import pytest

from crmgraph.startup_work import StartupWork


async def until(event: asyncio.Event, ran: list[str], name: str) -> None:
    ran.append(name)
    await event.wait()


def test_tasks_run_once_per_name_are_listed_and_waited_for() -> None:
    async def scenario() -> None:
        work, release, ran = StartupWork(), asyncio.Event(), []
        first = work.start("phases", until(release, ran, "first"))
        assert work.start("phases", until(release, ran, "second")) is first  # one per name
        work.start("tiers", until(release, ran, "tiers"))
        await asyncio.sleep(0)  # let the tasks begin (not a wait for an outcome)
        assert work.pending() == ["phases", "tiers"]
        waiter = asyncio.create_task(work.finished())
        await asyncio.sleep(0)  # the waiter waits
        waiter.cancel()  # and gives up
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert work.pending() == ["phases", "tiers"]  # its giving up cancelled nothing
        release.set()
        await work.finished()
        assert (work.pending(), ran) == ([], ["first", "tiers"])

    asyncio.run(scenario())


def test_a_failure_is_logged_and_stop_cancels_what_runs(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise RuntimeError("no stage table")

    async def scenario() -> asyncio.Task[None]:
        work = StartupWork()
        work.start("broken", fails())
        await work.finished()  # a failure ends the wait too
        hanging = work.start("forever", asyncio.Event().wait())
        await work.stop()
        assert work.pending() == []
        return hanging

    with caplog.at_level(logging.ERROR, logger="crmgraph.startup_work"):
        hanging = asyncio.run(scenario())
    assert hanging.cancelled()
    assert "start-up work crmgraph-startup-broken failed" in caplog.text
    assert "no stage table" in caplog.text
