"""Field permissions, the cost limit and the rate limit hold the same for a
query over HTTP, a mutation over HTTP and a subscription over a WebSocket
(graphql-transport-ws): one check in the schema's extensions refuses all
three, with the same error.

Subscriptions once escaped all three: the checks set a result before
execution, which strawberry ignores for a subscription, and the branch meant
for subscriptions compared strawberry's ``OperationType`` with graphql-core's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from graphql import GraphQLSchema, parse

from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.schema.build import build_schema
from crmgraph.schema.limits import QueryLimits, query_cost
from crmgraph.settings import Settings
from crmgraph.testing import LiveServer, live_server, settings_for
from tests.helpers import api_keys, poll
from tests.test_subscriptions import GraphQLWebSocket, graphql_ws, subscriptions_open

MAX_COST = 100
BUDGET = 1_000  # cost points per key and day

# the subscription: an agent received salaries and birthdays
GUARDED = "... on Employee { salary } contacts { birthday homeAddress }"
SUBSCRIBE_GUARDED = f"subscription {{ customerEvents {{ type customer {{ {GUARDED} }} }} }}"
QUERY_GUARDED = f"{{ customers(first: 1) {{ nodes {{ {GUARDED} }} }} }}"
MUTATE_GUARDED = (
    'mutation { createCustomer(input: {kind: CLIENT, name: "Probe"}) '
    f"{{ customer {{ {GUARDED} }} }} }}"
)

# 10 relationships x (their customer + 10 contacts): above MAX_COST under any root
DEAR = "relationships { toCustomer { contacts { name } } } contacts { name }"
SUBSCRIBE_DEAR = f"subscription {{ customerEvents {{ customer {{ {DEAR} }} }} }}"
QUERY_DEAR = f'{{ customer(id: "Q3VzdG9tZXI6MQ==") {{ {DEAR} }} }}'
MUTATE_DEAR = (
    'mutation { createCustomer(input: {kind: CLIENT, name: "Dear"}) '
    f"{{ customer {{ {DEAR} }} }} }}"
)

SUBSCRIBE_CHEAP = "subscription { customerEvents { id customer { id name } } }"
COUNT = "{ customers(first: 1) { totalCount } }"


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    pm = make_plugin_manager(Settings(load_entry_points=False))
    strawberry_schema, _ = build_schema(Catalog.from_plugin_manager(pm), pm)
    return strawberry_schema._schema


def cost_of(schema: GraphQLSchema, query: str) -> int:
    found = query_cost(schema, parse(query), limits=QueryLimits(max_cost=MAX_COST))
    assert found is not None
    return found.requested


@pytest.fixture
def keys(database_url: str) -> dict[str, str]:
    return api_keys(database_url, {"admin": "admin", "agent": "agent"}, "guarantees.example")


@pytest.fixture
def guarded(database_url: str) -> Iterator[LiveServer]:
    settings = settings_for(
        database_url,
        anonymous=False,
        max_query_cost=MAX_COST,
        rate_limit_cost=BUDGET,
        rate_limit_window_seconds=86_400,
    )
    with live_server(settings) as running:
        yield running


def http_error(server: LiveServer, query: str, key: str) -> dict[str, Any]:
    body = server.post(query, key=key)
    assert body["data"] is None, body
    [error] = body["errors"]
    return error


def subscription_error(client: GraphQLWebSocket, query: str) -> dict[str, Any]:
    """The one error a refused subscription gets, then its end."""
    client.subscribe(query)
    message = client.receive()
    assert message["type"] in ("next", "error"), message
    payload = message["payload"]
    errors = payload if message["type"] == "error" else payload["errors"]
    assert message["type"] == "error" or payload["data"] is None, message
    if message["type"] == "next":
        assert client.receive() == {"id": "1", "type": "complete"}
    [error] = errors
    return error


def same_refusal(*errors: dict[str, Any]) -> dict[str, Any]:
    """Every transport's error says the same: code and details (the byField of
    a cost refusal names each root field, which differ by operation)."""
    first = {k: v for k, v in errors[0]["extensions"].items() if k not in ("byField", "cost")}
    for error in errors[1:]:
        other = {k: v for k, v in error["extensions"].items() if k not in ("byField", "cost")}
        assert other == first, (errors[0], error)
    return first


def refused_everywhere(
    server: LiveServer, key: str, query: str, mutation: str, subscription: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The query's, mutation's and subscription's refusals to ``key``, checked
    the same (see same_refusal): (the query's error, the subscription's, what they share)."""
    over_query = http_error(server, query, key)
    over_mutation = http_error(server, mutation, key)
    with graphql_ws(server.url, key) as client:
        client.acknowledged()
        over_socket = subscription_error(client, subscription)
    return over_query, over_socket, same_refusal(over_query, over_mutation, over_socket)


