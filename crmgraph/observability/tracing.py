"""OpenTelemetry traces, when ``CRMGRAPH_TRACING=1`` (and the ``otel`` extra is installed).

Every HTTP request and WebSocket gets a server span from OpenTelemetry's ASGI
middleware, placed outermost (crmgraph.app.CRMApp.entry) so that the direct
path's answers, which skip strawberry and Starlette, are traced like the
rest; asyncpg statements, Redis commands and outgoing httpx requests (webhook
deliveries) become its child spans. As its response ends, the request span
gets what only crmgraph knows (:class:`SpanFacts` reads the request's
crmgraph.observability.request_facts): ``graphql.operation.name``,
``graphql.operation.type``, ``crmgraph.cost``, ``crmgraph.answered_by``,
``crmgraph.refusal`` and ``crmgraph.request_id`` (the ``X-Request-Id``, also on
every log line: a trace leads to its logs).

Where spans go is the standard environment's to say, read here when no
tracer provider has been set already (``opentelemetry-instrument`` or a test
may set one; it is then used as is): ``OTEL_SERVICE_NAME`` (default
``crmgraph``), ``OTEL_RESOURCE_ATTRIBUTES``, and ``OTEL_TRACES_EXPORTER``:
``otlp`` (needs ``pip install opentelemetry-exporter-otlp``; then
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL`` and the
rest of the OTLP variables apply), ``console`` (spans as JSON on stdout),
``none``. Unset, it is ``otlp`` when an OTLP endpoint is set and ``none``
otherwise: tracing then costs its spans but sends nothing anywhere.

No span holds a secret or a variable: request headers are recorded only if
``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST`` names them, and
Authorization and cookies are masked even then; a GET query's query string
(which holds its variables) is cut from the URL attributes; asyncpg's spans
hold statements, never their parameters.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from crmgraph.observability.request_facts import RequestFacts, current

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

MISSING_EXTRA = (
    "CRMGRAPH_TRACING=1 needs OpenTelemetry: pip install 'crmgraph[otel]' (could not import {})"
)
REQUIRED = (
    "opentelemetry.sdk.trace",
    "opentelemetry.instrumentation.asgi",
    "opentelemetry.instrumentation.asyncpg",
    "opentelemetry.instrumentation.redis",
    "opentelemetry.instrumentation.httpx",
)
EXPORTERS = ("otlp", "console", "none")
SECRET_HEADERS = ["authorization", "proxy-authorization", "cookie", "set-cookie"]


class TracingUnavailable(RuntimeError):
    pass


def traced(app: ASGIApp, observed: Callable[[ASGIApp], ASGIApp]) -> ASGIApp:
    """``observed(app)`` (the layer that keeps each request's facts) inside
    OpenTelemetry's ASGI middleware, and :class:`SpanFacts` inside it, with
    the database, Redis and httpx clients instrumented (once per process)
    and a tracer provider configured from the environment if none is yet."""
    check()
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    configure_provider()
    instrument_clients()
    sanitized = os.environ.get("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", "")
    return OpenTelemetryMiddleware(  # type: ignore[no-any-return]
        observed(SpanFacts(app)),
        server_request_hook=without_query,
        http_capture_headers_sanitize_fields=[
            *SECRET_HEADERS,
            *(name.strip() for name in sanitized.split(",") if name.strip()),
        ],
        # a span per ASGI message: noise that costs more than the request's own
        exclude_spans=["receive", "send"],
    )


def check() -> None:
    """Raises :class:`TracingUnavailable`, saying what to install or set, if
    tracing cannot start: ``crmgraph serve`` asks before starting workers."""
    try:
        for module in REQUIRED:
            importlib.import_module(module)
    except ImportError as exc:
        raise TracingUnavailable(MISSING_EXTRA.format(exc.name)) from exc
    for name in exporter_names():
        if name not in EXPORTERS:
            raise TracingUnavailable(
                f"OTEL_TRACES_EXPORTER: {name!r} is not one of {', '.join(EXPORTERS)}"
            )
        if name == "otlp":
            otlp_exporter_class()


def configure_provider() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return  # set by opentelemetry-instrument, a test or the host program
    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME") or "crmgraph"}
    )  # OTEL_RESOURCE_ATTRIBUTES merges in
    provider = TracerProvider(resource=resource)
    for processor in span_processors(exporter_names()):
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)


def exporter_names() -> list[str]:
    chosen = os.environ.get("OTEL_TRACES_EXPORTER")
    if chosen is None:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        )
        chosen = "otlp" if endpoint else "none"
    return [name.strip().lower() for name in chosen.split(",") if name.strip()]


def span_processors(names: list[str]) -> list[Any]:
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    processors: list[Any] = []
    for name in names:
        if name == "none":
            continue
        if name == "console":
            processors.append(SimpleSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            processors.append(BatchSpanProcessor(otlp_exporter_class()()))
    return processors


def otlp_exporter_class() -> Any:
    grpc = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") == "grpc"
    try:
        if grpc:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise TracingUnavailable(
            "OTEL_TRACES_EXPORTER=otlp needs an exporter: pip install opentelemetry-exporter-otlp "
            f"(could not import {exc.name})"
        ) from exc
    return OTLPSpanExporter


def instrument_clients() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (AsyncPGInstrumentor(), RedisInstrumentor(), HTTPXClientInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def without_query(span: Any, scope: Scope) -> None:
    """The URL attributes without the query string: a GET query's variables
    (e-mails, names) are in it."""
    if not scope.get("query_string") or not span.is_recording():
        return
    recorded = getattr(span, "attributes", None) or {}
    path = scope.get("path", "")
    for name in ("http.url", "url.full"):
        if name in recorded:
            span.set_attribute(name, str(recorded[name]).partition("?")[0])
    if "http.target" in recorded:
        span.set_attribute("http.target", path)
    if "url.query" in recorded:
        span.set_attribute("url.query", "[REDACTED]")


class SpanFacts:
    """Writes the request's facts on its span just before the last of the
    response goes out: the ASGI middleware ends the span as it sends that,
    before any observer of the finished request could still write on it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_naming_span(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                facts = current()
                if facts is not None:
                    span_attributes(facts)
            await send(message)

        await self.app(scope, receive, send_naming_span)


def span_attributes(facts: RequestFacts) -> None:
    """Names the operation on the current span (the request's)."""
    from opentelemetry import trace

    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("crmgraph.request_id", facts.request_id)
    span.set_attribute("crmgraph.answered_by", facts.answered_by)
    span.set_attribute("crmgraph.outcome", facts.outcome)
    if facts.operation_name is not None:
        span.set_attribute("graphql.operation.name", facts.operation_name)
    if facts.operation_type is not None:
        span.set_attribute("graphql.operation.type", facts.operation_type)
    if facts.cost is not None:
        span.set_attribute("crmgraph.cost", facts.cost)
    if facts.refusal is not None:
        span.set_attribute("crmgraph.refusal", facts.refusal)
