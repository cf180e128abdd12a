"""Abuse limits: depth, aliases, tokens and a calculated cost are refused before
anything executes (no SQL statement runs); request bodies have a size limit;
introspection, GraphiQL and error details can be turned off for production.

The first half computes costs by hand against the real schema; the second half
runs a real server (on SQLite and PostgreSQL) built by ``create_app``.

This module is also a tiny plugin (``PLUGIN``): it adds a query field that fails
with an unexpected exception, which error masking must hide.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import strawberry
from graphql import GraphQLSchema, parse, specified_rules, validate

from crmgraph.extension_points import GraphQLContribution
from crmgraph.hookspecs import hookimpl
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.schema.build import build_schema
from crmgraph.schema.limits import (
    CostCache,
    QueryCost,
    QueryLimits,
    limit_extensions,
    query_cost,
    validation_rules,
)
from crmgraph.settings import Settings
from crmgraph.testing import LiveServer, live_server, settings_for

PLUGIN = "tests.test_limits"
BROKEN = "tests.plugins_for_tests.broken"
SECRET = "db password is hunter2"
MIB = 1024 * 1024

# The production defaults, spelled out so these tests keep checking them even
# if the suite's own settings relax a limit for bulk seeding.
DEFAULTS = QueryLimits()
PRODUCTION: dict[str, Any] = {
    "max_query_depth": DEFAULTS.max_depth,
    "max_query_aliases": DEFAULTS.max_aliases,
    "max_query_tokens": DEFAULTS.max_tokens,
    "max_query_cost": DEFAULTS.max_cost,
}


@strawberry.type
class LimitsTestQuery:
    @strawberry.field
    def limits_test_failure(self) -> int:
        raise RuntimeError(SECRET)


@hookimpl
def crmgraph_graphql(types: Any) -> GraphQLContribution:
    return GraphQLContribution(query=[LimitsTestQuery])


# ---------------------------------------------------------------------------
# The cost function, against the real schema


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    pm = make_plugin_manager(Settings(load_entry_points=False))
    strawberry_schema, _ = build_schema(Catalog.from_plugin_manager(pm), pm)
    return strawberry_schema._schema


def cost(
    schema: GraphQLSchema,
    query: str,
    variables: dict[str, Any] | None = None,
    **limits: Any,
) -> QueryCost:
    document = parse(query)
    assert validate(schema, document) == []
    found = query_cost(schema, document, variables, None, QueryLimits(**limits))
    assert found is not None
    return found


# customers, then per customer: its edge, its node, 10 contacts (a plain
# list counts 10), the interactions connection and 3 interactions; plus pageInfo.
PAGE_OF_5 = """{ customers(first: 5) {
  edges { node { id name contacts { name } interactions(first: 3) { nodes { subject } } } }
  pageInfo { hasNextPage }
} }"""

HUNDRED_BY_HUNDRED = (
    "customers(first: 100) { nodes { id interactions(first: 100) { nodes { id subject } } } }"
)

# 100 customers x 100 related customers (10 relationships each, two hops) x 100
# interactions: the schema has no connection inside a connection's connection.
CUBE = """query($n: Int) { customers(first: $n) { nodes {
  relationships { fromCustomer { relationships { toCustomer {
    interactions(first: 100) { nodes { id } } } } } }
} } }"""

TWENTY_DEEP = (
    "{ customers { nodes { " + "relationships { toCustomer { " * 9 + "id" + " } }" * 9 + " } } }"
)

TWO_HUNDRED_ALIASES = (
    "{ " + " ".join(f"c{i}: customers(first: 1) {{ nodes {{ id }} }}" for i in range(200)) + " }"
)

TEN_BY_HUNDRED_BY_HUNDRED = "{ " + " ".join(f"c{i}: {HUNDRED_BY_HUNDRED}" for i in range(10)) + " }"


def test_cost_of_a_page_with_nested_lists(schema: GraphQLSchema) -> None:
    assert cost(schema, PAGE_OF_5) == QueryCost(
        requested=1 + 5 * (1 + 1 + 10 + 1 + 3) + 1, by_field={"customers": 82}
    )


def test_nested_connections_multiply(schema: GraphQLSchema) -> None:
    one = 1 + 100 * (1 + 1 + 100)
    assert cost(schema, "{ " + HUNDRED_BY_HUNDRED + " }").requested == one == 10_201
    ten = cost(schema, TEN_BY_HUNDRED_BY_HUNDRED)
    assert ten.requested == 10 * one
    assert ten.by_field == {f"c{i}": one for i in range(10)}
    assert cost(schema, CUBE, {"n": 100}).requested == 1 + 100 * (
        1 + 10 * (1 + 1 + 10 * (1 + 1 + 1 + 100))
    )


def test_page_sizes_when_first_is_omitted_null_or_a_variable(schema: GraphQLSchema) -> None:
    # omitted: the schema's default (customers 20, interactions 10)
    assert cost(schema, "{ customers { nodes { id } } }").requested == 1 + 20
    assert cost(schema, "{ customer(id: 1) { interactions { nodes { id } } } }").requested == (
        1 + 1 + 10
    )
    # null: the server's default page size (check_first)
    assert cost(schema, "{ customers(first: null) { nodes { id } } }", default_page_size=7) == (
        QueryCost(requested=8, by_field={"customers": 8})
    )
    query = "query($n: Int) { customers(first: $n) { nodes { id } } }"
    assert cost(schema, query, {"n": None}, default_page_size=7).requested == 8
    # a variable left out is an argument left out: the schema's default (as in execution)
    assert cost(schema, query, {}, default_page_size=7).requested == 21
    assert cost(schema, query, {"n": 3}).requested == 4
    assert (
        cost(schema, "query($n: Int = 3) { customers(first: $n) { nodes { id } } }").requested == 4
    )
    # a plain list counts default_list_size items
    assert cost(schema, "{ users { id } }", default_list_size=4).requested == 4


def test_nodes_by_ids_count_the_ids(schema: GraphQLSchema) -> None:
    literal = '{ nodes(ids: ["a", "b", "c"]) { id ... on Customer { contacts { id } } } }'
    assert cost(schema, literal).requested == 3 * (1 + 10)
    variable = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    assert cost(schema, variable, {"ids": ["a"] * 7}).requested == 7


def test_fragments_merge_like_execution(schema: GraphQLSchema) -> None:
    # the same response key is one field; a fragment spread twice counts once
    assert cost(schema, "{ users { id } users { name } }").requested == 10
    assert cost(schema, "{ a: users { id } b: users { id } }").requested == 20
    spread = """{ customers(first: 3) { nodes { ...C ...C } } }
        fragment C on Customer { contacts { id } }"""
    assert cost(schema, spread).requested == 1 + 3 * (1 + 10)
    # an interface value is one concrete type: the dearest type's selection counts
    typed = """{ customers(first: 2) { nodes {
        ... on Client { contacts { id } }
        ... on Prospect { contacts { id } needs { id } }
    } } }"""
    assert cost(schema, typed).requested == 1 + 2 * (1 + 20)
    # @skip / @include as the variables say
    query = """query($with: Boolean!) { customers(first: 3) { nodes {
        id contacts @include(if: $with) { id } } } }"""
    assert cost(schema, query, {"with": False}).requested == 1 + 3
    assert cost(schema, query, {"with": True}).requested == 1 + 3 * 11


def test_introspection_costs_nothing(schema: GraphQLSchema) -> None:
    query = "{ __typename __schema { types { name fields { name args { name } } } } }"
    assert cost(schema, query).requested == 0


def test_a_fragment_bomb_is_walked_in_linear_time(schema: GraphQLSchema) -> None:
    """Each fragment uses the previous one twice: the cost is exponential (and
    refused), but working it out must not be."""
    levels = 40
    fragments = ["fragment F0 on Customer { id }"]
    for i in range(1, levels + 1):
        inner = f"relationships {{ toCustomer {{ ...F{i - 1} }} }}"
        fragments.append(f"fragment F{i} on Customer {{ a: {inner} b: {inner} }}")
    document = parse(f'{{ customer(id: "x") {{ ...F{levels} }} }}\n' + "\n".join(fragments))
    per_customer = 0
    for _ in range(levels):  # two relationship lists of 10, each with one customer
        per_customer = 2 * 10 * (1 + 1 + per_customer)
    started = time.monotonic()
    found = query_cost(schema, document)
    assert time.monotonic() - started < 2
    assert found is not None and found.requested == 1 + per_customer


def test_validation_rules_are_built_once_per_limits() -> None:
    # strawberry's ValidationCache keys on the rule classes: new classes per
    # request would miss the cache every time
    assert validation_rules(QueryLimits()) is validation_rules(QueryLimits())
    # one rule measures depth, aliases and expanded selections together
    assert len(validation_rules(QueryLimits(introspection=False))) == 2
    assert validation_rules(QueryLimits(max_depth=0, max_aliases=0, max_selections=0)) == ()


def test_depth_and_alias_rules_carry_codes(schema: GraphQLSchema) -> None:
    rules = (*specified_rules, *validation_rules(QueryLimits()))
    [deep] = validate(schema, parse(TWENTY_DEEP), rules)
    assert deep.extensions == {"code": "QUERY_TOO_DEEP", "maxDepth": 12}
    [aliases] = validate(schema, parse(TWO_HUNDRED_ALIASES), rules)
    assert aliases.extensions == {"code": "TOO_MANY_ALIASES", "aliases": 200, "maxAliases": 30}
    # twelve levels are fine
    twelve = (
        "{ customers { nodes { "
        + "relationships { toCustomer { " * 5
        + "id"
        + " } }" * 5
        + " } } }"
    )
    assert validate(schema, parse(twelve), rules) == []


def test_limit_extensions_follow_settings() -> None:
    @dataclasses.dataclass
    class Old:  # settings without the new fields: everything at its default
        default_page_size: int = 20

    assert QueryLimits.from_settings(Old()) == QueryLimits()
    assert len(limit_extensions(Old())) == 2  # limits (tokens included), masking
    lean = dataclasses.make_dataclass(
        "Lean", [("max_query_tokens", int, 0), ("mask_errors", bool, False)]
    )()
    assert len(limit_extensions(lean)) == 1


def test_settings_read_the_limits_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CRMGRAPH_MAX_QUERY_DEPTH": "5",
            "CRMGRAPH_MAX_QUERY_ALIASES": "6",
            "CRMGRAPH_MAX_QUERY_TOKENS": "700",
            "CRMGRAPH_MAX_QUERY_COST": "800",
            "CRMGRAPH_MAX_QUERY_SELECTIONS": "900",
            "CRMGRAPH_MAX_BODY_BYTES": "900",
            "CRMGRAPH_INTROSPECTION": "0",
            "CRMGRAPH_MASK_ERRORS": "0",
        }
    )
    assert QueryLimits.from_settings(settings) == QueryLimits(
        max_depth=5,
        max_aliases=6,
        max_tokens=700,
        max_cost=800,
        max_selections=900,
        introspection=False,
    )
    assert settings.max_body_bytes == 900  # type: ignore[attr-defined]
    assert settings.mask_errors is False  # type: ignore[attr-defined]
    defaults = Settings()
    assert QueryLimits.from_settings(defaults) == QueryLimits()
    assert defaults.max_body_bytes == MIB  # type: ignore[attr-defined]
    assert defaults.mask_errors is True  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# A real server


@contextlib.contextmanager
def limited_server(database_url: str, **overrides: Any) -> Iterator[LiveServer]:
    with live_server(settings_for(database_url, **{**PRODUCTION, **overrides})) as server:
        yield server


@pytest.fixture
def production(database_url: str) -> Iterator[LiveServer]:
    """A server with the production limits (and SQL counts exposed)."""
    with limited_server(database_url) as server:
        yield server


def refused(server: LiveServer, query: str, code: str, variables: dict | None = None) -> dict:
    """The operation's single error, after checking nothing ran: no data and
    not one SQL statement."""
    body = server.post(query, variables)
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == code, error
    assert body["extensions"]["sqlStatements"] == 0
    return error


def test_the_issue_four_queries_are_refused_before_execution(production: LiveServer) -> None:
    # control: a small query does run SQL
    assert production.statements("{ customers(first: 1) { nodes { id } } }") >= 1

    deep = refused(production, TWENTY_DEEP, "QUERY_TOO_DEEP")
    assert deep["extensions"]["maxDepth"] == 12

    aliases = refused(production, TWO_HUNDRED_ALIASES, "TOO_MANY_ALIASES")
    assert aliases["extensions"]["aliases"] == 200

    cube = refused(production, CUBE, "QUERY_TOO_EXPENSIVE", {"n": 100})
    assert cube["extensions"]["cost"] > 1_000_000
    assert cube["extensions"]["limit"] == DEFAULTS.max_cost

    wide = refused(production, TEN_BY_HUNDRED_BY_HUNDRED, "QUERY_TOO_EXPENSIVE")
    assert wide["extensions"]["cost"] == 10 * 10_201
    assert wide["extensions"]["byField"] == {f"c{i}": 10_201 for i in range(10)}

    # one of those ten alone is within the limit
    body = production.post("{ " + HUNDRED_BY_HUNDRED + " }")
    assert "errors" not in body
    assert body["extensions"]["cost"] == {"requested": 10_201, "limit": DEFAULTS.max_cost}


def test_too_many_tokens_is_refused_while_parsing(production: LiveServer) -> None:
    query = "{ " + "users { id } " * 1500 + "}"  # 6000 tokens
    error = refused(production, query, "TOO_MANY_TOKENS")
    assert error["extensions"]["maxTokens"] == DEFAULTS.max_tokens


def test_a_normal_query_reports_its_cost(production: LiveServer) -> None:
    body = production.post(PAGE_OF_5)
    assert "errors" not in body
    assert body["data"]["customers"]["edges"] == []
    assert body["extensions"]["cost"] == {"requested": 82, "limit": DEFAULTS.max_cost}


def test_costs_are_cached_per_document_operation_and_variables(
    production: LiveServer, schema: GraphQLSchema
) -> None:
    """A repeated request reuses its cost; what changes the cost (variables,
    the operation chosen) is part of the key, so each still gets its own."""
    two = "query A { customers(first: 2) { nodes { id } } } query B { users { id } }"
    expected = {n: cost(schema, CUBE, {"n": n}).requested for n in (1, 2, 3)}
    assert len(set(expected.values())) == 3 and expected[3] > DEFAULTS.max_cost > expected[2]
    for _ in range(2):
        for n in (1, 2):
            body = production.post(CUBE, {"n": n})
            assert "errors" not in body
            assert body["extensions"]["cost"]["requested"] == expected[n]
        refused(production, CUBE, "QUERY_TOO_EXPENSIVE", {"n": 3})
        for operation in ("A", "B"):
            body = production.http.post(
                "/graphql", json={"query": two, "operationName": operation}
            ).json()
            assert "errors" not in body
            document = parse(two)
            wanted = query_cost(schema, document, None, operation, QueryLimits())
            assert wanted is not None
            assert body["extensions"]["cost"]["requested"] == wanted.requested


def test_cost_cache_computes_once_per_key_and_is_bounded() -> None:
    cache = CostCache(size=2)
    computed: list[int] = []

    def compute(n: int) -> QueryCost:
        computed.append(n)
        return QueryCost(n)

    keys = [CostCache.key("{ a }", None, {"n": n}) for n in range(3)]
    assert CostCache.key("{ a }", None, {"a": 1, "b": 2}) == CostCache.key(
        "{ a }", None, {"b": 2, "a": 1}
    )
    assert CostCache.key("{ a }", None, {"file": object()}) is None  # an upload: not cached
    for _ in range(2):
        assert cache.get(keys[0], lambda: compute(0)) == QueryCost(0)
    assert computed == [0]
    cache.get(keys[1], lambda: compute(1))
    cache.get(keys[2], lambda: compute(2))  # pushes out keys[0], the least recently used
    cache.get(keys[0], lambda: compute(0))
    assert computed == [0, 1, 2, 0]


def test_the_cost_limit_is_a_setting(database_url: str) -> None:
    with limited_server(database_url, max_query_cost=50) as server:
        error = refused(server, PAGE_OF_5, "QUERY_TOO_EXPENSIVE")
        assert (error["extensions"]["cost"], error["extensions"]["limit"]) == (82, 50)
    with limited_server(database_url, max_query_cost=0) as server:  # 0: no limit, still reported
        body = server.post(CUBE, {"n": 1})
        assert "errors" not in body
        assert body["extensions"]["cost"]["limit"] is None


def test_introspection_and_suggestions_can_be_turned_off(database_url: str) -> None:
    typo = "{ customerz { id } }"
    enum_typo = "query($p: [Phase!]) { customers(filter: {phases: $p}) { nodes { id } } }"
    with limited_server(database_url) as server:  # the default: on, as GraphiQL needs
        assert server.gql("{ __schema { queryType { name } } }")["__schema"]["queryType"]
        assert (
            "Did you mean 'customer' or 'customers'?" in server.post(typo)["errors"][0]["message"]
        )
        assert "Did you mean" in server.post(enum_typo, {"p": ["RETENTON"]})["errors"][0]["message"]
    with limited_server(database_url, introspection=False) as server:
        for query in ("{ __schema { queryType { name } } }", '{ __type(name: "Client") { name } }'):
            refused(server, query, "INTROSPECTION_DISABLED")
        assert server.gql("{ __typename }") == {"__typename": "Query"}
        message = server.post(typo)["errors"][0]["message"]
        assert message == "Cannot query field 'customerz' on type 'Query'."
        message = server.post(enum_typo, {"p": ["RETENTON"]})["errors"][0]["message"]
        assert "RETENTON" in message
        assert "Did you mean" not in message
        assert "RETENTION" not in message


def test_unexpected_errors_are_masked_with_a_request_id(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        limited_server(database_url, plugins=(PLUGIN, BROKEN)) as server,
        caplog.at_level(logging.ERROR, logger="crmgraph.errors"),
    ):
        body = server.post("{ limitsTestFailure }")
        [error] = body["errors"]
        assert error["message"] == "Internal server error"
        assert error["path"] == ["limitsTestFailure"]
        request_id = error["extensions"].pop("requestId")
        assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
        assert len(request_id) == 32 and int(request_id, 16) >= 0
        text = orjson.dumps(body).decode()
        assert SECRET not in text and "Traceback" not in text and "RuntimeError" not in text
        # the operator finds the real exception by the request id
        [record] = [r for r in caplog.records if request_id in r.getMessage()]
        assert record.exc_info is not None and SECRET in str(record.exc_info[1])
        # and only there: strawberry's own logger does not log it a second time
        logged = [r for r in caplog.records if SECRET in f"{r.getMessage()} {r.exc_info}"]
        assert logged == [record]

        # errors raised on purpose stay as they are: a plugin failure names its plugin
        body = server.post(
            'mutation { createCustomer(input: {kind: CLIENT, name: "boom"}) { customer { id } } }'
        )
        assert body["errors"][0]["extensions"] == {"code": "PLUGIN_ERROR", "plugin": BROKEN}
        assert "validator exploded" in body["errors"][0]["message"]
        # and so do validation errors
        assert "Cannot query field" in server.post("{ nope }")["errors"][0]["message"]

    with limited_server(database_url, plugins=(PLUGIN,), mask_errors=False) as server:
        assert SECRET in server.post("{ limitsTestFailure }")["errors"][0]["message"]


def test_graphiql_can_be_turned_off(database_url: str) -> None:
    html = {"accept": "text/html"}
    with limited_server(database_url) as server:
        page = server.http.get("/graphql", headers=html)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    with limited_server(database_url, graphiql=False, introspection=False) as server:
        page = server.http.get("/graphql", headers=html)
        assert page.status_code == 404
        assert "text/html" not in page.headers.get("content-type", "")


# ---------------------------------------------------------------------------
# Request body size


def padded_query(size: int) -> bytes:
    """A valid GraphQL request of exactly ``size`` bytes (whitespace is free)."""
    body = orjson.dumps({"query": "{ __typename }" + " " * size})
    return orjson.dumps({"query": "{ __typename }" + " " * (2 * size - len(body))})


def assert_too_large(status: int, body: bytes) -> None:
    assert status == 413
    assert orjson.loads(body) == {
        "errors": [
            {
                "message": "request body too large",
                "extensions": {"code": "BODY_TOO_LARGE", "limit": MIB},
            }
        ]
    }


def raw_http(server: LiveServer, head: str) -> tuple[int, bytes]:
    """Send only a request head (no body) and read the whole response: the
    server must answer without waiting for a body it will not read. A raw socket
    (server.url opens one): the HTTP server's own handling is under test."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(head.encode())
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_request_body_size_is_limited(production: LiveServer) -> None:
    under = padded_query(MIB - 100)
    assert len(under) == MIB - 100
    headers = {"content-type": "application/json"}
    # just under the limit: served, whether its length is declared or streamed
    ok = production.http.post("/graphql", content=under, headers=headers)
    assert ok.status_code == 200 and ok.json()["data"] == {"__typename": "Query"}
    chunks = [under[i : i + 65536] for i in range(0, len(under), 65536)]
    ok = production.http.post("/graphql", content=iter(chunks), headers=headers)
    assert ok.status_code == 200 and ok.json()["data"] == {"__typename": "Query"}

    # declared too large: refused from the header alone
    status, body = raw_http(
        production,
        "POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MIB + 1}\r\n\r\n",
    )
    assert_too_large(status, body)

    # streamed without a length (chunked): refused once the count passes the limit
    over = padded_query(MIB + 1)
    chunks = [over[i : i + 65536] for i in range(0, len(over), 65536)]
    response = production.http.post("/graphql", content=iter(chunks), headers=headers)
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_too_large(response.status_code, response.content)