def test_field_permissions_refuse_every_transport_alike(
    guarded: LiveServer, keys: dict[str, str]
) -> None:
    over_query, over_socket, refusal = refused_everywhere(
        guarded, keys["agent"], QUERY_GUARDED, MUTATE_GUARDED, SUBSCRIBE_GUARDED
    )
    assert refusal["code"] == "FORBIDDEN"
    assert set(refusal["fields"]) == {"Employee.salary", "Contact.birthday", "Contact.homeAddress"}
    assert over_socket["message"] == over_query["message"]
    # the refused mutation wrote nothing
    assert guarded.gql(COUNT, key=keys["admin"])["customers"]["totalCount"] == 0
    # an admin may subscribe to the same fields
    with graphql_ws(guarded.url, keys["admin"]) as admin:
        admin.acknowledged()
        admin.subscribe(SUBSCRIBE_GUARDED)
        poll("the admin's subscription", lambda: subscriptions_open(guarded.url, 1))


def test_the_cost_limit_refuses_every_transport_alike(
    guarded: LiveServer, keys: dict[str, str], schema: GraphQLSchema
) -> None:
    for query in (SUBSCRIBE_DEAR, QUERY_DEAR, MUTATE_DEAR):
        assert cost_of(schema, query) > MAX_COST, query
    admin = keys["admin"]
    _, over_socket, refusal = refused_everywhere(
        guarded, admin, QUERY_DEAR, MUTATE_DEAR, SUBSCRIBE_DEAR
    )
    assert refusal == {"code": "QUERY_TOO_EXPENSIVE", "limit": MAX_COST}
    assert over_socket["extensions"]["cost"] == cost_of(schema, SUBSCRIBE_DEAR)
    assert guarded.gql(COUNT, key=admin)["customers"]["totalCount"] == 0


def remaining(server: LiveServer, key: str) -> int:
    body = server.post(COUNT, key=key)
    return body["extensions"]["cost"]["rateLimit"]["remaining"]


def contacts_times(count: int) -> str:
    """A subscription whose cost grows by 10 with ``count`` (aliased contact lists)."""
    lists = " ".join(f"c{i}: contacts {{ name }}" for i in range(count))
    return f"subscription {{ customerEvents {{ customer {{ id {lists} }} }} }}"


def test_the_rate_limit_charges_and_refuses_a_subscription(
    database_url: str, keys: dict[str, str], schema: GraphQLSchema
) -> None:
    settings = settings_for(
        database_url, anonymous=False, rate_limit_cost=60, rate_limit_window_seconds=86_400
    )
    agent = keys["agent"]
    with live_server(settings) as server:
        before = remaining(server, agent)
        with graphql_ws(server.url, agent) as client:
            client.acknowledged()
            client.subscribe(SUBSCRIBE_CHEAP)
            poll("the agent's subscription", lambda: subscriptions_open(server.url, 1))
            # charged what one event's selection costs, like a query of it
            after = remaining(server, agent)
        assert before - after == cost_of(schema, SUBSCRIBE_CHEAP) + cost_of(schema, COUNT)
        lists = next(n for n in range(1, 10) if cost_of(schema, contacts_times(n)) > after)
        with graphql_ws(server.url, agent) as client:
            client.acknowledged()
            refused = subscription_error(client, contacts_times(lists))
        assert refused["extensions"]["code"] == "RATE_LIMITED"
        assert refused["extensions"]["remaining"] == after
        assert refused["extensions"]["cost"] == cost_of(schema, contacts_times(lists))
