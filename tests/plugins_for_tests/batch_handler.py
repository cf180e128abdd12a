"""A test plugin: one handler for every event type, which records what it is
handed, fails for the customers in ``failing`` and cuts the pass short
(raises ``CancelledError``, as ``stop()`` does) at the event ids in ``cut_at``."""

from __future__ import annotations

import asyncio

from crmgraph.extension_points import Event
from crmgraph.hookspecs import hookimpl

received: list[Event] = []
failing: set[int] = set()
cut_at: set[int] = set()


def reset() -> None:
    received.clear()
    failing.clear()
    cut_at.clear()


async def handle(event: Event) -> None:
    if event.id in cut_at:
        raise asyncio.CancelledError
    if event.customer_id in failing:
        raise ConnectionError("downstream system unavailable")
    received.append(event)


@hookimpl
def crmgraph_event_handlers() -> dict:
    return {"*": handle}
