"""An open WebSocket follows its key: revoked, the connection is closed
(4403, "API key revoked") and gets no event after the revocation; a user
whose role changes keeps the connection under the new rights: a subscription
asking for a field the new role may not read ends with FORBIDDEN, the others
go on with the new row scope.

Keys are revoked and roles changed the way an operator does it, with the
``crmgraph`` command line, here in the test's process (so the server hears it
as another process does through Redis: crmgraph.principal_cache.forget), and
once behind every process's back, which the periodic re-check catches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from crmgraph import auth, cli
from crmgraph.app import AppState, with_state
from crmgraph.auth_changes import REVOKED_CLOSE_CODE, REVOKED_REASON
from crmgraph.testing import LiveServer, live_server, settings_for
from tests.helpers import api_keys, poll, require, server_process
from tests.test_subscriptions import (
    GraphQLWebSocket,
    create,
    graphql_ws,
    redis_reachable,
    server_env,
    subscriptions_open,
)

NAMES = "subscription { customerEvents { type customer { name } } }"
SALARIES = "subscription { customerEvents { customer { name ... on Employee { salary } } } }"
MANAGER_EMAIL = "manager@revoked.example"
SET_ROLE = ["users", "set-role", "--email", MANAGER_EMAIL]
CREATE_IN_TEAM = """mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { customer { id } userErrors { message } }
}"""


@pytest.fixture
def keys(database_url: str) -> dict[str, str]:
    return api_keys(database_url, {"admin": "admin", "manager": "manager"}, "revoked.example")


@pytest.fixture
def secured(database_url: str) -> Any:
    with live_server(settings_for(database_url, anonymous=False)) as running:
        yield running


def subscribe(client: GraphQLWebSocket, operation_id: str, query: str) -> None:
    client.send({"id": operation_id, "type": "subscribe", "payload": {"query": query}})


def closed_without_another_message(client: GraphQLWebSocket) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as closed:
        message = client.receive()
        pytest.fail(f"received {json.dumps(message)} after the revocation")
    return closed.value


def test_revoking_a_key_closes_its_open_subscription(
    secured: LiveServer, keys: dict[str, str], database_url: str
) -> None:
    admin_key = keys["admin"]
    with (
        graphql_ws(secured.url, keys["manager"]) as manager,
        graphql_ws(secured.url, admin_key) as admin,
    ):
        manager.acknowledged().subscribe(NAMES)
        admin.acknowledged().subscribe(NAMES)
        poll("two open subscriptions", lambda: subscriptions_open(secured.url, 2))
        create(secured, admin_key, "Before")
        assert manager.next_event()["customer"]["name"] == "Before"
        assert admin.next_event()["customer"]["name"] == "Before"

        assert cli.main(["--database", database_url, "keys", "revoke", keys["manager"]]) == 0
        create(secured, admin_key, "After")  # committed after the revocation

        closed = closed_without_another_message(manager)
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (REVOKED_CLOSE_CODE, REVOKED_REASON)
        # another key's subscription goes on; the revoked key gets 401 over HTTP
        assert admin.next_event()["customer"]["name"] == "After"
        response = secured.http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {keys['manager']}"},
        )
        assert response.status_code == 401
        poll("one open subscription", lambda: subscriptions_open(secured.url, 1))


def test_a_key_revoked_behind_the_servers_back_is_closed_by_the_periodic_check(
    database_url: str, keys: dict[str, str]
) -> None:
    """No forget() reaches the server (a revocation written straight to the
    database): the re-check every CRMGRAPH_API_KEY_CACHE_SECONDS closes it."""
    settings = settings_for(database_url, anonymous=False, api_key_cache_seconds=0.5)
    with live_server(settings) as server, graphql_ws(server.url, keys["manager"]) as manager:
        manager.acknowledged().subscribe(NAMES)
        poll("the subscription", lambda: subscriptions_open(server.url, 1))

        async def revoke(state: AppState) -> None:
            prefix = auth.split_key(keys["manager"])[0]  # type: ignore[index]
            await state.db.fetch(
                "UPDATE api_key SET revoked_at = {} WHERE prefix = {}", auth.writes.now(), prefix
            )

        asyncio.run(with_state(settings_for(database_url), revoke))
        closed = closed_without_another_message(manager)  # waits up to 30 s
        assert closed.rcvd is not None and closed.rcvd.code == REVOKED_CLOSE_CODE


def test_a_role_change_checks_open_subscriptions_again(
    secured: LiveServer, keys: dict[str, str], database_url: str
) -> None:
    manager_key, admin_key = keys["manager"], keys["admin"]
    with graphql_ws(secured.url, manager_key) as manager:
        manager.acknowledged()
        subscribe(manager, "salaries", SALARIES)
        subscribe(manager, "names", NAMES)
        poll("two open subscriptions", lambda: subscriptions_open(secured.url, 2))
        create(secured, admin_key, "Seen by a manager")
        received = {manager.receive()["id"] for _ in range(2)}
        assert received == {"salaries", "names"}

        assert cli.main(["--database", database_url, *SET_ROLE, "--role", "agent"]) == 0

        # the subscription asking for salaries ends, as HTTP would refuse it
        refused = manager.receive()
        assert (refused["id"], refused["type"]) == ("salaries", "next"), refused
        [error] = refused["payload"]["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["extensions"]["fields"] == ["Employee.salary"]
        assert manager.receive() == {"id": "salaries", "type": "complete"}

        # the other goes on with an agent's row scope: the admin's customer is
        # not theirs, the one they create is
        create(secured, admin_key, "The admin's")
        create(secured, manager_key, "Their own")
        event = manager.receive()
        assert event["id"] == "names", event
        assert event["payload"]["data"]["customerEvents"]["customer"]["name"] == "Their own"
        poll("one open subscription", lambda: subscriptions_open(secured.url, 1))


def test_a_revocation_closes_the_keys_connections_on_every_worker(
    database_url: str, keys: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two server processes sharing Redis, the key's cache an hour long (so
    no periodic check fires): `crmgraph keys revoke` announces the prefix on
    Redis and each worker closes the key's connections."""
    if database_url.startswith("sqlite"):
        pytest.skip("several workers are a PostgreSQL deployment")
    require(redis_reachable(), "Redis on 127.0.0.1:6379")
    env = {**server_env(database_url), "CRMGRAPH_API_KEY_CACHE_SECONDS": "3600"}
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(server_process(env, tmp_path / f"server{n}.log"))[1] for n in (1, 2)
        ]
        clients = [stack.enter_context(graphql_ws(url, keys["manager"])) for url in urls]
        for client, url in zip(clients, urls, strict=True):
            client.acknowledged().subscribe(NAMES)
            poll("the subscription", lambda url=url: subscriptions_open(url, 1))
        monkeypatch.setenv("CRMGRAPH_REDIS_URL", env["CRMGRAPH_REDIS_URL"])
        assert cli.main(["--database", database_url, "keys", "revoke", keys["manager"]]) == 0
        for client in clients:
            closed = closed_without_another_message(client)
            assert closed.rcvd is not None and closed.rcvd.code == REVOKED_CLOSE_CODE


