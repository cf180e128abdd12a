"""A test plugin: one handler for every event type, which fails while
``down`` is set, for the first ``fail_first`` attempts of each event and for
the customers in ``failing`` (a downstream system that is away for a while), and records every call with the
wall-clock time it began, so a test reads when each attempt was made."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from crmgraph.extension_points import Event
from crmgraph.hookspecs import hookimpl


@dataclass(frozen=True)
class Call:
    event: int
    customer: int | None
    at: float  # time.time() as the handler was called
    failed: bool


calls: list[Call] = []
down = threading.Event()
fail_first = 0
failing: set[int] = set()
lock = threading.Lock()


def reset(failing_attempts: int = 0) -> None:
    global fail_first
    with lock:
        calls.clear()
        down.clear()
        failing.clear()
        fail_first = failing_attempts


def calls_of(event_id: int) -> list[Call]:
    with lock:
        return [call for call in calls if call.event == event_id]


def handle(event: Event) -> None:
    with lock:
        tried = sum(1 for call in calls if call.event == event.id)
        failed = down.is_set() or tried < fail_first or event.customer_id in failing
        calls.append(Call(event.id, event.customer_id, time.time(), failed))
    if failed:
        raise ConnectionError("downstream system unavailable")


@hookimpl
def crmgraph_event_handlers() -> dict:
    return {"*": handle}
