"""GraphiQL as a person sees it: a real server process, Debian's headless Chromium
driven over the DevTools protocol (plain websockets, no browser downloads), a query
typed into the editor and run with the play button, and the answer read back from
the result pane; and a subscription run the same way, over graphql-ws, receiving
an event written by a mutation the test sends over HTTP. The page must load
everything from the crmgraph server itself.

Needs /usr/bin/chromium and the GraphiQL assets (``scripts/install-graphiql``):
without them the test skips locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from crmgraph import graphiql
from tests.helpers import DevTools, chromium, free_port, poll, require, stop, wait_ready

pytestmark = pytest.mark.browser

CUSTOMER = "Browser Test Co"
QUERY = "{ customers(first: 5) { edges { node { name } } } }"
SUBSCRIPTION = "subscription { customerEvents { type payload customer { name } } }"


@pytest.fixture
def graphiql_assets() -> None:
    missing = graphiql.missing_assets()
    require(
        not missing,
        f"GraphiQL assets missing in {graphiql.assets_dir()} ({', '.join(missing)}): "
        "run scripts/install-graphiql",
    )


def crmgraph_cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "crmgraph", *args],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The server as `serve --demo` runs it: anonymous access off, GraphiQL's
    headers editor holding an admin key."""
    port = free_port()
    env = {**os.environ, "CRMGRAPH_DATABASE_URL": f"sqlite:///{tmp_path / 'browser.sqlite'}",
           "CRMGRAPH_LOAD_ENTRY_POINTS": "0"}  # fmt: skip
    crmgraph_cli(env, "--create", "users", "create", "--name", "Browser", "--email", "b@x.example",
                 "--role", "admin")  # fmt: skip
    key = crmgraph_cli(env, "keys", "create", "--email", "b@x.example")
    env["CRMGRAPH_GRAPHIQL_TOKEN"] = key
    log = (tmp_path / "server.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "crmgraph.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def logged() -> str:
        log.seek(0)
        return log.read()

    try:
        wait_ready(process, url, logged, attempts=600)
        yield url, key
    finally:
        stop(process, 30)
        log.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    with chromium(tmp_path) as devtools:
        yield devtools


def render(browser: DevTools, server: str) -> None:
    browser.send("Page.navigate", url=f"{server}/graphql")
    # GraphiQL has rendered its editors (and fetched the schema) once the play button
    # and the query editor's CodeMirror exist.
    poll(
        "GraphiQL to render",
        lambda: browser.evaluate(
            "!!document.querySelector('.graphiql-execute-button')"
            " && !!document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror"
        ),
    )


def type_and_run(browser: DevTools, text: str) -> None:
    """Type ``text`` into the query editor as a person would (focus, select
    all, insert) and press the play button."""
    browser.evaluate(
        "(() => { const cm = document.querySelector('.graphiql-query-editor .CodeMirror')"
        ".CodeMirror; cm.focus(); cm.execCommand('selectAll'); })()"
    )
    browser.send("Input.insertText", text=text)
    poll(
        "the editor to hold the text",
        lambda: (
            browser.evaluate(
                "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()"
            )
            == text
        ),
    )
    browser.click(".graphiql-execute-button")


def response_containing(browser: DevTools, text: str) -> dict[str, Any]:
    """The result pane's JSON, once it shows ``text``."""

    def probe() -> str | None:
        shown = browser.evaluate(
            "(() => { const el = document.querySelector('.graphiql-response .CodeMirror');"
            " return el && el.CodeMirror ? el.CodeMirror.getValue() : ''; })()"
        )
        return shown if shown and text in shown else None

    return json.loads(poll(f"{text!r} in the result pane", probe))


def uncaught(browser: DevTools) -> list[dict[str, Any]]:
    return [e["params"] for e in browser.events if e["method"] == "Runtime.exceptionThrown"]


def create_over_http(server: str, key: str, name: str) -> dict[str, Any]:
    """A client created by the test itself, over HTTP with the admin's key."""
    created = httpx.post(
        f"{server}/graphql",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "query": f'mutation {{ createCustomer(input: {{kind: CLIENT, name: "{name}"}})'
            " { customer { id name } userErrors { message } } }"
        },
        timeout=30,
    ).json()
    assert "errors" not in created, created
    assert created["data"]["createCustomer"]["userErrors"] == [], created
    return created["data"]["createCustomer"]["customer"]


