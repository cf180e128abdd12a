"""GraphiQL as a person sees it: a real server process, Debian's headless Chromium
driven over the DevTools protocol (plain websockets, no browser downloads), a query
typed into the editor and run with the play button, and the answer read back from
the result pane. The page must load everything from the crmgraph server itself.

Needs /usr/bin/chromium and the GraphiQL assets (``scripts/install-graphiql``):
without them the test skips locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from crmgraph import graphiql

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CRMGRAPH_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
CUSTOMER = "Browser Test Co"
QUERY = "{ customers(first: 5) { edges { node { name } } } }"
POLL_INTERVAL = 0.1

T = TypeVar("T")


def require(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI: there the prerequisites are installed by .ci/run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(what: str, probe: Callable[[], T | None], attempts: int = 300) -> T:
    """Call ``probe`` until it returns something truthy, at most ``attempts`` times."""
    for _ in range(attempts):
        result = probe()
        if result:
            return result
        time.sleep(POLL_INTERVAL)
    raise AssertionError(f"timed out waiting for {what}")


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
    crmgraph_cli(env, "users", "create", "--name", "Browser", "--email", "b@x.example",
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

    def ready() -> bool:
        if process.poll() is not None:
            log.seek(0)
            raise AssertionError(f"server exited with {process.returncode}:\n{log.read()}")
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        poll("the server's /readyz", ready, attempts=600)
        yield url, key
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


class DevTools:
    """A minimal synchronous Chrome DevTools Protocol client for one page target."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if message.get("id") == message_id:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element, as a person would."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                type=kind, x=box["x"], y=box["y"], button="left", clickCount=1,
            )  # fmt: skip


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    require(
        shutil.which(CHROMIUM) is not None,
        f"{CHROMIUM} is missing: apt-get install chromium",
    )
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    log = (tmp_path / "chromium.log").open("w+")
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--disable-dev-shm-usage", "--window-size=1280,900",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def debug_port() -> int | None:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"chromium exited with {process.returncode}:\n{log.read()}")
            active = profile / "DevToolsActivePort"  # written once it listens
            lines = active.read_text().split() if active.is_file() else []
            return int(lines[0]) if lines else None

        port = poll("Chromium's DevTools port", debug_port)

        def page_target() -> str | None:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
            except httpx.TransportError:
                return None
            pages = [t for t in targets if t.get("type") == "page"]
            return pages[0]["webSocketDebuggerUrl"] if pages else None

        with connect(poll("a page target", page_target), max_size=None, open_timeout=30) as ws:
            devtools = DevTools(ws)
            devtools.send("Page.enable")
            devtools.send("Runtime.enable")
            devtools.send("Network.enable")
            try:
                yield devtools
            finally:
                # the connection may drop as the browser goes away
                with contextlib.suppress(Exception):
                    devtools.send("Browser.close", timeout=10)
    finally:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        log.close()


def test_graphiql_runs_a_query_in_chromium(
    graphiql_assets: None, server: tuple[str, str], browser: DevTools, tmp_path: Path
) -> None:
    server, key = server
    assert httpx.post(f"{server}/graphql", json={"query": "{ __typename }"}).status_code == 401
    created = httpx.post(
        f"{server}/graphql",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "query": f'mutation {{ createCustomer(input: {{kind: CLIENT, name: "{CUSTOMER}"}})'
            " { customer { id name } userErrors { message } } }"
        },
        timeout=30,
    ).json()
    assert "errors" not in created, created
    assert created["data"]["createCustomer"]["userErrors"] == []
    assert created["data"]["createCustomer"]["customer"]["name"] == CUSTOMER

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
    assert browser.evaluate("document.title") == "crmgraph · GraphiQL"

    # Type the query into the editor: focus it, select all, and insert the text.
    browser.evaluate(
        "(() => { const cm = document.querySelector('.graphiql-query-editor .CodeMirror')"
        ".CodeMirror; cm.focus(); cm.execCommand('selectAll'); })()"
    )
    browser.send("Input.insertText", text=QUERY)
    poll(
        "the editor to hold the query",
        lambda: (
            browser.evaluate(
                "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()"
            )
            == QUERY
        ),
    )

    browser.click(".graphiql-execute-button")

    def response_text() -> str | None:
        text = browser.evaluate(
            "(() => { const el = document.querySelector('.graphiql-response .CodeMirror');"
            " return el && el.CodeMirror ? el.CodeMirror.getValue() : ''; })()"
        )
        return text if text and CUSTOMER in text else None

    result = json.loads(poll(f"{CUSTOMER!r} in the result pane", response_text))
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

    errors = [e["params"] for e in browser.events if e["method"] == "Runtime.exceptionThrown"]
    assert errors == [], f"uncaught exceptions in the page: {errors}"
