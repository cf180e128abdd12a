"""Persisted queries (crmgraph.persisted_queries), over a real HTTP socket.

Apollo's automatic persisted queries as its client plays them (a hash, a
``PersistedQueryNotFound``, the text with the hash, then the hash alone) over
POST and GET, answered by the direct read path once known; a wrong hash; the
store shared through Redis by two servers, and per process without it; the
trusted-documents mode (manifest documents by id, by hash and by text; any
other refused, and never registered); a manifest that cannot be used stops
start-up naming its file.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from crmgraph.app import create_app
from crmgraph.compiled.direct import ANSWERED_HEADER
from crmgraph.persisted_queries import ManifestError
from crmgraph.persisted_queries.store import KEY_PREFIX
from crmgraph.testing import live_server, require_redis, settings_for
from tests.helpers import CREATE, count_customers
from tests.test_subscriptions import EVENTS, graphql_ws

NOT_FOUND = {
    "errors": [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def unique_query() -> str:
    """A document no other test (or earlier run, through Redis) has sent."""
    return (
        f"query Named_{uuid.uuid4().hex}($first: Int) "
        "{ customers(first: $first) { edges { node { id name } } } }"
    )


def apq(sha: str, version: int = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha}}


@contextlib.contextmanager
def http_server(database_url: str, **overrides: Any) -> Iterator[httpx.Client]:
    """The app behind a real uvicorn socket, and a client of that socket."""
    with (
        live_server(settings_for(database_url, **overrides), socket=True) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client


def post(client: httpx.Client, **request: Any) -> httpx.Response:
    return client.post("/graphql", json=request)


def get(client: httpx.Client, **params: Any) -> httpx.Response:
    encoded = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in params.items()}
    return client.get("/graphql", params=encoded, headers={"Accept": "application/json"})


def direct(response: httpx.Response) -> bool:
    return response.headers.get(ANSWERED_HEADER.decode()) == "direct"


def test_apollo_sequence_over_post_ends_on_the_direct_path(database_url: str) -> None:
    query = unique_query()
    # as Apollo's client sends them (the direct path knows a named operation by its name)
    sent = {"operationName": query.split()[1].split("(")[0], "variables": {"first": 5}}
    with http_server(database_url) as client:
        miss = post(client, **sent, extensions=apq(sha256(query)))
        assert miss.status_code == 200 and miss.json() == NOT_FOUND
        assert "no-cache" in miss.headers["cache-control"]

        full = post(client, query=query, **sent, extensions=apq(sha256(query)))
        assert full.status_code == 200 and "errors" not in full.json(), full.text

        hit = post(client, **sent, extensions=apq(sha256(query)))
        assert hit.status_code == 200, hit.text
        assert hit.json()["data"] == full.json()["data"]
        assert direct(hit), "a query sent by hash is answered by the direct read path"
        assert hit.json()["extensions"]["sqlStatements"] == 1


def test_apollo_sequence_over_get(database_url: str) -> None:
    query, variables = unique_query(), {"first": 3}
    with http_server(database_url) as client:
        miss = get(client, variables=variables, extensions=apq(sha256(query)))
        assert miss.status_code == 200 and miss.json() == NOT_FOUND

        full = get(client, query=query, variables=variables, extensions=apq(sha256(query)))
        assert full.status_code == 200 and "errors" not in full.json(), full.text

        hit = get(client, variables=variables, extensions=apq(sha256(query)))
        assert hit.status_code == 200, hit.text
        assert hit.json()["data"] == full.json()["data"]


def test_a_wrong_hash_or_version_is_refused_and_nothing_kept(database_url: str) -> None:
    query, other = unique_query(), unique_query()
    with http_server(database_url) as client:
        wrong = post(client, query=query, extensions=apq(sha256(other)))
        assert wrong.status_code == 400
        assert wrong.json()["errors"][0]["message"] == "provided sha does not match query"
        assert post(client, extensions=apq(sha256(other))).json() == NOT_FOUND

        version = post(client, query=query, extensions=apq(sha256(query), version=2))
        assert version.status_code == 400
        assert version.json()["errors"][0]["message"] == "Unsupported persisted query version"

        bad = post(client, extensions=apq("not-a-hash"))
        assert bad.status_code == 400 and "64 hexadecimal" in bad.text


def test_a_chunked_body_is_read_and_an_oversized_document_refused(database_url: str) -> None:
    query = unique_query()
    long_query = query.replace("{ id name }", "{ id name " + "id " * 300 + "}")
    with http_server(database_url, max_body_bytes=800) as client:
        assert "errors" not in post(client, query=query, extensions=apq(sha256(query))).json()
        body = orjson.dumps({"extensions": apq(sha256(query))})
        chunked = client.post(
            "/graphql",
            content=iter([body[:10], body[10:]]),  # no Content-Length: chunked
            headers={"Content-Type": "application/json"},
        )
        assert chunked.status_code == 200 and chunked.json()["data"] is not None, chunked.text

        too_large = get(client, query=long_query, extensions=apq(sha256(long_query)))
        assert too_large.status_code == 400
        assert too_large.json()["errors"][0]["message"] == (
            "persisted query larger than the body limit"
        )
        assert get(client, extensions=apq(sha256(long_query))).json() == NOT_FOUND


def test_a_mutation_by_hash_is_refused_over_get(database_url: str) -> None:
    variables = {"input": {"kind": "CLIENT", "name": "Hashed Co"}}
    with live_server(settings_for(database_url), socket=True) as server:
        client = httpx.Client(base_url=server.url, timeout=30)
        with client:
            registered = post(
                client, query=CREATE, variables=variables, extensions=apq(sha256(CREATE))
            )
            assert registered.json()["data"]["createCustomer"]["userErrors"] == []
            over_get = get(client, variables=variables, extensions=apq(sha256(CREATE)))
            assert over_get.status_code == 400, over_get.text
            assert "mutations are not allowed" in over_get.text.lower()
            assert count_customers(server) == 1
            over_post = post(client, variables=variables, extensions=apq(sha256(CREATE)))
            assert over_post.json()["data"]["createCustomer"]["userErrors"] == []
            assert count_customers(server) == 2


def test_without_redis_each_process_keeps_its_own(database_url: str) -> None:
    query = unique_query()
    with http_server(database_url) as first, http_server(database_url) as second:
        assert "data" in post(first, query=query, extensions=apq(sha256(query))).json()
        assert post(first, extensions=apq(sha256(query))).json()["data"] is not None
        assert post(second, extensions=apq(sha256(query))).json() == NOT_FOUND


def test_redis_shares_documents_between_servers(database_url: str) -> None:
    url = require_redis()
    query = unique_query()
    with (
        http_server(database_url, redis_url=url) as first,
        http_server(database_url, redis_url=url) as second,
    ):
        registered = post(first, query=query, extensions=apq(sha256(query)))
        assert "errors" not in registered.json(), registered.text
        hit = post(second, extensions=apq(sha256(query)))
        assert hit.json()["data"] == registered.json()["data"]
    ttl = redis.Redis.from_url(url).ttl(KEY_PREFIX + sha256(query))
    assert 0 < ttl <= 24 * 3600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_redis_away_falls_back_to_this_process(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    query = unique_query()
    with http_server(database_url, redis_url=f"redis://127.0.0.1:{free_port()}/0") as client:
        assert post(client, extensions=apq(sha256(query))).json() == NOT_FOUND
        registered = post(client, query=query, extensions=apq(sha256(query)))
        assert registered.status_code == 200 and "errors" not in registered.json()
        hit = post(client, extensions=apq(sha256(query)))
        assert hit.status_code == 200 and hit.json()["data"] == registered.json()["data"]
    logged = [r.getMessage() for r in caplog.records if r.name == "crmgraph.redis"]
    assert any("persisted quer" in line and "unavailable" in line for line in logged), logged


def test_apq_switched_off_says_not_supported(database_url: str) -> None:
    with http_server(database_url, persisted_queries=False) as client:
        answer = post(client, extensions=apq(sha256("{ __typename }")))
        assert answer.status_code == 200
        assert answer.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"


TRUSTED = "query Trusted($first: Int) { customers(first: $first) { edges { node { id } } } }"
OTHER = "query Other { customers(first: 2) { edges { node { name } } } }"


def manifest(fmt: str, directory: Path) -> tuple[Path, str, str]:
    """A manifest of one document in ``fmt``: its path, the id, and the body field for it."""
    if fmt == "apollo":
        data: Any = {
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [
                {"id": sha256(TRUSTED), "name": "Trusted", "type": "query", "body": TRUSTED}
            ],
        }
        document_id, field = f"sha256:{sha256(TRUSTED)}", "documentId"
    elif fmt == "codegen":
        data, document_id, field = {sha256(TRUSTED): TRUSTED}, sha256(TRUSTED), "documentId"
    else:  # relay: ids of its own (an md5)
        document_id = hashlib.md5(TRUSTED.encode()).hexdigest()
        data, field = {document_id: TRUSTED}, "doc_id"
    path = directory / f"{fmt}-documents.json"
    path.write_bytes(orjson.dumps(data))
    return path, document_id, field


def refused_code(response: httpx.Response) -> str:
    return response.json()["errors"][0]["extensions"]["code"]


@pytest.mark.parametrize("fmt", ["apollo", "codegen", "relay"])
def test_trusted_documents_only(database_url: str, tmp_path: Path, fmt: str) -> None:
    path, document_id, field = manifest(fmt, tmp_path)
    with http_server(database_url, trusted_documents=str(path)) as client:
        variables = {"first": 4}
        by_id = post(client, operationName="Trusted", variables=variables, **{field: document_id})
        assert by_id.status_code == 200 and "errors" not in by_id.json(), by_id.text
        by_text = post(client, query=TRUSTED, variables=variables)
        assert by_text.json()["data"] == by_id.json()["data"]
        by_hash = post(
            client, operationName="Trusted", variables=variables, extensions=apq(sha256(TRUSTED))
        )
        assert by_hash.json()["data"] == by_id.json()["data"]
        assert direct(by_hash), "a trusted document by hash is answered by the direct read path"
        by_get = get(client, variables=variables, **{field: document_id})
        assert by_get.json()["data"] == by_id.json()["data"]

        other = post(client, query=OTHER)
        assert refused_code(other) == "PERSISTED_QUERY_NOT_ALLOWED"
        assert "trusted documents only" in other.json()["errors"][0]["message"]
        assert refused_code(get(client, query=OTHER)) == "PERSISTED_QUERY_NOT_ALLOWED"
        registering = post(client, query=OTHER, extensions=apq(sha256(OTHER)))
        assert refused_code(registering) == "PERSISTED_QUERY_NOT_ALLOWED"
        assert post(client, extensions=apq(sha256(OTHER))).json() == NOT_FOUND
        unknown = post(client, documentId="0" * 64)
        assert refused_code(unknown) == "PERSISTED_QUERY_NOT_FOUND"


def test_trusted_documents_only_over_a_websocket(database_url: str, tmp_path: Path) -> None:
    path, _, _ = manifest("codegen", tmp_path)
    settings = settings_for(database_url, trusted_documents=str(path))
    with live_server(settings, socket=True) as server, graphql_ws(server.url) as ws:
        ws.acknowledged().subscribe(EVENTS)
        message = ws.receive()
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED", message


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read it"),
        (b"{not json", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b"{}", "holds no document"),
        (b'{"a": 1}', "the document of id 'a' is not a string"),
        (b'{"a": "query {"}', "the document of id 'a' does not parse"),
        (
            b'{"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}',
            "unknown manifest format",
        ),
        (
            b'{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{}]}',
            "operations[0] needs a string 'id' and 'body'",
        ),
    ],
)
def test_a_bad_manifest_stops_start_up_naming_the_file(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    path = tmp_path / "persisted-documents.json"
    if content is not None:
        path.write_bytes(content)
    settings = settings_for(f"sqlite:///{tmp_path / 'crm.sqlite'}", trusted_documents=str(path))
    with pytest.raises(ManifestError) as caught:
        create_app(settings)
    assert str(path) in str(caught.value) and problem in str(caught.value)