def test_joining_a_team_widens_an_open_subscription_at_once(
    secured: LiveServer, keys: dict[str, str], database_url: str
) -> None:
    """An agent's subscription receives a team's customers from the moment
    `crmgraph teams add` puts them in it, without reconnecting."""
    admin_key = keys["admin"]
    assert cli.main(["--database", database_url, "teams", "create", "North"]) == 0
    # the manager becomes an agent, who sees their own and their teams' customers
    assert cli.main(["--database", database_url, *SET_ROLE, "--role", "agent"]) == 0
    [team] = secured.gql("{ teams { id name } }", key=admin_key)["teams"]

    def create_for_team(name: str) -> None:
        data = secured.gql(
            CREATE_IN_TEAM,
            {"input": {"kind": "CLIENT", "name": name, "teamId": team["id"]}},
            key=admin_key,
        )
        assert data["createCustomer"]["userErrors"] == []

    with graphql_ws(secured.url, keys["manager"]) as agent:
        agent.acknowledged().subscribe(NAMES)
        poll("the subscription", lambda: subscriptions_open(secured.url, 1))
        create_for_team("Before joining")  # not theirs: not delivered
        command = ["--database", database_url, "teams", "add", "North", "--email", MANAGER_EMAIL]
        assert cli.main(command) == 0
        create_for_team("After joining")
        assert agent.next_event()["customer"]["name"] == "After joining"
