"""A test plugin: records the events it is handed, and fails the first
delivery of every ``customer.updated`` to show retries."""

from __future__ import annotations

import threading

from crmgraph.extension_points import Event
from crmgraph.hookspecs import hookimpl

received: list[Event] = []
failed_once: set[int] = set()
lock = threading.Lock()


def record(event: Event) -> None:
    with lock:
        received.append(event)


async def flaky(event: Event) -> None:
    with lock:
        if event.id not in failed_once:
            failed_once.add(event.id)
            raise ConnectionError("downstream system unavailable")
        received.append(event)


@hookimpl
def crmgraph_event_handlers() -> dict:
    return {"customer.created": record, "customer.stage_changed": record, "customer.updated": flaky}
