"""OpenTelemetry traces, when ``CRMGRAPH_TRACING=1`` (and the ``otel`` extra is installed).

Every HTTP request and WebSocket gets a server span from :class:`ServerSpans`,
placed outermost (crmgraph.app.CRMApp.entry) so that the direct path's
answers, which skip strawberry and Starlette, are traced like the rest; a
caller's ``traceparent`` continues its trace. asyncpg statements, Redis
commands and outgoing httpx requests (webhook deliveries) become its child
spans. As its response ends, the request span gets what only crmgraph knows
(:func:`span_attributes` reads the request's
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

No span holds a secret or a variable: no request header is recorded, the
URL's query string (a GET query's variables) is left out, and asyncpg's
spans hold statements, never their parameters.
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
    "opentelemetry.instrumentation.asyncpg",
    "opentelemetry.instrumentation.redis",
    "opentelemetry.instrumentation.httpx",
)
EXPORTERS = ("otlp", "console", "none")


class TracingUnavailable(RuntimeError):
    pass


def traced(app: ASGIApp, observed: Callable[[ASGIApp], ASGIApp]) -> ASGIApp:
    """``observed(app)`` (the layer that keeps each request's facts) inside
    :class:`ServerSpans`, with the database, Redis and httpx clients
    instrumented (once per process) and a tracer provider configured from
    the environment if none is yet."""
    check()
    configure_provider()
    instrument_clients()
    return ServerSpans(observed(app))


class ServerSpans:
    """Each HTTP request's and WebSocket's server span, continuing the
    caller's trace (W3C ``traceparent``/``tracestate`` and ``baggage``
    headers), with the stable HTTP semantic conventions' attributes and, as
    the response ends, the request's facts (:func:`span_attributes`).

    Considered and refused: opentelemetry-instrumentation-asgi's
    OpenTelemetryMiddleware. It cost 175 us of CPU per request here (spans
    made and dropped), a quarter of a nested list's whole request on
    PostgreSQL; this layer makes the same server span for a fraction of
    that. It records no header at all, so no secret or variable is on a
    span, and the URL without its query string (a GET query's variables)."""

    def __init__(self, app: ASGIApp) -> None:
        from opentelemetry import propagate, trace

        self.app = app
        self.tracer = trace.get_tracer("crmgraph")
        self.extract = propagate.extract
        self.server_kind = trace.SpanKind.SERVER

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name in PROPAGATED
        }
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        with self.tracer.start_as_current_span(
            f"{method} {scope.get('path', '')}",
            context=self.extract(carrier) if carrier else None,
            kind=self.server_kind,
            attributes=request_attributes(scope, method),
        ) as span:

            async def sending(message: MutableMapping[str, Any]) -> None:
                kind = message["type"]
                if kind == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        from opentelemetry.trace import StatusCode

                        span.set_status(StatusCode.ERROR)
                elif kind == "http.response.body" and not message.get("more_body"):
                    facts = current()
                    if facts is not None:
                        span_attributes(facts)
                await send(message)

            await self.app(scope, receive, sending)
            facts = current()
            if scope["type"] == "websocket" and facts is not None:
                span_attributes(facts)


# the headers a trace continues from (W3C Trace Context and Baggage)
PROPAGATED = frozenset({b"traceparent", b"tracestate", b"baggage"})


def request_attributes(scope: Scope, method: str) -> dict[str, Any]:
    """The request's attributes that OpenTelemetry's HTTP server conventions
    require, and no more: each costs the SDK a few microseconds to check, on
    every request (no header, no query string, no client address)."""
    return {
        "http.request.method": method,
        "url.path": scope.get("path", ""),
        "url.scheme": scope.get("scheme", "http"),
    }


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


def span_attributes(facts: RequestFacts) -> None:
    """Names the operation on the current span (the request's), in one call:
    each attribute set apart takes the span's lock again."""
    from opentelemetry import trace

    span = trace.get_current_span()
    if not span.is_recording():
        return
    found: dict[str, Any] = {
        "crmgraph.request_id": facts.request_id,
        "crmgraph.answered_by": facts.answered_by,
        "crmgraph.outcome": facts.outcome,
    }
    if facts.operation_name is not None:
        found["graphql.operation.name"] = facts.operation_name
    if facts.operation_type is not None:
        found["graphql.operation.type"] = facts.operation_type
    if facts.cost is not None:
        found["crmgraph.cost"] = facts.cost
    if facts.refusal is not None:
        found["crmgraph.refusal"] = facts.refusal
    if facts.principal is not None:
        found["enduser.id"] = facts.principal  # OpenTelemetry's name for the caller
    span.set_attributes(found)
