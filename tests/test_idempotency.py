"""Idempotency-Key: a retried mutation returns the first result and writes
nothing new; a key reused for another request is refused."""

from __future__ import annotations

import asyncio
import datetime
import threading

from crmgraph.app import with_state
from crmgraph.db import writes
from crmgraph.idempotency import ABANDONED_AFTER
from crmgraph.testing import live_server, settings_for
from tests.conftest import LiveServer
from tests.helpers import CREATE, count_customers


def post(server: LiveServer, key: str, name: str) -> tuple[int, dict]:
    response = server.http.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": {"kind": "CLIENT", "name": name}}},
        headers={"Idempotency-Key": key},
    )
    return response.status_code, response.json()


def test_retry_returns_first_result_and_writes_nothing(server: LiveServer) -> None:
    status, first = post(server, "order-42", "Once Only")
    assert status == 200 and first["data"]["createCustomer"]["userErrors"] == []
    status, again = post(server, "order-42", "Once Only")
    assert status == 200
    assert again["data"] == first["data"]  # same customer id, same version
    assert count_customers(server) == 1
    trail = server.gql(
        "query($id: ID!) { auditTrail(customerId: $id) { edges { node { action } } } }",
        {"id": first["data"]["createCustomer"]["customer"]["id"]},
    )["auditTrail"]["edges"]
    assert len(trail) == 1

    status, reused = post(server, "order-42", "Something Else")
    assert status == 422 and reused["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert count_customers(server) == 1
    status, _ = post(server, "order-43", "Once Only")  # another key is another request
    assert status == 200 and count_customers(server) == 2


def test_concurrent_copies_execute_once(server: LiveServer) -> None:
    barrier = threading.Barrier(4)
    results: list[tuple[int, dict]] = []

    def send(barrier: threading.Barrier = barrier) -> None:
        barrier.wait(timeout=30)
        results.append(post(server, "burst", "Burst Co"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 4
    assert {status for status, _ in results} <= {200, 409}
    assert count_customers(server) == 1
    ids = {b["data"]["createCustomer"]["customer"]["id"] for s, b in results if s == 200}
    assert len(ids) == 1  # every 200 answers with the one customer created


def test_expired_and_abandoned_keys_can_be_used_again(database_url: str) -> None:
    # TTL 0: every record is expired by the next request, so the key runs again
    with live_server(settings_for(database_url, idempotency_ttl_hours=0)) as server:
        assert post(server, "k", "First")[0] == 200
        status, second = post(server, "k", "Second")  # a new request under the old key
        assert status == 200 and second["data"]["createCustomer"]["userErrors"] == []
        assert count_customers(server) == 2
    with live_server(settings_for(database_url)) as server:
        # a reservation left pending by a server that died mid-request
        stale = writes.now() - ABANDONED_AFTER - datetime.timedelta(seconds=1)
        asyncio.run(insert_pending(database_url, "anonymous:crashed", stale))
        assert post(server, "crashed", "Third")[0] == 200
        assert count_customers(server) == 3
        asyncio.run(insert_pending(database_url, "anonymous:in-flight", writes.now()))
        assert post(server, "in-flight", "Fourth")[0] == 409  # a live reservation still holds


async def insert_pending(database_url: str, key: str, at: datetime.datetime) -> None:
    await with_state(
        settings_for(database_url),
        lambda state: state.db.fetch(
            "INSERT INTO idempotency_record (key, request_hash, status, created_at) "
            "VALUES ({}, 'x', 'pending', {})",
            key,
            at,
        ),
    )
