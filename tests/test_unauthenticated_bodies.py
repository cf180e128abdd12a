"""A body is read only once the router has matched its path and method and
authentication has accepted its key; the 50 MB upload limit is only for
callers who may import, and each may have two uploads in flight.

Each refusal is checked on a raw socket that sends a request head declaring
a 49 MB body and only its first 64 KiB: the server must answer although the
client has not sent the rest, i.e. without waiting to read it (a server that
read first would never answer, and the read would fail with a timeout). No
clock is involved; the socket timeout only bounds a failing test."""

from __future__ import annotations

import asyncio
import http.client
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from crmgraph.body_limit import UPLOADS_PER_CALLER
from crmgraph.testing import settings_for, start_server, user_key
from tests.conftest import fresh_database
from tests.helpers import poll

DECLARED = 49 * 1024 * 1024
FIRST_PART = 64 * 1024
BOUNDARY = "crmgraph-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
TIMEOUT = 30  # bounds a failing read only


@pytest.fixture
def secured(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any, dict]]:
    """A server with anonymous access off (on SQLite: no engine reads a body),
    its app, and keys of a viewer (who may not import) and a manager (who may)."""
    with fresh_database("sqlite", request, tmp_path / "crm.sqlite") as url:
        settings = settings_for(url, anonymous=False)
        keys = {role: asyncio.run(user_key(settings, role)) for role in ("viewer", "manager")}
        running = start_server(settings)
        try:
            yield running.url, running.server.config.app, keys
        finally:
            running.stop()


def head(method: str, path: str, content_type: str, key: str | None = None) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: {content_type}",
        f"Content-Length: {DECLARED}",
        "Apollo-Require-Preflight: 1",
    ]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def open_request(url: str, request_head: bytes) -> socket.socket:
    """A connection that has sent ``request_head`` and 64 KiB of the body."""
    address = urlsplit(url)
    conn = socket.create_connection((address.hostname, address.port), timeout=TIMEOUT)
    part = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
    conn.sendall(request_head + part.encode() + b" " * (FIRST_PART - len(part)))
    return conn


def answer(conn: socket.socket) -> tuple[int, bytes]:
    """The status and body the server sent."""
    with conn:
        response = http.client.HTTPResponse(conn)
        response.begin()
        return response.status, response.read()


def refused_unread(url: str, request_head: bytes) -> tuple[int, bytes]:
    return answer(open_request(url, request_head))


def test_strangers_are_refused_before_their_body_is_read(
    secured: tuple[str, Any, dict],
) -> None:
    url, _, keys = secured
    for content_type in (MULTIPART, "application/json"):
        status, body = refused_unread(url, head("POST", "/graphql", content_type))
        assert status == 401, body
        assert orjson.loads(body)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        status, body = refused_unread(url, head("POST", "/graphql", content_type, "crm_no_such"))
        assert status == 401, body
    # six at once, as the attack sent them: all answered, none read
    connections = [open_request(url, head("POST", "/graphql", MULTIPART)) for _ in range(6)]
    assert [answer(conn)[0] for conn in connections] == [401] * 6

    # wrong method or path: the router answers, nothing reads the body
    assert refused_unread(url, head("POST", "/healthz", "application/json"))[0] == 405
    assert refused_unread(url, head("PUT", "/graphql", MULTIPART, keys["manager"]))[0] == 405
    assert refused_unread(url, head("POST", "/nowhere", MULTIPART))[0] == 404
    # /healthz answers a GET with a body without reading the body
    status, body = refused_unread(url, head("GET", "/healthz", "application/json"))
    assert status == 200 and orjson.loads(body) == {"status": "ok"}


def test_only_importers_get_the_upload_limit(secured: tuple[str, Any, dict]) -> None:
    url, app, keys = secured
    # a viewer may not import: the ordinary 1 MiB limit, refused from the header
    status, body = refused_unread(url, head("POST", "/graphql", MULTIPART, keys["viewer"]))
    assert status == 413, body
    assert orjson.loads(body)["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"

    # a manager may: the body is accepted and read; at most two at a time
    limit = app.state.body_limit  # type: ignore[attr-defined]
    uploading = [
        open_request(url, head("POST", "/graphql", MULTIPART, keys["manager"]))
        for _ in range(UPLOADS_PER_CALLER)
    ]
    try:
        poll("the manager's uploads in flight", lambda: sum(limit.uploads.values()) == 2)
        status, body = refused_unread(url, head("POST", "/graphql", MULTIPART, keys["manager"]))
        assert status == 429, body
        assert orjson.loads(body)["errors"][0]["extensions"]["code"] == "TOO_MANY_UPLOADS"
        # another caller is not held back by them (a viewer: refused for size, not count)
        assert refused_unread(url, head("POST", "/graphql", MULTIPART, keys["viewer"]))[0] == 413
    finally:
        for conn in uploading:
            conn.close()
    # a closed upload gives its place back
    poll("the uploads to end", lambda: not limit.uploads)
