"""Webhooks end to end, on SQLite and PostgreSQL: a real HTTP receiver on
loopback, a real crmgraph server (in a thread, and as a process that is killed
and started again). Conditions are polled with a bound, never slept on."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from crmgraph import webhooks
from crmgraph.app import with_state
from crmgraph.schema.ids import encode_id
from crmgraph.settings import Settings
from crmgraph.testing import LiveServer, live_server, settings_for, user_key
from tests.helpers import CREATE, create_customer, poll, server_process

# Fast retries for tests; each test overrides what it exercises.
FAST: dict[str, Any] = {
    "event_poll_seconds": 0.05,
    "webhook_backoff_seconds": 0.05,
    "webhook_backoff_max_seconds": 0.4,
    "webhook_max_attempts": 10,
    "webhook_disable_after": 5,
    "webhook_timeout_seconds": 5,
}

CREATE_WEBHOOK = """mutation($input: CreateWebhookInput!) {
  createWebhook(input: $input) {
    webhook { id url eventTypes active secretHint description }
    secret
    userErrors { field message code }
  }
}"""

UPDATE_WEBHOOK = """mutation($input: UpdateWebhookInput!) {
  updateWebhook(input: $input) {
    webhook { id url eventTypes active disabledReason disabledAt consecutiveFailures }
    secret
    userErrors { field message code }
  }
}"""

REPLAY = """mutation($id: ID!) {
  replayWebhookDelivery(input: {id: $id}) {
    delivery { id status attemptCount }
    userErrors { field message code }
  }
}"""

WEBHOOKS = """{ webhooks {
  id active disabledAt disabledReason consecutiveFailures
  deliveries(first: 50) { edges { node {
    id eventId eventType customerId status attemptCount nextAttemptAt lastStatusCode lastError
    deliveredAt
    attempts { attempt statusCode error durationMs startedAt nextRetryAt responseBody }
  } } }
} }"""


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["x-crmgraph-event-id"]


class Receiver:
    """A webhook endpoint on 127.0.0.1; ``answer(request)`` picks each status
    (called under a lock, before the request joins ``requests``)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answer: Callable[[Received], int] = lambda request: 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = Received({k.lower(): v for k, v in self.headers.items()}, body)
                with receiver.lock:
                    request.status = receiver.answer(request)
                    receiver.requests.append(request)
                self.send_response(request.status)
                self.send_header("Content-Length", "8")
                self.end_headers()
                self.wfile.write(b"received")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/crm"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def delivered(self) -> list[Received]:
        return [r for r in self.snapshot() if 200 <= r.status < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with contextlib.closing(Receiver()) as running:
        yield running


@pytest.fixture
def start(database_url: str) -> Iterator[Callable[..., LiveServer]]:
    """``start(**settings)``: a live server on the test's database, fast retries."""
    with contextlib.ExitStack() as stack:

        def make(**overrides: Any) -> LiveServer:
            settings = settings_for(database_url, **{**FAST, **overrides})
            server = stack.enter_context(live_server(settings))
            server.settings = settings  # type: ignore[attr-defined]
            return server

        yield make


def create_webhook(
    server: LiveServer, url: str, event_types: list[str] | None = None, **fields: Any
) -> tuple[dict[str, Any], str]:
    data = server.gql(
        CREATE_WEBHOOK, {"input": {"url": url, "eventTypes": event_types or ["*"], **fields}}
    )["createWebhook"]
    assert data["userErrors"] == [], data["userErrors"]
    return data["webhook"], data["secret"]


def rename(server: LiveServer, customer_id: str, name: str) -> None:
    """Rename a customer at version 1: one customer.updated event."""
    renamed = server.gql(
        "mutation($id: ID!, $name: String!) { updateCustomer(input: "
        "{id: $id, expectedVersion: 1, name: $name}) { userErrors { code } } }",
        {"id": customer_id, "name": name},
    )
    assert renamed["updateCustomer"]["userErrors"] == []


def webhook_state(server: LiveServer) -> dict[str, Any]:
    (hook,) = server.gql(WEBHOOKS)["webhooks"]
    hook["deliveries"] = [edge["node"] for edge in hook["deliveries"]["edges"]]
    return hook


def deliveries(server: LiveServer) -> list[dict[str, Any]]:
    return webhook_state(server)["deliveries"]


def fetch(settings: Settings, sql: str, *args: Any) -> list[dict[str, Any]]:
    return asyncio.run(with_state(settings, lambda state: state.db.fetch(sql, *args)))


def all_fanned_out(server: LiveServer) -> bool:
    rows = fetch(server.settings, "SELECT id FROM event WHERE webhooks_claimed_at IS NULL")  # type: ignore[attr-defined]
    return not rows


def signature_valid(secret: str, request: Received) -> bool:
    """The documented check, written out: t=<unix>,v1=hex(HMAC-SHA256(secret, "t.body"))."""
    fields = dict(part.split("=", 1) for part in request.headers["x-crmgraph-signature"].split(","))
    signed = fields["t"].encode() + b"." + request.body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return (
        hmac.compare_digest(expected, fields["v1"])
        and fields["t"] == request.headers["x-crmgraph-timestamp"]
    )


def test_signature_helpers() -> None:
    body = b'{"id":1}'
    header = webhooks.sign("s3cret-s3cret-s3cret", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert webhooks.verify("s3cret-s3cret-s3cret", header, body, now=1_700_000_010)
    assert not webhooks.verify("s3cret-s3cret-s3cret", header, body + b" ", now=1_700_000_010)
    assert not webhooks.verify("another-secret-here", header, body, now=1_700_000_010)
    assert not webhooks.verify("s3cret-s3cret-s3cret", header, body, now=1_700_000_999)  # stale
    assert webhooks.matches(["customer.*"], "customer.created")
    assert not webhooks.matches(["customer.*"], "customers.created")
    assert webhooks.matches(["*"], "need.recorded")
    settings = Settings(webhook_backoff_seconds=10, webhook_backoff_max_seconds=60)
    assert [webhooks.backoff_seconds(settings, n) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


def test_delivered_on_a_retry_signed_and_every_attempt_logged(
    start: Callable[..., LiveServer], receiver: Receiver
) -> None:
    receiver.answer = lambda request: 500 if len(receiver.requests) < 3 else 200
    server = start()
    hook, secret = create_webhook(server, receiver.url, ["customer.created"])
    assert secret.startswith("whsec_") and hook["secretHint"] == "…" + secret[-4:]
    customer = create_customer(server, name="Hooked")
    rename(server, customer["id"], "R")

    poll("the event delivered on its fourth attempt", receiver.delivered)
    requests = receiver.snapshot()
    assert [r.status for r in requests] == [500, 500, 500, 200]
    assert {r.event_id for r in requests} == {requests[0].event_id}  # one event, four tries
    assert [r.headers["x-crmgraph-attempt"] for r in requests] == ["1", "2", "3", "4"]
    for request in requests:
        assert signature_valid(secret, request)
        assert webhooks.verify(secret, request.headers["x-crmgraph-signature"], request.body)
        assert request.headers["x-crmgraph-event-type"] == "customer.created"
        assert request.headers["content-type"] == "application/json"
    assert not signature_valid("whsec_not-the-secret", requests[-1])
    body = requests[-1].payload
    assert body["type"] == "customer.created" and str(body["id"]) == requests[-1].event_id
    assert body["customerId"] == customer["id"] and body["data"]["customerId"] == customer["id"]

    def succeeded() -> dict[str, Any] | None:
        found = deliveries(server)
        return found[0] if found and found[0]["status"] == "SUCCEEDED" else None

    delivery = poll("the delivery log to show the success", succeeded)
    assert delivery["eventId"] == requests[-1].event_id
    assert delivery["eventType"] == "customer.created"
    assert delivery["customerId"] == customer["id"]
    assert delivery["attemptCount"] == 4 and delivery["lastStatusCode"] == 200
    assert delivery["nextAttemptAt"] is None and delivery["deliveredAt"] is not None
    log = delivery["attempts"]
    assert [a["attempt"] for a in log] == [1, 2, 3, 4]
    assert [a["statusCode"] for a in log] == [500, 500, 500, 200]
    assert all(a["nextRetryAt"] is not None for a in log[:3]) and log[3]["nextRetryAt"] is None
    assert all(a["durationMs"] >= 0 and a["error"] is None for a in log)
    assert log[0]["responseBody"] == "received"
    # backoff: each retry was due later than the attempt before it started
    assert log[0]["nextRetryAt"] < log[1]["nextRetryAt"] < log[2]["nextRetryAt"]

    poll("every event fanned out", lambda: all_fanned_out(server))
    assert len(deliveries(server)) == 1  # customer.updated is not subscribed
    assert webhook_state(server)["consecutiveFailures"] == 0


def test_a_customers_events_arrive_in_order_and_others_do_not_wait(
    start: Callable[..., LiveServer], receiver: Receiver
) -> None:
    """A client's creation fails (at least once) until a prospect's creation,
    written after it, has been delivered: the prospect is not held up, and the
    client's update waits for its creation."""

    def answer(request: Received) -> int:
        body = request.payload
        prospect_done = any(
            r.status == 200 and r.payload["data"].get("kind") == "prospect"
            for r in receiver.requests
        )
        is_client_creation = body["type"] == "customer.created" and body["data"]["kind"] == "client"
        # refused at least once even if the prospect's event happens to arrive first
        tried = any(r.payload == body for r in receiver.requests)
        return 500 if is_client_creation and not (prospect_done and tried) else 200

    receiver.answer = answer
    server = start()
    create_webhook(server, receiver.url, ["customer.*"])
    client = create_customer(server, name="First")
    rename(server, client["id"], "2nd")
    prospect = server.gql(CREATE, {"input": {"kind": "PROSPECT", "name": "Other"}})
    assert prospect["createCustomer"]["userErrors"] == []

    poll("all three events delivered", lambda: len(receiver.delivered()) == 3)
    requests = receiver.snapshot()
    of_client = [r for r in requests if r.payload["customerId"] == client["id"]]
    first_success = next(i for i, r in enumerate(of_client) if r.status == 200)
    assert first_success >= 1  # the creation failed at least once
    assert all(r.payload["type"] == "customer.created" for r in of_client[: first_success + 1])
    assert [r.payload["type"] for r in of_client[first_success + 1 :]] == ["customer.updated"]
    assert int(of_client[-1].event_id) > int(of_client[0].event_id)
    prospect_index = next(
        i for i, r in enumerate(requests) if r.payload["data"]["kind"] == "prospect"
    )
    client_success = requests.index(of_client[first_success])
    assert prospect_index < client_success  # the other customer did not wait


def test_replay_resends_a_failed_delivery(
    start: Callable[..., LiveServer], receiver: Receiver
) -> None:
    receiver.answer = lambda request: 503
    server = start(webhook_max_attempts=2)
    create_webhook(server, receiver.url)
    create_customer(server, name="Unlucky")

    def failed() -> dict[str, Any] | None:
        found = deliveries(server)
        return found[0] if found and found[0]["status"] == "FAILED" else None

    delivery = poll("the delivery to fail after two attempts", failed)
    assert delivery["attemptCount"] == 2 and delivery["lastStatusCode"] == 503
    assert delivery["lastError"] == "HTTP 503" and delivery["nextAttemptAt"] is None
    assert [a["statusCode"] for a in delivery["attempts"]] == [503, 503]
    assert delivery["attempts"][1]["nextRetryAt"] is None  # the last try: no retry planned

    receiver.answer = lambda request: 200
    replayed = server.gql(REPLAY, {"id": delivery["id"]})["replayWebhookDelivery"]
    assert replayed["userErrors"] == []
    assert replayed["delivery"]["status"] in ("PENDING", "SUCCEEDED")

    def succeeded() -> dict[str, Any] | None:
        found = deliveries(server)
        return found[0] if found[0]["status"] == "SUCCEEDED" else None

    done = poll("the replayed delivery to succeed", succeeded)
    assert [a["statusCode"] for a in done["attempts"]] == [503, 503, 200]
    assert receiver.snapshot()[-1].headers["x-crmgraph-attempt"] == "3"

    for bad_id, code in (
        ("nonsense", "INVALID_ID"),
        (encode_id("Customer", 1), "INVALID_ID"),
        (encode_id("WebhookDelivery", 999_999), "NOT_FOUND"),
    ):
        errors = server.gql(REPLAY, {"id": bad_id})["replayWebhookDelivery"]["userErrors"]
        assert [(e["field"], e["code"]) for e in errors] == [("id", code)], bad_id


def test_a_webhook_failing_again_and_again_is_disabled_with_its_reason(
    start: Callable[..., LiveServer], receiver: Receiver
) -> None:
    receiver.answer = lambda request: 500
    server = start(webhook_max_attempts=2, webhook_disable_after=2)
    hook, _ = create_webhook(server, receiver.url)
    create_customer(server, name="One")
    create_customer(server, name="Two")

    state = poll(
        "the webhook to be disabled", lambda: (s := webhook_state(server))["disabledAt"] and s
    )
    assert state["active"] is False and state["consecutiveFailures"] == 2
    assert "2 consecutive failed deliveries" in state["disabledReason"]
    assert "HTTP 500" in state["disabledReason"]
    assert {d["status"] for d in state["deliveries"]} == {"FAILED"}
    assert len(receiver.snapshot()) == 4  # two deliveries, two attempts each

    create_customer(server, name="Three")  # a disabled webhook receives nothing new
    poll("every event fanned out", lambda: all_fanned_out(server))
    assert len(deliveries(server)) == 2
    refused = server.gql(REPLAY, {"id": state["deliveries"][0]["id"]})["replayWebhookDelivery"]
    assert refused["userErrors"][0]["code"] == "INVALID"
    assert "disabled" in refused["userErrors"][0]["message"]

    receiver.answer = lambda request: 200
    enabled = server.gql(UPDATE_WEBHOOK, {"input": {"id": hook["id"], "active": True}})
    payload = enabled["updateWebhook"]
    assert payload["userErrors"] == []
    assert payload["webhook"]["active"] is True
    assert payload["webhook"]["disabledReason"] is None
    assert payload["webhook"]["consecutiveFailures"] == 0
    replayed = server.gql(REPLAY, {"id": state["deliveries"][0]["id"]})["replayWebhookDelivery"]
    assert replayed["userErrors"] == []
    poll("the replay delivered", receiver.delivered)


def test_only_holders_of_webhook_manage_may_manage_webhooks(
    start: Callable[..., LiveServer], receiver: Receiver
) -> None:
    server = start()
    settings = server.settings  # type: ignore[attr-defined]
    admin = asyncio.run(user_key(settings, "admin"))
    viewer = server.gql("{ viewer { permissions } }", key=admin)["viewer"]
    assert webhooks.WEBHOOK_MANAGE in viewer["permissions"]
    hook, _ = create_webhook(server, receiver.url)
    for role in ("manager", "agent", "viewer"):
        key = asyncio.run(user_key(settings, role))
        listed = server.post("{ webhooks { id url } }", key=key)
        assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN", role
        assert listed["errors"][0]["extensions"]["permissions"] == [webhooks.WEBHOOK_MANAGE]
        created = server.gql(
            CREATE_WEBHOOK, {"input": {"url": receiver.url, "eventTypes": ["*"]}}, key=key
        )["createWebhook"]
        assert created["webhook"] is None and created["secret"] is None
        assert [e["code"] for e in created["userErrors"]] == ["FORBIDDEN"]
        updated = server.gql(
            UPDATE_WEBHOOK, {"input": {"id": hook["id"], "url": "http://evil.example/"}}, key=key
        )["updateWebhook"]
        assert [e["code"] for e in updated["userErrors"]] == ["FORBIDDEN"]
        deleted = server.gql(
            "mutation($id: ID!) { deleteWebhook(input: {id: $id}) { userErrors { code } } }",
            {"id": hook["id"]},
            key=key,
        )["deleteWebhook"]
        assert [e["code"] for e in deleted["userErrors"]] == ["FORBIDDEN"]
    (only,) = server.gql("{ webhooks { id url } }", key=admin)["webhooks"]
    assert only == {"id": hook["id"], "url": receiver.url}


def test_bad_input_is_reported_as_user_errors(start: Callable[..., LiveServer]) -> None:
    server = start()
    bad = server.gql(
        CREATE_WEBHOOK,
        {"input": {"url": "ftp://example.com/x", "eventTypes": ["Customer Created", "ok.*"],
                   "secret": "short"}},
    )["createWebhook"]  # fmt: skip
    assert bad["webhook"] is None and bad["secret"] is None
    assert sorted((e["field"], e["code"]) for e in bad["userErrors"]) == [
        ("eventTypes", "INVALID"),
        ("secret", "INVALID"),
        ("url", "INVALID"),
    ]
    for url in ("not a url", "http://", "   ", "https://exa mple.com/"):
        errors = server.gql(CREATE_WEBHOOK, {"input": {"url": url, "eventTypes": ["*"]}})
        assert [e["field"] for e in errors["createWebhook"]["userErrors"]] == ["url"], url
    empty = server.gql(CREATE_WEBHOOK, {"input": {"url": "https://example.com", "eventTypes": []}})
    assert [e["code"] for e in empty["createWebhook"]["userErrors"]] == ["REQUIRED"]
    assert server.gql("{ webhooks { id } }")["webhooks"] == []  # nothing was written

    hook, _ = create_webhook(
        server, "https://example.com/in", ["need.recorded", "customer.*"], secret="x" * 16
    )
    assert hook["eventTypes"] == ["customer.*", "need.recorded"]
    changed = server.gql(
        UPDATE_WEBHOOK,
        {"input": {"id": hook["id"], "url": "https://example.org/in", "eventTypes": ["*"],
                   "secret": None}},
    )["updateWebhook"]  # fmt: skip
    assert changed["userErrors"] == []
    assert changed["webhook"]["url"] == "https://example.org/in"
    assert changed["webhook"]["eventTypes"] == ["*"]
    assert changed["secret"].startswith("whsec_")  # a new one, shown once
    for bad_id, code in (("nope", "INVALID_ID"), (encode_id("Webhook", 999_999), "NOT_FOUND")):
        errors = server.gql(UPDATE_WEBHOOK, {"input": {"id": bad_id, "url": "https://e.com"}})
        assert [e["code"] for e in errors["updateWebhook"]["userErrors"]] == [code]
    delete = (
        "mutation($id: ID!) { deleteWebhook(input: {id: $id}) { deletedId userErrors { code } } }"
    )
    assert server.gql(delete, {"id": hook["id"]})["deleteWebhook"] == {
        "deletedId": hook["id"],
        "userErrors": [],
    }
    again = server.gql(delete, {"id": hook["id"]})["deleteWebhook"]
    assert again == {"deletedId": None, "userErrors": [{"code": "NOT_FOUND"}]}
    assert server.gql("{ webhooks { id } }")["webhooks"] == []


def test_listing_webhooks_costs_the_same_statements_however_many(
    start: Callable[..., LiveServer], receiver: Receiver
) -> None:
    server = start()
    listing = (
        "{ webhooks { id deliveries(first: 5) { edges { node { eventType status "
        "attempts { attempt statusCode } } } pageInfo { hasNextPage } } } }"
    )

    def logged(count: int) -> bool:
        hooks = server.gql(listing)["webhooks"]
        nodes = [edge["node"] for hook in hooks for edge in hook["deliveries"]["edges"]]
        return len(nodes) == count and all(n["attempts"] for n in nodes)

    create_webhook(server, receiver.url)
    create_customer(server, name="Counted once")
    poll("one delivery logged", lambda: logged(1))
    one = server.statements(listing)
    for _ in range(2):
        create_webhook(server, receiver.url)
    create_customer(server, name="Counted three times")
    poll("four deliveries logged", lambda: logged(4))
    # the webhooks, their deliveries and the deliveries' attempts: one statement each
    assert server.statements(listing) == one == 3


def test_two_servers_on_one_database_deliver_each_event_once(
    start: Callable[..., LiveServer], receiver: Receiver
) -> None:
    first, second = start(), start()
    _, secret = create_webhook(first, receiver.url)
    ids = [
        create_customer(server, name=f"C{n}")["id"] for n in range(3) for server in (first, second)
    ]
    poll("six events delivered", lambda: len(receiver.delivered()) >= 6)
    poll(
        "every delivery recorded", lambda: {d["status"] for d in deliveries(first)} == {"SUCCEEDED"}
    )
    requests = receiver.snapshot()
    assert len(requests) == 6 and len({r.event_id for r in requests}) == 6
    assert sorted(r.payload["customerId"] for r in requests) == sorted(ids)
    assert all(signature_valid(secret, r) for r in requests)


@pytest.fixture
def process_settings(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CRMGRAPH_DATABASE_URL": database_url,
        "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
        "CRMGRAPH_ANONYMOUS": "1",
        "CRMGRAPH_RATE_LIMIT_COST": "0",
        "CRMGRAPH_EVENT_POLL_SECONDS": "0.05",
        "CRMGRAPH_WEBHOOK_BACKOFF_SECONDS": "0.1",
        "CRMGRAPH_WEBHOOK_BACKOFF_MAX_SECONDS": "0.3",
        "CRMGRAPH_WEBHOOK_MAX_ATTEMPTS": "1000",
        "CRMGRAPH_WEBHOOK_TIMEOUT_SECONDS": "2",
    }


def test_a_server_killed_with_deliveries_outstanding_loses_none(
    process_settings: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    """Through real server processes: mutations lead to signed deliveries; the
    server is killed (SIGKILL) while every delivery is still failing, and the
    next server process delivers them all."""
    receiver.answer = lambda request: 503
    log = tmp_path / "server.log"

    def gql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = httpx.post(
            f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        ).json()
        assert not body.get("errors"), body
        return body["data"]

    with server_process(process_settings, log) as (process, url):
        created = gql(url, CREATE_WEBHOOK, {"input": {"url": receiver.url, "eventTypes": ["*"]}})
        secret = created["createWebhook"]["secret"]
        ids = []
        for name in ("Ana", "Bea", "Cid"):
            made = gql(url, CREATE, {"input": {"kind": "CLIENT", "name": name}})["createCustomer"]
            ids.append(made["customer"]["id"])
        poll(
            "each event tried and refused",
            lambda: {r.payload["customerId"] for r in receiver.snapshot()} == set(ids),
        )
        process.kill()
        process.wait(timeout=30)
    tried = {r.event_id for r in receiver.snapshot()}
    assert not receiver.delivered()

    receiver.answer = lambda request: 200
    with server_process(process_settings, log) as (_, url):
        poll(
            "every event delivered by the next server",
            lambda: {r.event_id for r in receiver.delivered()} == tried,
            attempts=600,
        )
        delivered = receiver.delivered()
        assert sorted(r.payload["customerId"] for r in delivered) == sorted(ids)
        assert all(signature_valid(secret, r) for r in delivered)
        assert all(r.payload["type"] == "customer.created" for r in delivered)


def test_a_customer_type_may_not_take_a_webhook_type_name(tmp_path: Path) -> None:
    """Strawberry would silently drop one of two types of the same name."""
    import dataclasses
    import types

    from crmgraph.hookspecs import hookimpl
    from crmgraph.plugins.client import CLIENT
    from crmgraph.registry import Catalog, PluginError, make_plugin_manager

    clash = dataclasses.replace(CLIENT, key="hook", graphql_name="WebhookDelivery")
    plugin = types.SimpleNamespace(crmgraph_customer_types=hookimpl(lambda: [clash]))
    settings = settings_for(f"sqlite:///{tmp_path / 'unused.sqlite'}")
    with pytest.raises(PluginError, match="WebhookDelivery"):
        Catalog.from_plugin_manager(make_plugin_manager(settings, extra_plugins=[plugin]))
