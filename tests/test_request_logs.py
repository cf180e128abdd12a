"""The server's logs, read from a real ``crmgraph serve --workers 2`` process.

JSON lines on stderr (``CRMGRAPH_LOG_FORMAT=json``, level debug so every
logger speaks): each worker configured its logging; every line written while
a request ran carries that request's id, which is the ``X-Request-Id`` the
client sent (a sane one) and the response returned; each request has one
access line (operation, status, duration, cost, the path that answered); and
no line holds the API key used, a webhook's secret or a customer's e-mail.
Then: a WebSocket's id, the redaction itself, and a fault's 500 (the layer
alone: no route of the app raises on purpose).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from crmgraph.observability.logs import redact
from crmgraph.observability.middleware import RequestObservation
from crmgraph.observability.request_facts import RequestFacts
from crmgraph.testing import settings_for, user_key
from tests.conftest import LiveServer, fresh_database
from tests.helpers import free_port, poll, stop, wait_ready

PLUGINS = ["tests.plugins_for_tests.broken"]  # its validator raises for a name "boom..."
WEBHOOK_SECRET = "whsec_logs-test-4f9c2a7e1b8d6053"
EMAIL = "ada.lovelace.logs@example.org"

READ = "query CustomerPage($first: Int) { customers(first: $first) { edges { node { id name } } } }"
CREATE = """mutation NewCustomer($input: CreateCustomerInput!) {
  createCustomer(input: $input) { customer { id } userErrors { code } } }"""
WEBHOOK = """mutation NewWebhook($input: CreateWebhookInput!) {
  createWebhook(input: $input) { secret userErrors { code } } }"""


class Served:
    def __init__(self, url: str, key: str, log: Path) -> None:
        self.url, self.key, self.log = url, key, log

    def lines(self) -> list[dict[str, Any]]:
        """Every line written so far; each must be a JSON object."""
        return [orjson.loads(line) for line in self.log.read_text().splitlines() if line]


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    with fresh_database("sqlite", request, tmp_path / "crm.sqlite") as url:
        key = asyncio.run(user_key(settings_for(url, plugins=PLUGINS), "admin"))
        env = {
            **os.environ,
            "CRMGRAPH_DATABASE_URL": url,
            "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
            "CRMGRAPH_PLUGINS": ",".join(PLUGINS),
            "CRMGRAPH_LOG_FORMAT": "json",
            "CRMGRAPH_LOG_LEVEL": "debug",
        }
        port, log = free_port(), tmp_path / "stderr.log"
        with log.open("w") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "crmgraph", "serve", "--port", str(port), "--workers", "2"],
                env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        served = Served(f"http://127.0.0.1:{port}", key, log)
        try:
            wait_ready(process, served.url, log.read_text, attempts=600)
            yield served
        finally:
            stop(process, 30)


def post(
    http: httpx.Client, query: str, variables: dict[str, Any], request_id: str | None = None
) -> httpx.Response:
    headers = {"X-Request-Id": request_id} if request_id else {}
    response = http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    return response


def test_request_ids_access_lines_and_no_secrets(served: Served) -> None:
    auth = {"Authorization": f"Bearer {served.key}"}
    # one connection: one worker, whose caches let the second read go direct
    with httpx.Client(base_url=served.url, headers=auth, timeout=60) as http:
        hook = post(http, WEBHOOK, {"input": {"url": "http://127.0.0.1:9/hook",
                                              "eventTypes": ["*"], "secret": WEBHOOK_SECRET}},
                    "hook-1").json()  # fmt: skip
        assert hook["data"]["createWebhook"]["userErrors"] == []
        made = post(http, WEBHOOK, {"input": {"url": "http://127.0.0.1:9/other",
                                              "eventTypes": ["*"]}}).json()  # fmt: skip
        generated = made["data"]["createWebhook"]["secret"]
        assert generated.startswith("whsec_")
        post(http, CREATE, {"input": {"kind": "CLIENT", "name": "Ada", "email": EMAIL}}, "make-1")
        boom = post(http, CREATE, {"input": {"kind": "CLIENT", "name": "boom"}}, "boom-1").json()
        assert boom["errors"][0]["extensions"]["code"] == "PLUGIN_ERROR"
        reads = [post(http, READ, {"first": 5}, f"read-{n}") for n in range(3)]
        assert [r.headers["x-request-id"] for r in reads] == ["read-0", "read-1", "read-2"]
        minted = post(http, READ, {"first": 5}, "x" * 129).headers["x-request-id"]
        assert minted != "x" * 129 and len(minted) == 32  # not sane: a new one
        assert (
            http.get("/healthz", headers={"X-Request-Id": "probe:1"}).headers["x-request-id"]
            == "probe:1"
        )

    # both workers configured their logging: each says it started, as JSON
    # (the first to be ready answered; the other may still be starting)
    poll("two workers started", lambda: served.log.read_text().count("Started server process") >= 2)
    wanted = {"hook-1", "make-1", "boom-1", "read-0", "read-1", "read-2", minted, "probe:1"}

    def accessed() -> set[str]:
        return {
            line["request_id"] for line in served.lines() if line["logger"] == "crmgraph.access"
        }

    # a worker writes a request's access line after its answer has gone
    poll("every request's access line", lambda: wanted <= accessed())
    lines = served.lines()
    access = {line["request_id"]: line for line in lines if line["logger"] == "crmgraph.access"}
    first, later = access["read-0"], access["read-2"]
    assert (first["operation"], first["operation_type"], first["status"]) == (
        "CustomerPage", "query", 200,
    )  # fmt: skip
    assert first["answered_by"] == "full" and later["answered_by"] == "direct"
    assert first["cost"] == later["cost"] > 0
    assert all(
        isinstance(a["duration_ms"], float) and a["duration_ms"] > 0 for a in access.values()
    )
    assert access["hook-1"]["operation"] == "NewWebhook"
    assert access["hook-1"]["operation_type"] == "mutation"
    assert access["boom-1"]["outcome"] == "errors"
    assert access["probe:1"]["answered_by"] == "none" and access["probe:1"]["path"] == "/healthz"
    # who called: the key's public prefix, on every request it made; a probe, nobody
    prefix = served.key.split("_")[1]
    assert {access[r]["principal"] for r in ("hook-1", "boom-1", "read-0", minted)} == {prefix}
    assert access["probe:1"]["principal"] is None

    # the plugin's failure was logged inside its request, and says so
    failures = [line for line in lines if line["logger"] == "crmgraph.plugins"]
    assert failures and all(line.get("request_id") == "boom-1" for line in failures)
    assert "validator exploded" in failures[0]["exception"]
    # every line a request's code wrote names a request
    in_requests = ("crmgraph.access", "crmgraph.plugins", "crmgraph.errors", "crmgraph.compiled")
    assert all(line.get("request_id") for line in lines if line["logger"] in in_requests)
    assert sum("Started server process" in line["message"] for line in lines) == 2

    text = served.log.read_text()
    secret = served.key.split("_", 2)[2]
    for never in (served.key, secret, WEBHOOK_SECRET, generated, EMAIL):
        assert never not in text


def test_redaction_keeps_the_key_prefix_and_drops_secrets() -> None:
    line = (
        "Authorization: Bearer crm_0123456789ab_S3cr-et_x, key crm_0123456789ab_S3cr-et_x, "
        "whsec_abcDEF-123_x, crm_customer_table"
    )
    assert redact(line) == (
        "Authorization: Bearer [REDACTED], key crm_0123456789ab_[REDACTED], "
        "whsec_[REDACTED], crm_customer_table"
    )


def test_a_websocket_gets_a_request_id(server: LiveServer) -> None:
    url = server.url.replace("http://", "ws://") + "/graphql"
    sent = {"X-Request-Id": "socket-1"}
    with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")],
                 additional_headers=sent, open_timeout=30) as ws:  # fmt: skip
        assert ws.response is not None
        assert ws.response.headers["X-Request-Id"] == "socket-1"
    with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=30) as ws:
        assert ws.response is not None
        assert len(ws.response.headers["X-Request-Id"]) == 32  # none sent: a new one


def test_a_fault_answers_500_with_the_request_id_and_is_observed() -> None:
    """The layer alone, around an app that raises before answering: the
    client still gets the id to report, the observers see a failure."""
    seen: list[RequestFacts] = []

    async def faulty(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("kaput")

    async def exchange() -> httpx.Response:
        transport = httpx.ASGITransport(
            RequestObservation(faulty, [seen.append]), raise_app_exceptions=False
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/anything", headers={"X-Request-Id": "fault-1"})

    response = asyncio.run(exchange())
    assert (response.status_code, response.headers["x-request-id"]) == (500, "fault-1")
    assert [(f.request_id, f.status, f.outcome) for f in seen] == [("fault-1", 500, "failed")]
