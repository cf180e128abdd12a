"""GraphiQL as a person sees it: ``crmgraph serve --demo`` in a real process,
Debian's headless Chromium driven over the DevTools protocol (plain websockets,
no browser downloads). The page opens with the example tabs; a query typed into
the editor and run with the play button; a query built by clicking in the
explorer plugin; the role switch moving from the demo admin to the demo agent,
who sees fewer customers; and a subscription over graphql-ws receiving an event
written by a mutation the test sends over HTTP. The page must load everything
from the crmgraph server itself.

The editors are Monaco's, which put only the visible lines in the DOM: the page
hands its editors to ``window.crmgraphEditors`` so the whole answer can be read.

Needs /usr/bin/chromium and the GraphiQL build (``scripts/install-graphiql``):
without them the test skips locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import base64
import json
import os
import re
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
EXAMPLE_TABS = [
    "ListCustomers", "CustomerTimeline", "WhereCanItGo", "LogInteraction", "Funnel", "LiveEvents",
]  # fmt: skip
EVERY_ID = "{ customers(first: 100) { nodes { id } pageInfo { hasNextPage } } }"


@pytest.fixture
def graphiql_assets() -> None:
    missing = graphiql.missing_assets()
    require(
        not missing,
        f"GraphiQL assets missing in {graphiql.assets_dir()} ({', '.join(missing)}): "
        "run scripts/install-graphiql",
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """``crmgraph serve --demo`` on 127.0.0.1 with a few demo customers:
    anonymous access off, GraphiQL's headers holding the admin key, its role
    switch the agent's and viewer's. Yields the URL and the printed keys; one
    server for the module (seeding takes seconds), each test its own browser."""
    tmp_path = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMGRAPH_GRAPHIQL_")}
    env |= {"CRMGRAPH_DATABASE_URL": f"sqlite:///{tmp_path / 'browser.sqlite'}",
            "CRMGRAPH_LOAD_ENTRY_POINTS": "0"}  # fmt: skip
    if "CRMGRAPH_GRAPHIQL_ASSETS" in os.environ:
        env["CRMGRAPH_GRAPHIQL_ASSETS"] = os.environ["CRMGRAPH_GRAPHIQL_ASSETS"]
    log = (tmp_path / "server.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "crmgraph", "serve", "--demo", "--demo-customers", "40",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def logged() -> str:
        log.seek(0)
        return log.read()

    try:
        wait_ready(process, url, logged, attempts=600)
        keys = dict(re.findall(r"demo (\w+) key[^:]*: (\S+)", logged()))
        assert set(keys) == {"admin", "agent", "viewer"}, logged()
        yield url, keys
    finally:
        stop(process, 30)
        log.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    with chromium(tmp_path) as devtools:
        yield devtools


def render(browser: DevTools, server: str) -> None:
    browser.send("Page.navigate", url=f"{server}/graphql")
    # GraphiQL has rendered its editors once the page handed them over, and has
    # the schema once the explorer's root fields are listed
    poll(
        "GraphiQL to render",
        lambda: browser.evaluate(
            "!!(window.crmgraphEditors && window.crmgraphEditors.query"
            " && window.crmgraphEditors.headers"
            " && document.querySelector('.graphiql-execute-button'))"
        ),
    )


def editor(browser: DevTools, name: str) -> str:
    return browser.evaluate(f"window.crmgraphEditors.{name}.getValue()")


def new_tab(browser: DevTools) -> None:
    tabs = browser.evaluate("document.querySelectorAll('.graphiql-tab').length")
    browser.click(".graphiql-tab-add")
    poll(
        "a new, empty tab",
        lambda: (
            browser.evaluate("document.querySelectorAll('.graphiql-tab').length") == tabs + 1
            and editor(browser, "query") == ""
        ),
    )
    # the role switch gives a new tab the chosen demo key
    poll("a key in the new tab's headers", lambda: "Bearer" in editor(browser, "headers"))


def type_and_run(browser: DevTools, text: str) -> None:
    """Type ``text`` into the query editor as a person would (focus, select
    all, insert) and press the play button."""
    browser.evaluate(
        "(() => { const e = window.crmgraphEditors.query; e.focus();"
        " e.setSelection(e.getModel().getFullModelRange()); })()"
    )
    browser.send("Input.insertText", text=text)
    poll("the editor to hold the text", lambda: editor(browser, "query") == text)
    run(browser)


def run(browser: DevTools) -> None:
    """Press the play button once GraphiQL has parsed the editor's one
    operation (it parses after a pause; with the previous tab's two
    operations still in mind, the button would open a menu instead)."""
    poll(
        "GraphiQL to parse the editor's operation",
        lambda: browser.evaluate("window.crmgraphEditors.operations.length") == 1,
    )
    browser.evaluate("window.crmgraphEditors.response.setValue('')")
    browser.click(".graphiql-execute-button")


def response_containing(browser: DevTools, text: str) -> dict[str, Any]:
    """The result pane's JSON, once it shows ``text``."""

    def probe() -> str | None:
        shown = editor(browser, "response")
        return shown if shown and text in shown else None

    try:
        return json.loads(poll(f"{text!r} in the result pane", probe))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it shows: {editor(browser, 'response')}") from None


