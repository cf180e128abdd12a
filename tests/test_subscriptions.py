"""Live customer events over graphql-transport-ws, from a real WebSocket client:
authentication on connection_init, row scope, filters, and, with two server
processes sharing Redis, every event once on each. A WebSocket needs a socket:
``server.url`` puts a real uvicorn server in front of the in-process app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from crmgraph import auth
from crmgraph.app import AppState, with_state
from crmgraph.testing import LiveServer, live_server, settings_for
from tests.helpers import api_keys, poll, require, server_process

CREATE = """mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { customer { id } userErrors { message } }
}"""
LOG = """mutation($input: LogInteractionInput!) {
  logInteraction(input: $input) { interaction { id } userErrors { message } }
}"""
EVENTS = """subscription($filter: CustomerEventFilter) {
  customerEvents(filter: $filter) {
    id type customerId payload customer { id name ... on Client { segment } }
  }
}"""
WAIT_SECONDS = 30  # the most a test waits for one message


class GraphQLWebSocket:
    """A minimal graphql-transport-ws client over an open connection."""

    def __init__(self, ws: ClientConnection, key: str | None = None) -> None:
        self.ws = ws
        payload = {"Authorization": f"Bearer {key}"} if key else {}
        self.send({"type": "connection_init", "payload": payload})

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def receive(self) -> dict[str, Any]:
        while True:
            message = json.loads(self.ws.recv(timeout=WAIT_SECONDS))
            if message["type"] == "ping":
                self.send({"type": "pong"})
                continue
            return message

    def acknowledged(self) -> GraphQLWebSocket:
        assert self.receive()["type"] == "connection_ack"
        return self

    def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> None:
        self.send(
            {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )

    def next_event(self) -> dict[str, Any]:
        message = self.receive()
        assert message["type"] == "next", message
        assert not message["payload"].get("errors"), message["payload"]["errors"]
        return message["payload"]["data"]["customerEvents"]


@contextlib.contextmanager
def graphql_ws(http_url: str, key: str | None = None) -> Iterator[GraphQLWebSocket]:
    with connect(
        http_url.replace("http://", "ws://") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=WAIT_SECONDS,
    ) as ws:
        yield GraphQLWebSocket(ws, key)


@pytest.fixture
def keys(database_url: str) -> dict[str, str]:
    """API keys of an admin and two agents, Ana and Bea."""

    return api_keys(
        database_url, {"admin": "admin", "ana": "agent", "bea": "agent"}, "live.example"
    )


@pytest.fixture
def secured(database_url: str) -> Iterator[LiveServer]:
    with live_server(settings_for(database_url, anonymous=False)) as running:
        yield running


def subscriptions_open(url: str, count: int) -> bool:
    """A subscribe message gets no answer: the server's count says it is listening."""
    return httpx.get(f"{url}/readyz", timeout=5).json().get("subscriptions") == count


def create(server: LiveServer, key: str, name: str) -> str:
    data = server.gql(CREATE, {"input": {"kind": "CLIENT", "name": name}}, key=key)
    assert data["createCustomer"]["userErrors"] == []
    return data["createCustomer"]["customer"]["id"]


def log(server: LiveServer, key: str, customer_id: str, subject: str) -> None:
    data = server.gql(
        LOG,
        {
            "input": {
                "customerId": customer_id,
                "channel": "EMAIL",
                "direction": "OUTBOUND",
                "subject": subject,
            }
        },
        key=key,
    )
    assert data["logInteraction"]["userErrors"] == []


def test_subscribers_receive_committed_events_of_customers_they_may_see(
    secured: LiveServer, keys: dict[str, str]
) -> None:
    with (
        graphql_ws(secured.url, keys["admin"]) as admin,
        graphql_ws(secured.url, keys["bea"]) as bea,
    ):
        admin.acknowledged()
        bea.acknowledged()
        admin.subscribe(EVENTS)
        bea.subscribe(EVENTS)
        poll("two open subscriptions", lambda: subscriptions_open(secured.url, 2))

        anas = create(secured, keys["ana"], "Ana's client")
        event = admin.next_event()
        assert (event["type"], event["customerId"]) == ("customer.created", anas)
        assert (event["payload"]["customerId"], event["payload"]["kind"]) == (anas, "client")
        assert event["customer"] == {"id": anas, "name": "Ana's client", "segment": None}

        beas = create(secured, keys["bea"], "Bea's client")
        # Bea cannot see Ana's client: her first event is about her own
        event = bea.next_event()
        assert (event["type"], event["customerId"]) == ("customer.created", beas)
        assert event["customer"]["name"] == "Bea's client"
        assert admin.next_event()["customerId"] == beas  # the admin sees both, in order

        log(secured, keys["ana"], anas, "hidden from Bea")
        log(secured, keys["bea"], beas, "hers")
        event = bea.next_event()
        assert (event["type"], event["customerId"]) == ("interaction.logged", beas)
        assert [admin.next_event()["customerId"] for _ in range(2)] == [anas, beas]


