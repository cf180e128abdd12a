"""Under a continuous write load, a plugin event handler that is down for a
while loses no event. A real server (uvicorn, both engines) keeps committing,
and each commit wakes the event dispatcher, while the handler fails: each
event's attempts are still spread by the backoff (every gap between two calls
of one event at least the policy's pause, by the handler's own clock), so
none runs out of attempts, and once the handler is back every event reaches
it once, in order per customer. Before the backoff every wake retried at
once: an event used its 10 attempts within a few commits and was lost."""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from typing import Any

import httpx

from crmgraph.events import Backoff
from crmgraph.testing import run_sql, settings_for, uvicorn_server
from tests.helpers import create_customer, poll
from tests.plugins_for_tests import flaky_handler

PLUGIN = "tests.plugins_for_tests.flaky_handler"
POLICY = Backoff(0.1, 0.8, 40)
LOG = """mutation($input: LogInteractionInput!) {
  logInteraction(input: $input) { interaction { id } userErrors { message } }
}"""


class Writer(threading.Thread):
    """Logs interactions for the customers, round robin, one request after
    another until stopped: a steady stream of commits."""

    def __init__(self, url: str, customers: list[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.customers = url, customers
        self.count = 0
        self.errors: list[Any] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.halt.is_set():
                customer = self.customers[self.count % len(self.customers)]
                variables = {"input": {"customerId": customer, "channel": "EMAIL",
                                       "direction": "INBOUND", "subject": f"#{self.count}"}}  # fmt: skip
                body = client.post("/graphql", json={"query": LOG, "variables": variables}).json()
                if body.get("errors") or body["data"]["logInteraction"]["userErrors"]:
                    self.errors.append(body)
                self.count += 1


def first_event_tried(times: int) -> bool:
    calls = list(flaky_handler.calls)
    return bool(calls) and len(flaky_handler.calls_of(calls[0].event)) >= times


def undelivered(database_url: str) -> list[dict[str, Any]] | None:
    rows = run_sql(settings_for(database_url), "SELECT * FROM event ORDER BY id")
    return None if any(r["delivered_at"] is None for r in rows) else rows


def test_a_handler_down_under_write_load_gets_every_event_in_order(database_url: str) -> None:
    flaky_handler.reset()
    flaky_handler.down.set()
    settings = settings_for(
        database_url,
        plugins=(PLUGIN,),
        event_poll_seconds=0.5,
        event_backoff_seconds=POLICY.first_seconds,
        event_backoff_max_seconds=POLICY.max_seconds,
        event_max_attempts=POLICY.max_attempts,
    )
    with uvicorn_server(settings) as server:
        customers = [create_customer(server, name=n)["id"] for n in ("Ada", "Grace", "Edsger")]
        writer = Writer(server.url, customers)  # type: ignore[arg-type]
        writer.start()
        try:
            # down for at least 30 commits and 5 failed attempts of the first event
            poll("30 writes", lambda: writer.count >= 30)
            poll("the first event's 5th attempt", lambda: first_event_tried(5))
            written_while_down = writer.count
            flaky_handler.down.clear()
            poll(
                "writes after the handler is back", lambda: writer.count >= written_while_down + 30
            )
        finally:
            writer.halt.set()
            writer.join(timeout=60)
        assert writer.errors == []
        rows = poll("every event delivered", lambda: undelivered(database_url))
    assert len(rows) == 3 + writer.count
    assert all(r["attempts"] < POLICY.max_attempts for r in rows)  # none given up

    by_event: dict[int, list[flaky_handler.Call]] = defaultdict(list)
    for call in flaky_handler.calls:
        by_event[call.event].append(call)
    for customer in {r["customer"] for r in rows}:
        tried = [c.event for c in flaky_handler.calls if c.customer == customer]
        assert tried == sorted(tried)  # a later event never before an earlier one
        handled = [c.event for c in flaky_handler.calls if c.customer == customer and not c.failed]
        assert handled == [r["id"] for r in rows if r["customer"] == customer]
    for calls in by_event.values():
        for tries, (before, after) in enumerate(itertools.pairwise(calls), start=1):
            assert after.at - before.at >= 0.8 * POLICY.ceiling(tries), (tries, calls)
    # the first event failed while the writes woke the dispatcher more often
    # than its attempts: every wake used to be an attempt
    first = by_event[rows[0]["id"]]
    assert 5 <= sum(c.failed for c in first) < written_while_down
