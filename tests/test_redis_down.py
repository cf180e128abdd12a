"""Redis away does not take the API down (crmgraph.redis_link): the server
starts with an unreachable ``CRMGRAPH_REDIS_URL`` and serves degraded, and a
Redis lost at run time turns nothing into INTERNAL_SERVER_ERROR; ``/readyz``
answers 200 with ``"redis": "degraded"``; rate limits are kept per process and
live events reach this process's subscribers; once Redis is back both go
through it again.

A real Redis of the test's own (``redis-server`` on a free port, no
persistence) is killed and restarted; the shared one on 6379 is never touched.
The server gets a socket for the subscriber's WebSocket."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from crmgraph.live import channel_for
from crmgraph.testing import LiveServer, live_server, settings_for
from tests.conftest import fresh_database
from tests.helpers import api_keys, free_port, poll
from tests.test_subscriptions import EVENTS, graphql_ws

CREATE = """mutation($name: String!) {
  createCustomer(input: {kind: CLIENT, name: $name}) { customer { id } userErrors { code } }
}"""
COSTLY = "{ customers(first: 10) { nodes { id } } }"


@contextlib.contextmanager
def own_redis(port: int, log: Path) -> Iterator[subprocess.Popen]:
    """``redis-server`` on ``port``, answering pings; killed (SIGKILL) afterwards
    unless the test already did."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with log.open("a") as out:
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    client = redis.Redis(port=port, socket_connect_timeout=1)

    def answers() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        poll(f"redis-server on port {port}", answers)
        yield process
    finally:
        client.close()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One engine: what Redis does is the same on both."""
    with fresh_database("sqlite", request, tmp_path / "crm.sqlite") as url:
        yield url


def ready(server: LiveServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def spend(server: LiveServer) -> int:
    """Run a query that costs points; the budget left afterwards."""
    body = server.post(COSTLY)
    assert "errors" not in body, body["errors"]
    return body["extensions"]["cost"]["rateLimit"]["remaining"]


def create(server: LiveServer, name: str) -> str:
    body = server.post(CREATE, {"name": name})
    assert "errors" not in body, body["errors"]
    return body["data"]["createCustomer"]["customer"]["id"]


def served_degraded(server: LiveServer) -> None:
    """Queries, writes, the rate limit and live events all work without Redis."""
    assert ready(server)["redis"] == "degraded"
    first = spend(server)
    assert spend(server) < first  # the budget is kept, in this process
    with graphql_ws(server.url) as client:
        client.acknowledged()
        client.subscribe(EVENTS)
        poll("the subscription", lambda: ready(server)["subscriptions"] == 1)
        customer = create(server, "Degraded Ltd")
        event = client.next_event()  # delivered in process
        assert (event["type"], event["customerId"]) == ("customer.created", customer)


def test_an_unreachable_redis_at_start_serves_degraded(database_url: str) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = settings_for(database_url, redis_url=closed, rate_limit_cost=10_000)
    with live_server(settings) as server:  # before: the start failed with a traceback
        served_degraded(server)


def test_a_redis_that_never_answers_at_start_serves_degraded(database_url: str) -> None:
    """A host that takes the connection and says nothing (a hung Redis): the
    start does not wait on it, and requests do not each wait for it."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # never accepts, never answers
        port = silent.getsockname()[1]
        settings = settings_for(
            database_url, redis_url=f"redis://127.0.0.1:{port}/0", rate_limit_cost=10_000
        )
        with live_server(settings) as server:
            served_degraded(server)


def test_redis_lost_and_back_at_run_time(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "redis.log"
    settings = settings_for(
        database_url, redis_url=f"redis://127.0.0.1:{port}/0", rate_limit_cost=10_000
    )
    channel = channel_for(database_url)
    with own_redis(port, log) as first_redis, live_server(settings) as server:
        client = redis.Redis(port=port)
        assert ready(server)["redis"] == "ok"
        poll("the live listener", lambda: client.pubsub_numsub(channel)[0][1] == 1)
        spend(server)
        assert client.keys("crmgraph:cost:*")  # the budget is in Redis
        client.close()

        first_redis.kill()
        first_redis.wait(timeout=30)
        served_degraded(server)  # before: every request INTERNAL_SERVER_ERROR

        with own_redis(port, log):
            client = redis.Redis(port=port)
            poll("/readyz to see Redis", lambda: ready(server)["redis"] == "ok")
            poll("the listener to resubscribe", lambda: client.pubsub_numsub(channel)[0][1] == 1)
            # live events go through Redis again: the test hears them on the channel
            listener = client.pubsub()
            listener.subscribe(channel)
            assert listener.get_message(timeout=10)["type"] == "subscribe"
            create(server, "Back Again Ltd")
            message = poll("an event on the channel", lambda: listener.get_message(timeout=1))
            assert b"customer.created" in message["data"]
            listener.close()
            # and the budget is shared there again (Redis came back empty)
            poll(
                "the budget back in Redis", lambda: spend(server) and client.keys("crmgraph:cost:*")
            )
            client.close()


def test_cli_changes_apply_with_redis_away(database_url: str) -> None:
    """The commands that announce a change (revoke, set-role, teams add) commit it
    first; Redis being away only delays other servers (key cache time limit), so
    the command succeeds with a warning instead of a traceback."""
    from tests.helpers import cli_in_process as cli  # no server here shares its cache

    closed = f"redis://127.0.0.1:{free_port()}/0"
    # the user and key made in process: creating them announces nothing (and
    # the CLI's users/keys create are tests/test_auth's); the commands run in
    # this process, their logged warnings in their stderr
    (token,) = api_keys(database_url, {"ana": "agent"}, "x.example").values()
    prefix = token.split("_")[1]
    for args in (
        ("users", "set-role", "--email", "ana@x.example", "--role", "viewer"),
        ("teams", "create", "north"),
        ("teams", "add", "north", "--email", "ana@x.example"),
        ("keys", "revoke", prefix),
    ):
        done = cli(database_url, *args, redis_url=closed)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        if args[1] != "create":
            assert "could not announce the change on Redis" in done.stderr
    listing = cli(database_url, "keys", "list").stdout
    assert prefix in listing and "viewer" in listing and "revoked" in listing