def test_filters_select_events_by_type_and_customer(
    secured: LiveServer, keys: dict[str, str]
) -> None:
    first = create(secured, keys["admin"], "First")
    second = create(secured, keys["admin"], "Second")
    with graphql_ws(secured.url, keys["admin"]) as client:
        client.acknowledged()
        client.subscribe(
            EVENTS, {"filter": {"customerId": second, "types": ["interaction.logged"]}}
        )
        poll("the subscription", lambda: subscriptions_open(secured.url, 1))
        log(secured, keys["admin"], first, "not this customer")
        create(secured, keys["admin"], "not this type")
        log(secured, keys["admin"], second, "this one")
        event = client.next_event()
        assert (event["type"], event["customerId"]) == ("interaction.logged", second)


def test_a_filter_naming_an_unknown_stage_is_refused(
    secured: LiveServer, keys: dict[str, str]
) -> None:
    with graphql_ws(secured.url, keys["admin"]) as client:
        client.acknowledged()
        client.subscribe(EVENTS, {"filter": {"stages": ["nowhere"]}})
        message = client.receive()
        assert message["type"] == "next" and message["payload"]["data"] is None
        error = message["payload"]["errors"][0]
        assert "unknown stage(s) 'nowhere'" in error["message"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert client.receive()["type"] == "complete"


@pytest.mark.parametrize("key", [None, "crm_nothing.real", "not-a-key"])
def test_connections_without_a_valid_key_are_closed(
    secured: LiveServer, keys: dict[str, str], key: str | None
) -> None:
    with graphql_ws(secured.url, key) as client, pytest.raises(ConnectionClosed) as closed:
        client.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


def test_connection_init_uses_the_principal_cache(database_url: str, keys: dict[str, str]) -> None:
    """A key that authenticated over HTTP is found in the app's principal cache
    by connection_init too: revoked behind the process's back (no forget), it
    is still served until its entry expires, as HTTP serves it."""
    settings = settings_for(database_url, anonymous=False, api_key_cache_seconds=3600)
    with live_server(settings) as server:
        assert server.gql("{ __typename }", key=keys["ana"]) == {"__typename": "Query"}

        async def revoke(state: AppState) -> None:
            prefix = auth.split_key(keys["ana"])[0]  # type: ignore[index]
            await state.db.fetch(
                "UPDATE api_key SET revoked_at = {} WHERE prefix = {}", auth.writes.now(), prefix
            )

        asyncio.run(with_state(settings_for(database_url), revoke))
        with graphql_ws(server.url, keys["ana"]) as client:
            client.acknowledged()
    # a fresh process has no cache: the key is refused
    with live_server(settings) as server, graphql_ws(server.url, keys["ana"]) as client:
        with pytest.raises(ConnectionClosed) as closed:
            client.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


# ---------------------------------------------------------------------------
# several workers


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def server_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "CRMGRAPH_DATABASE_URL": database_url,
        "CRMGRAPH_REDIS_URL": "redis://127.0.0.1:6379/0",
        "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
        "CRMGRAPH_ANONYMOUS": "0",
        "CRMGRAPH_RATE_LIMIT_COST": "0",
    }


def test_two_server_processes_sharing_redis_deliver_every_event_once_on_each(
    database_url: str, keys: dict[str, str], tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("several workers are a PostgreSQL deployment")
    require(redis_reachable(), "Redis on 127.0.0.1:6379")
    env = server_env(database_url)
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(server_process(env, tmp_path / f"server{n}.log"))[1] for n in (1, 2)
        ]
        servers = [
            LiveServer(url, stack.enter_context(httpx.Client(base_url=url, timeout=60)), "")
            for url in urls
        ]
        clients = [stack.enter_context(graphql_ws(url, keys["admin"])) for url in urls]
        deliver_once(servers, clients, keys["admin"], urls)


def deliver_once(
    servers: list[LiveServer], clients: list[GraphQLWebSocket], key: str, urls: list[str]
) -> None:
    for client in clients:
        client.acknowledged()
    for client, url in zip(clients, urls, strict=True):
        client.subscribe(EVENTS)
        poll("the subscription", lambda url=url: subscriptions_open(url, 1))

    # writes through either process (each claimed and published by one of
    # them, in an order the two publishers race for)
    written = [create(servers[i % 2], key, f"Customer {i}") for i in range(6)]
    for client in clients:
        seen = [client.next_event()["customerId"] for _ in written]
        assert sorted(seen) == sorted(written)
    # then one more: a duplicate of an earlier event would come before it
    last = create(servers[1], key, "Last")
    assert [client.next_event()["customerId"] for client in clients] == [last, last]


def test_a_subscription_over_plain_http_is_told_to_use_a_websocket(
    secured: LiveServer, keys: dict[str, str]
) -> None:
    response = secured.http.post(
        f"{secured.url}/graphql",
        json={"query": EVENTS},
        headers={"Authorization": f"Bearer {keys['admin']}"},
    )
    assert response.status_code == 400
    assert "open a WebSocket to /graphql" in response.text
    # A query on the same path is still served.
    assert secured.gql("{ __typename }", key=keys["admin"]) == {"__typename": "Query"}