def test_graphiql_runs_a_query_in_chromium(
    graphiql_assets: None, server: tuple[str, str], browser: DevTools, tmp_path: Path
) -> None:
    server, key = server
    assert httpx.post(f"{server}/graphql", json={"query": "{ __typename }"}).status_code == 401
    assert create_over_http(server, key, CUSTOMER)["name"] == CUSTOMER

    render(browser, server)
    assert browser.evaluate("document.title") == "crmgraph · GraphiQL"
    type_and_run(browser, QUERY)
    result = response_containing(browser, CUSTOMER)
    names = [edge["node"]["name"] for edge in result["data"]["customers"]["edges"]]
    assert names == [CUSTOMER]
    # ... and it is really on screen, not only in the editor's model.
    assert CUSTOMER in browser.evaluate("document.querySelector('.graphiql-response').innerText")

    screenshot = browser.send("Page.captureScreenshot", format="png")["data"]
    (tmp_path / "graphiql.png").write_bytes(base64.b64decode(screenshot))
    if os.environ.get("CRMGRAPH_SCREENSHOT"):
        Path(os.environ["CRMGRAPH_SCREENSHOT"]).write_bytes(base64.b64decode(screenshot))

    # Everything came from the crmgraph server: no CDN, no other host.
    resources = browser.evaluate(
        "performance.getEntriesByType('resource').map(e => e.name).concat([location.href])"
    )
    requested = [
        event["params"]["request"]["url"]
        for event in browser.events
        if event["method"] == "Network.requestWillBeSent"
    ]
    urls = [
        u for u in (*resources, *requested) if urlsplit(u).scheme in ("http", "https", "ws", "wss")
    ]
    assert any(u.endswith("/graphiql-assets/graphiql.min.js") for u in urls), urls
    foreign = sorted({u for u in urls if urlsplit(u).hostname != "127.0.0.1"})
    assert foreign == [], f"the page reached beyond the crmgraph server: {foreign}"

    assert uncaught(browser) == [], f"uncaught exceptions in the page: {uncaught(browser)}"


def test_graphiql_runs_a_subscription_over_graphql_ws(
    graphiql_assets: None, server: tuple[str, str], browser: DevTools
) -> None:
    server, key = server
    render(browser, server)
    type_and_run(browser, SUBSCRIPTION)
    # the page opened a WebSocket to the server and authenticated with the key
    # from GraphiQL's headers editor: the server counts the open subscription
    poll(
        "the subscription to be open on the server",
        lambda: httpx.get(f"{server}/readyz", timeout=5).json()["subscriptions"] == 1,
    )
    name = "Subscribed Co"
    customer_id = create_over_http(server, key, name)["id"]

    event = response_containing(browser, name)["data"]["customerEvents"]
    assert event["type"] == "customer.created"
    assert event["payload"]["customerId"] == customer_id
    assert event["customer"] == {"name": name}
    assert name in browser.evaluate("document.querySelector('.graphiql-response').innerText")
    # one WebSocket, to the crmgraph server itself (events the browser sent while
    # the test polled are read with the answers to its later commands)
    sockets = [
        e["params"]["url"] for e in browser.events if e["method"] == "Network.webSocketCreated"
    ]
    assert sockets == [server.replace("http://", "ws://") + "/graphql"]
    assert uncaught(browser) == [], f"uncaught exceptions in the page: {uncaught(browser)}"
