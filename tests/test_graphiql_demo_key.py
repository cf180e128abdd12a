"""The demo GraphiQL page puts the admin key in its headers editor only for a
browser on the server's own machine: the page needs no key, so with
``serve --demo --host 0.0.0.0`` anyone who could reach it was handed an admin
key. Client addresses are set through the ASGI scope (httpx's ASGITransport),
then checked once against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from crmgraph import graphiql
from crmgraph.app import create_app
from crmgraph.testing import live_server, settings_for
from tests.conftest import fresh_database

DEMO_KEY = "crm_demo0000_not-a-real-secret"
# the role switch's other keys (serve --demo on a loopback address sets them)
AGENT_KEY = "crm_agent000_not-a-real-secret"
VIEWER_KEY = "crm_viewer00_not-a-real-secret"
HTML = {"accept": "text/html"}


@pytest.fixture(autouse=True)
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-in asset files: without them the page is the "not installed" one."""
    directory = tmp_path / "assets"
    directory.mkdir()
    for name in graphiql.ASSET_FILES:
        (directory / name).write_text("")
    monkeypatch.setenv("CRMGRAPH_GRAPHIQL_ASSETS", str(directory))
    keys = f'{{"admin": "{DEMO_KEY}", "agent": "{AGENT_KEY}", "viewer": "{VIEWER_KEY}"}}'
    monkeypatch.setenv(graphiql.DEMO_KEYS_VARIABLE, keys)


def page_for(client: tuple[str, int], headers: dict[str, str], token: str | None = DEMO_KEY) -> str:
    settings = settings_for("sqlite:///unused.sqlite", anonymous=False, graphiql_token=token)
    app = create_app(settings)  # not started: the page reads no database

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as http:
            return await http.get("/graphql", headers={**HTML, **headers})

    response = asyncio.run(get())
    assert response.status_code == 200 and "GraphiQL" in response.text, response.text
    assert "graphiql.js" in response.text  # the real page, not "assets missing"
    return response.text


@pytest.mark.parametrize(
    ("client", "host"),
    [
        ("127.0.0.1", "127.0.0.1:8000"),
        ("127.0.0.1", "localhost:8000"),
        ("::1", "[::1]:8000"),
        ("::ffff:127.0.0.1", "localhost"),
    ],
)
def test_a_browser_on_this_machine_gets_the_demo_key(client: str, host: str) -> None:
    page = page_for((client, 51000), {"host": host})
    assert DEMO_KEY in page and AGENT_KEY in page and VIEWER_KEY in page


@pytest.mark.parametrize(
    ("client", "headers"),
    [
        # --host 0.0.0.0: a browser elsewhere, asking for the server's address
        ("203.0.113.7", {"host": "198.51.100.2:8000"}),
        ("10.1.2.3", {"host": "crm.internal:8000"}),
        # even when it writes a loopback Host
        ("203.0.113.7", {"host": "127.0.0.1:8000"}),
        # a reverse proxy on this machine: the browser is elsewhere
        ("127.0.0.1", {"host": "127.0.0.1:8000", "x-forwarded-for": "203.0.113.7"}),
        ("127.0.0.1", {"host": "localhost", "forwarded": "for=203.0.113.7"}),
        # another site's page whose DNS name now points at 127.0.0.1
        ("127.0.0.1", {"host": "evil.example:8000"}),
    ],
)
def test_anyone_else_gets_graphiql_without_the_key(client: str, headers: dict[str, str]) -> None:
    page = page_for((client, 51000), headers)
    assert DEMO_KEY not in page and AGENT_KEY not in page and VIEWER_KEY not in page
    assert '"keys":{}' in page


def test_no_key_outside_demo_mode() -> None:
    page = page_for(("127.0.0.1", 51000), {"host": "127.0.0.1"}, token=None)
    assert "Bearer" not in page and AGENT_KEY not in page


def test_a_real_server_checks_the_peer_and_host(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with fresh_database("sqlite", request, tmp_path / "crm.sqlite") as url:
        settings = settings_for(url, anonymous=False, graphiql_token=DEMO_KEY)
        with live_server(settings, socket=True) as server:  # uvicorn's own peer address
            page = f"{server.url}/graphql"
            local = httpx.get(page, headers=HTML, timeout=30)  # Host: 127.0.0.1:<port>
            assert local.status_code == 200 and DEMO_KEY in local.text
            rebound = httpx.get(page, headers={**HTML, "host": "evil.example"}, timeout=30)
            assert rebound.status_code == 200 and DEMO_KEY not in rebound.text
