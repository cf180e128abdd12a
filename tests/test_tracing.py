"""Traces (CRMGRAPH_TRACING=1) of requests to a real server socket, read from
the OpenTelemetry SDK's in-memory exporter: the request span of a read the
direct path answered and of a mutation names the operation (its cost, the
path that answered, the request id), a mutation on PostgreSQL has asyncpg
spans in its trace, and a GET query's variables stay out of every span."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from crmgraph.testing import live_server, require_postgres, settings_for
from tests.conftest import fresh_database
from tests.helpers import poll

READ = "query CustomerPage($first: Int) { customers(first: $first) { edges { node { id name } } } }"
CREATE = """mutation NewCustomer($input: CreateCustomerInput!) {
  createCustomer(input: $input) { customer { id } userErrors { code } } }"""
ASYNCPG = "opentelemetry.instrumentation.asyncpg"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """Every span this process ends, kept in memory (one provider per process:
    OpenTelemetry lets it be set once; crmgraph uses one already set)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert isinstance(provider, TracerProvider)
    found = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(found))
    return found


@pytest.fixture
def traced_http(database_url: str) -> Iterator[httpx.Client]:
    with (
        live_server(settings_for(database_url, tracing=True), socket=True) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        yield http


def request_span(exporter: InMemorySpanExporter, request_id: str) -> ReadableSpan:
    """The server span of the request with this id, once it has ended (it
    ends after the response has gone out, so it is polled for)."""

    def ended() -> ReadableSpan | None:
        return next(
            (
                span
                for span in exporter.get_finished_spans()
                if span.kind is SpanKind.SERVER
                and (span.attributes or {}).get("crmgraph.request_id") == request_id
            ),
            None,
        )

    return poll(f"the span of {request_id}", ended, attempts=100)


def post(http: httpx.Client, query: str, variables: dict[str, Any], request_id: str) -> Any:
    response = http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"X-Request-Id": request_id},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == request_id
    return response.json()


def test_a_direct_read_is_traced_with_its_operation(
    exporter: InMemorySpanExporter, traced_http: httpx.Client
) -> None:
    for n in range(2):  # the first teaches the direct path, the second takes it
        assert "errors" not in post(traced_http, READ, {"first": 5}, f"trace-read-{n}")
    full, direct = (request_span(exporter, f"trace-read-{n}") for n in range(2))
    attributes = dict(direct.attributes or {})
    assert attributes["crmgraph.answered_by"] == "direct"
    assert dict(full.attributes or {})["crmgraph.answered_by"] == "full"
    assert attributes["graphql.operation.name"] == "CustomerPage"
    assert attributes["graphql.operation.type"] == "query"
    assert attributes["crmgraph.cost"] > 0
    assert attributes["http.response.status_code"] == 200


def test_a_get_querys_variables_stay_out_of_its_span(
    exporter: InMemorySpanExporter, traced_http: httpx.Client
) -> None:
    email = "grace.hopper.trace@example.org"
    response = traced_http.get(
        "/graphql",
        params={
            "query": "query Find($q: String) { customers(first: 1, search: $q) { edges { node { id } } } }",
            "variables": f'{{"q": "{email}"}}',
        },
        headers={"X-Request-Id": "trace-get", "Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    span = request_span(exporter, "trace-get")
    assert dict(span.attributes or {})["graphql.operation.name"] == "Find"
    assert not [v for v in (span.attributes or {}).values() if "example.org" in str(v)]


def test_a_callers_traceparent_continues_its_trace_and_no_header_is_recorded(
    exporter: InMemorySpanExporter, traced_http: httpx.Client
) -> None:
    # sent with http.client: httpx is instrumented in this process (the
    # server's webhook client), and would put its own traceparent in
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    url = httpx.URL(str(traced_http.base_url))
    connection = http.client.HTTPConnection(url.host, url.port, timeout=60)
    connection.request(
        "POST",
        "/graphql",
        body=json.dumps({"query": "query Named { __typename }"}),
        headers={
            "Content-Type": "application/json",
            "X-Request-Id": "trace-parent",
            "traceparent": f"00-{trace_id}-{parent_id}-01",
            "Cookie": "session=secretsecret",
        },
    )
    assert connection.getresponse().status == 200
    connection.close()
    span = request_span(exporter, "trace-parent")
    assert span.context.trace_id == int(trace_id, 16)
    assert span.parent is not None and span.parent.span_id == int(parent_id, 16)
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "POST"
    assert attributes["url.path"] == "/graphql"
    assert not [v for v in attributes.values() if "secret" in str(v)]


@pytest.fixture
def postgres_http(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[httpx.Client]:
    require_postgres()
    with (
        fresh_database("postgres", request, tmp_path / "unused.sqlite") as url,
        live_server(settings_for(url, tracing=True), socket=True) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        yield http


def test_a_mutation_has_asyncpg_spans_in_its_trace(
    exporter: InMemorySpanExporter, postgres_http: httpx.Client
) -> None:
    body = post(postgres_http, CREATE, {"input": {"kind": "CLIENT", "name": "Traced"}}, "trace-mut")
    assert body["data"]["createCustomer"]["userErrors"] == []
    span = request_span(exporter, "trace-mut")
    attributes = dict(span.attributes or {})
    assert attributes["graphql.operation.name"] == "NewCustomer"
    assert attributes["graphql.operation.type"] == "mutation"
    assert attributes["crmgraph.answered_by"] == "full"
    in_trace = [
        s
        for s in exporter.get_finished_spans()
        if s.context.trace_id == span.context.trace_id
        and s.instrumentation_scope is not None
        and s.instrumentation_scope.name == ASYNCPG
    ]
    assert in_trace, "no asyncpg span in the mutation's trace"
    statements = " ".join(str((s.attributes or {}).get("db.statement", "")) for s in in_trace)
    assert "INSERT" in statements.upper()
    assert all("Traced" not in str(v) for s in in_trace for v in (s.attributes or {}).values())
