"""Outbox events: written in the mutation's transaction, handed to plugin
handlers after the commit, retried when a handler fails, never lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from crmgraph.app import with_state
from crmgraph.testing import LiveServer, live_server, settings_for
from tests.helpers import CREATE, create_customer
from tests.plugins_for_tests import event_recorder

PLUGIN = "tests.plugins_for_tests.event_recorder"


@pytest.fixture
def recording_server(database_url: str) -> Iterator[LiveServer]:
    event_recorder.received.clear()
    event_recorder.failed_once.clear()
    settings = settings_for(
        database_url, plugins=(PLUGIN,), event_poll_seconds=0.05, event_backoff_seconds=0.05
    )
    with live_server(settings) as server:
        server.database_url = database_url  # type: ignore[attr-defined]
        yield server


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():  # a condition polled with a deadline, not a timed wait
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def event_rows(database_url: str) -> list[dict]:
    return asyncio.run(
        with_state(
            settings_for(database_url),
            lambda state: state.db.fetch("SELECT * FROM event ORDER BY id"),
        )
    )


def types_received() -> list[str]:
    return [e.type for e in event_recorder.received]


def test_events_reach_handlers_and_failures_are_retried(recording_server: LiveServer) -> None:
    server = recording_server
    customer = create_customer(server, name="Evented")
    wait_until(lambda: "customer.created" in types_received(), "customer.created")
    created = event_recorder.received[0]
    assert created.payload["customerId"] == customer["id"]
    assert created.payload["kind"] == "client"

    updated = server.gql(
        'mutation($id: ID!) { updateCustomer(input: {id: $id, expectedVersion: 1, name: "Renamed"}) '
        "{ customer { name } userErrors { code } } }",
        {"id": customer["id"]},
    )["updateCustomer"]
    assert updated == {
        "customer": {"name": "Renamed"},
        "userErrors": [],
    }  # the failing handler did not block the write
    wait_until(lambda: "customer.updated" in types_received(), "customer.updated after a retry")

    def by_type() -> dict[str, dict]:
        return {r["type"]: r for r in event_rows(server.database_url)}  # type: ignore[attr-defined]

    # the handler has the event before the dispatcher records its delivery
    wait_until(lambda: by_type()["customer.updated"]["delivered_at"] is not None, "delivered")
    rows = by_type()
    assert rows["customer.updated"]["attempts"] == 2
    assert rows["customer.updated"]["delivered_at"] is not None
    assert rows["customer.updated"]["last_error"] is None
    assert rows["customer.created"]["attempts"] == 1


def test_refused_writes_leave_no_event(recording_server: LiveServer) -> None:
    server = recording_server
    bad = server.gql(CREATE, {"input": {"kind": "CLIENT", "name": "x", "email": "nope"}})
    assert bad["createCustomer"]["userErrors"]
    refused = server.gql(
        'mutation { transitionCustomer(input: {id: "Q3VzdG9tZXI6OTk5", toStage: "active", '
        "expectedVersion: 1}) { userErrors { code } } }"
    )
    assert refused["transitionCustomer"]["userErrors"][0]["code"] == "NOT_FOUND"
    assert event_rows(server.database_url) == []  # type: ignore[attr-defined]