def on_screen(browser: DevTools) -> str:
    """The result pane's text as drawn (Monaco draws spaces as no-break spaces)."""
    return browser.evaluate("document.querySelector('.graphiql-response').innerText").replace(
        "\xa0", " "
    )


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


def visited(browser: DevTools) -> list[str]:
    """Every URL the page asked for: the performance log and the network events."""
    resources = browser.evaluate(
        "performance.getEntriesByType('resource').map(e => e.name).concat([location.href])"
    )
    requested = [
        event["params"]["request"]["url"]
        for event in browser.events
        if event["method"] == "Network.requestWillBeSent"
    ]
    sockets = [
        e["params"]["url"] for e in browser.events if e["method"] == "Network.webSocketCreated"
    ]
    return [
        u
        for u in (*resources, *requested, *sockets)
        if urlsplit(u).scheme in ("http", "https", "ws", "wss")
    ]


# The README's first query: docs/images/graphiql.png shows it answered on the demo.
README_QUERY = """{
  customers(first: 5) {
    edges { node { id name kind stage phase ... on Client { segment } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def readme_screenshot(browser: DevTools, path: Path) -> None:
    """The picture of README.md and docs/getting-started.md, taken when
    ``CRMGRAPH_SCREENSHOT=docs/images/graphiql.png`` asks: the README's query
    in a new tab, run, with its answer on screen. Set as a whole (Monaco would
    indent typed lines again)."""
    new_tab(browser)
    browser.evaluate(f"window.crmgraphEditors.query.setValue({json.dumps(README_QUERY)})")
    run(browser)
    response_containing(browser, "endCursor")
    shot = browser.send("Page.captureScreenshot", format="png")["data"]
    path.write_bytes(base64.b64decode(shot))


def test_graphiql_runs_a_query_in_chromium(
    graphiql_assets: None,
    server: tuple[str, dict[str, str]],
    browser: DevTools,
    tmp_path: Path,
) -> None:
    server, keys = server
    assert httpx.post(f"{server}/graphql", json={"query": "{ __typename }"}).status_code == 401
    assert create_over_http(server, keys["admin"], CUSTOMER)["name"] == CUSTOMER

    render(browser, server)
    assert browser.evaluate("document.title") == "crmgraph · GraphiQL"
    tabs = browser.evaluate("[...document.querySelectorAll('.graphiql-tab')].map(t => t.innerText)")
    assert [t.strip() for t in tabs] == EXAMPLE_TABS
    # the examples that name a customer got a demo customer's id
    assert '"CUSTOMER_ID"' not in json.dumps(
        browser.evaluate("JSON.parse(localStorage.getItem('graphiql:tabState') || '{}')")
    )
    new_tab(browser)
    type_and_run(
        browser, f'{{ customers(filter: {{search: "{CUSTOMER}"}}) {{ nodes {{ name }} }} }}'
    )
    result = response_containing(browser, CUSTOMER)
    assert [node["name"] for node in result["data"]["customers"]["nodes"]] == [CUSTOMER]
    # ... and it is really on screen, not only in the editor's model.
    assert CUSTOMER in on_screen(browser)

    screenshot = browser.send("Page.captureScreenshot", format="png")["data"]
    (tmp_path / "graphiql.png").write_bytes(base64.b64decode(screenshot))
    if os.environ.get("CRMGRAPH_SCREENSHOT"):
        readme_screenshot(browser, Path(os.environ["CRMGRAPH_SCREENSHOT"]))

    # Everything came from the crmgraph server: no CDN, no other host.
    # the bundle, its CSS and Monaco's three workers, all from /graphiql-assets
    expected = {f"{server}/graphiql-assets/{name}" for name in graphiql.ASSET_FILES}

    def all_loaded() -> list[str] | None:
        urls = visited(browser)
        return urls if expected <= set(urls) else None

    urls = poll("every asset to be loaded", all_loaded)
    foreign = sorted({u for u in urls if urlsplit(u).hostname != "127.0.0.1"})
    assert foreign == [], f"the page reached beyond the crmgraph server: {foreign}"
    assert uncaught(browser) == [], f"uncaught exceptions in the page: {uncaught(browser)}"


def test_the_explorer_builds_a_query_by_clicking(
    graphiql_assets: None, server: tuple[str, dict[str, str]], browser: DevTools
) -> None:
    server, _ = server
    render(browser, server)
    new_tab(browser)
    browser.click("button[aria-label='Show GraphiQL Explorer']")
    for selector in (
        ".graphiql-explorer-customers [data-field-name=customers]",
        ".graphiql-explorer-customers .graphiql-explorer-nodes [data-field-name=nodes]",
        ".graphiql-explorer-nodes .graphiql-explorer-name [data-field-name=name]",
    ):
        poll(f"the explorer to show {selector}", lambda s=selector: browser.evaluate(
            f"!!document.querySelector({json.dumps(s)})"
        ))  # fmt: skip
        browser.click(selector)
    built = poll(
        "the explorer's query in the editor",
        lambda: editor(browser, "query") if "name" in editor(browser, "query") else None,
    )
    assert re.sub(r"\s+", " ", built).strip() == "query MyQuery { customers { nodes { name } } }"
    run(browser)
    nodes = response_containing(browser, '"name"')["data"]["customers"]["nodes"]
    assert len(nodes) == 20 and all(set(node) == {"name"} for node in nodes)
    assert uncaught(browser) == [], f"uncaught exceptions in the page: {uncaught(browser)}"


def test_the_role_switch_shows_the_agents_row_scope(
    graphiql_assets: None, server: tuple[str, dict[str, str]], browser: DevTools
) -> None:
    server, keys = server
    render(browser, server)
    new_tab(browser)
    options = browser.evaluate(
        "[...document.querySelectorAll('#crmgraph-role option')].map(o => o.value)"
    )
    assert options == ["admin", "agent", "viewer"]
    assert keys["admin"] in editor(browser, "headers")
    type_and_run(browser, EVERY_ID)
    as_admin = response_containing(browser, '"id"')["data"]["customers"]
    assert as_admin["pageInfo"]["hasNextPage"] is False

    # what a person does: pick "agent" in the select
    browser.evaluate(
        "(() => { const select = document.getElementById('crmgraph-role'); select.focus(); })()"
    )
    browser.send("Input.dispatchKeyEvent", type="keyDown", key="ArrowDown", code="ArrowDown",
                 windowsVirtualKeyCode=40)  # fmt: skip
    browser.send("Input.dispatchKeyEvent", type="keyUp", key="ArrowDown", code="ArrowDown",
                 windowsVirtualKeyCode=40)  # fmt: skip
    poll("the agent's key in the headers", lambda: keys["agent"] in editor(browser, "headers"))
    run(browser)
    as_agent = response_containing(browser, '"id"')["data"]["customers"]
    assert 0 < len(as_agent["nodes"]) < len(as_admin["nodes"])
    assert {n["id"] for n in as_agent["nodes"]} < {n["id"] for n in as_admin["nodes"]}
    assert uncaught(browser) == [], f"uncaught exceptions in the page: {uncaught(browser)}"


def test_graphiql_runs_a_subscription_over_graphql_ws(
    graphiql_assets: None, server: tuple[str, dict[str, str]], browser: DevTools
) -> None:
    server, keys = server
    render(browser, server)
    browser.click(".graphiql-tab:last-of-type button")  # the LiveEvents example
    poll("the LiveEvents tab", lambda: "subscription LiveEvents" in editor(browser, "query"))
    run(browser)
    # the page opened a WebSocket to the server and authenticated with the key
    # from GraphiQL's headers editor: the server counts the open subscription
    readyz: list[Any] = []

    def open_on_server() -> bool:
        readyz.append(httpx.get(f"{server}/readyz", timeout=5).json())
        return readyz[-1]["subscriptions"] == 1

    try:
        poll("the subscription to be open on the server", open_on_server)
    except AssertionError as exc:
        shown = editor(browser, "response"), editor(browser, "query")
        raise AssertionError(f"{exc}: /readyz said {readyz[-1]}; the page shows {shown}") from None
    name = "Subscribed Co"
    customer_id = create_over_http(server, keys["admin"], name)["id"]

    event = response_containing(browser, name)["data"]["customerEvents"]
    assert event["type"] == "customer.created"
    assert event["payload"]["customerId"] == customer_id
    assert event["customer"]["name"] == name
    # the result pane draws the answer after the editor's model holds it
    poll("the event drawn in the result pane", lambda: name in on_screen(browser))
    # one WebSocket, to the crmgraph server itself (events the browser sent while
    # the test polled are read with the answers to its later commands)
    sockets = [
        e["params"]["url"] for e in browser.events if e["method"] == "Network.webSocketCreated"
    ]
    assert sockets == [server.replace("http://", "ws://") + "/graphql"]
    assert uncaught(browser) == [], f"uncaught exceptions in the page: {uncaught(browser)}"
