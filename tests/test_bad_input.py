"""A client's malformed request gets a clear 4xx (or a GraphQL error naming
the field), never a 500 or a masked internal error: bodies that are not JSON
objects, invalid UTF-8, nesting past the decoder's depth, lone surrogates in
string variables over every way a request arrives (POST, GET, multipart,
graphql-ws), and a failed field whose siblings share a DataLoader result with
another part of the answer (graphql-core cancels the siblings: the shared
result was cancelled with them, and the other part failed with
CancelledError, a 500)."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from crmgraph.testing import LiveServer
from tests.helpers import create_customer, record_need

JSON = {"content-type": "application/json"}
SEARCH = "query($s: String) { customers(filter: {search: $s}) { totalCount } }"
CONTACT_SEARCH = "query($s: String) { customers(filter: {contactSearch: $s}) { totalCount } }"
LONE_SURROGATE = '"\\ud800"'  # JSON text of a string holding U+D800 alone
SURROGATE = "<lone surrogate>"  # where json_text puts one (json.dumps would not)


def post(server: LiveServer, body: bytes, headers: dict[str, str] = JSON) -> httpx.Response:
    return server.http.post("/graphql", content=body, headers=headers)


def json_text(document: object, surrogate: str = LONE_SURROGATE) -> str:
    """``document`` as JSON, each :data:`SURROGATE` string replaced by ``surrogate``."""
    return json.dumps(document).replace(json.dumps(SURROGATE), surrogate)


def with_variable(query: str, json_value: str) -> bytes:
    """A request body whose variable ``s`` is the JSON text ``json_value``."""
    return json_text({"query": query, "variables": {"s": SURROGATE}}, json_value).encode()


def assert_refused(response: httpx.Response, words: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    assert words in response.text, response.text


def test_bodies_that_are_not_a_json_object_get_400(server: LiveServer) -> None:
    assert_refused(post(server, b'{"query": "{ __typename }", "x": "\xff\xfe"}'), "not valid JSON")
    assert_refused(post(server, b"\xff"), "not valid JSON")
    for bare in (b'"{ __typename }"', b"42", b"null", b"true"):
        assert_refused(post(server, bare), "must be a JSON object")
    deep = b"[" * 5000 + b"]" * 5000
    response = post(server, b'{"query": "{ __typename }", "variables": {"a": ' + deep + b"}}")
    assert_refused(response, "depth limit exceeded")
    # within the decoder's depth the request is served
    shallow = b"[" * 100 + b"]" * 100
    ok = post(server, b'{"query": "{ __typename }", "variables": {"a": ' + shallow + b"}}")
    assert ok.status_code == 200 and ok.json()["data"] == {"__typename": "Query"}
    # the same server goes on answering
    assert server.gql("{ __typename }") == {"__typename": "Query"}


def test_a_lone_surrogate_is_refused_on_every_way_in(server: LiveServer) -> None:
    customer = create_customer(server, name="Surrogate Test")
    for query in (SEARCH, CONTACT_SEARCH):
        assert_refused(post(server, with_variable(query, LONE_SURROGATE)), "surrogate")
        # a surrogate pair is a real character and is searched for
        pair = post(server, with_variable(query, '"\\ud83d\\ude00"'))
        assert pair.status_code == 200 and "errors" not in pair.json(), pair.text
    # GET: the variables parameter goes through the same decoder
    get = server.http.get(
        "/graphql",
        params={"query": SEARCH, "variables": json_text({"s": SURROGATE})},
        headers={"accept": "application/json"},
    )
    assert_refused(get, "surrogate")
    # a string literal with one is a syntax error, not an internal error
    literal = server.post('{ customers(filter: {search: "\\ud800"}) { totalCount } }')
    assert "Invalid Unicode escape sequence" in literal["errors"][0]["message"]
    assert literal["errors"][0].get("extensions", {}).get("code") != "INTERNAL_SERVER_ERROR"
    # a mutation's input too (the same decoder: no field can be missed)
    mutation = json_text(
        {
            "query": "mutation($id: ID!, $s: String!) { updateCustomer(input: {id: $id, "
            "name: $s}) { userErrors { code } } }",
            "variables": {"id": customer["id"], "s": SURROGATE},
        }
    )
    assert_refused(post(server, mutation.encode()), "surrogate")
    assert server.gql(SEARCH, {"s": "Surrogate"})["customers"]["totalCount"] == 1


def test_multipart_operations_must_be_a_json_object(server: LiveServer) -> None:
    for operations in ("null", "42", '"x"', json_text({"query": SURROGATE})):
        response = server.http.post(
            "/graphql",
            files={"operations": (None, operations), "map": (None, "{}")},
            headers={"apollo-require-preflight": "1"},
        )
        assert response.status_code == 400, (operations, response.status_code, response.text)


def test_a_graphql_ws_message_with_a_lone_surrogate_closes_with_4400(server: LiveServer) -> None:
    # a real socket: the close code is what a WebSocket client sees
    with connect(
        server.url.replace("http://", "ws://") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=30,
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=30))["type"] == "connection_ack"
        subscribe = {
            "query": "subscription { customerEvents { id } }",
            "variables": {"s": SURROGATE},
        }
        ws.send(json_text({"id": "1", "type": "subscribe", "payload": subscribe}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


def failing_sibling(customer_id: str, x_first: bool) -> str:
    """Two selections of one customer sharing the needs and relationships
    loaders' results; in ``x`` a non-null field fails, so graphql-core cancels
    x's other fields while ``y`` awaits the same results."""
    x = (
        f'x: customer(id: "{customer_id}") {{ needs {{ id }} relationships {{ id }} '
        'tasks(after: "not-a-cursor") { edges { cursor } } }'
    )
    y = f'y: customer(id: "{customer_id}") {{ needs {{ id }} relationships {{ id }} }}'
    return "{ %s %s }" % ((x, y) if x_first else (y, x))


def test_a_failed_field_does_not_cancel_a_shared_loader_result(server: LiveServer) -> None:
    customer = create_customer(server, name="Shared Loader")
    need = record_need(server, customer["id"])
    for x_first in (True, False):
        response = post(
            server, json.dumps({"query": failing_sibling(customer["id"], x_first)}).encode()
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["data"]["x"] is None
        assert body["data"]["y"] == {"needs": [{"id": need["id"]}], "relationships": []}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_CURSOR"]

    # the shape schemathesis once failed with (intermittently, on SQLite)
    server.gql(
        "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { userErrors { code } } }",
        {"id": customer["id"]},
    )
    restore = server.post(
        "mutation($id: ID!) { restoreCustomer(input: {id: $id}) { customer { "
        'relationships { id } needs { id } tasks(after: "not-a-cursor") { edges { cursor } } '
        "} } }",
        {"id": customer["id"]},
    )
    assert restore["data"]["restoreCustomer"] == {"customer": None}
    assert [e["extensions"]["code"] for e in restore["errors"]] == ["INVALID_CURSOR"]
