"""The ASGI application: GraphQL on /graphql, health checks, GraphiQL assets."""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import pluggy
import strawberry
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected

from crmgraph import graphiql
from crmgraph.access import CUSTOMER_IMPORT, Policy
from crmgraph.auth import ANONYMOUS, Authentication, authenticate
from crmgraph.auth_changes import listener_for
from crmgraph.body_limit import BodySizeLimit
from crmgraph.compiled.direct import Checks, DirectReads
from crmgraph.compiled.extension import CompiledReads, CompiledReadsExtension
from crmgraph.db.engine import Database, make_engine
from crmgraph.db.migrate import catalog_apps, migrate, plugin_tables
from crmgraph.db.readiness import unanswered
from crmgraph.db.readings import outbox_lag, pool_readings
from crmgraph.db.tables import CORE_TABLES
from crmgraph.dedupe.rules import check_duplicate_rules
from crmgraph.events import Backoff, EventDispatcher
from crmgraph.extension_points import BackgroundService
from crmgraph.idempotency import IdempotentRequests
from crmgraph.lifecycle import Lifecycles
from crmgraph.live import Publisher, Subscribers, make_broker
from crmgraph.observability import metrics, request_facts, tracing
from crmgraph.observability.logs import access_line
from crmgraph.observability.middleware import RequestObservation
from crmgraph.observability.request_facts import Observer
from crmgraph.persisted_queries import (
    DocumentStore,
    Manifest,
    PersistedQueries,
    TrustedDocumentsOnly,
    load_manifest,
)
from crmgraph.plugin_calls import await_me_maybe
from crmgraph.principal_cache import PrincipalCache, make_cache
from crmgraph.rate_limit import CostBudget, budget_for
from crmgraph.redis_link import RedisLink
from crmgraph.registry import Catalog, PluginError, make_plugin_manager
from crmgraph.retention import Pruner
from crmgraph.schema.build import SchemaTypes
from crmgraph.schema.build_cache import shared_schema
from crmgraph.schema.context import Context
from crmgraph.schema.extensions import SQLStatementCount
from crmgraph.schema.limits import CostCache, QueryLimits, limit_extensions
from crmgraph.schema.permissions import CoordinateCache, FieldPermissions
from crmgraph.schema.replica_reads import ReplicaReads
from crmgraph.settings import Settings
from crmgraph.startup_work import StartupWork

T = TypeVar("T")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TextFrames(ASGIWebSocketAdapter):
    """graphql-transport-ws messages go in text frames: strawberry sends the
    bytes orjson makes as binary frames, which browsers' graphql-ws client
    cannot read (it closes the connection right after connection_ack)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        encoded = self.view.encode_json(message)
        try:
            await self.ws.send_text(encoded.decode() if isinstance(encoded, bytes) else encoded)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class CRMGraphQL(GraphQL):
    """Strawberry's ASGI view with our context, orjson and a local GraphiQL."""

    websocket_adapter_class = TextFrames  # type: ignore[assignment]

    def __init__(self, schema: strawberry.Schema, state: AppState) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if state.settings.graphiql else None,
            multipart_uploads_enabled=True,  # importCustomers; see parse_multipart
        )
        self.state = state

    async def parse_multipart(self, request: Any) -> dict[str, str]:
        """A browser sends a multipart form to any site without asking (a
        "simple" request), so one carrying neither credentials nor a header
        only scripts can set could be a cross-site forgery: it is refused."""
        headers = request.headers
        if not headers.get("authorization") and not headers.get("apollo-require-preflight"):
            raise HTTPException(
                400,
                "a multipart request needs an Authorization header or a non-empty "
                "Apollo-Require-Preflight header",
            )
        operations = await super().parse_multipart(request)
        if not isinstance(operations, (dict, list)):
            raise HTTPException(400, "a multipart request's operations must be a JSON object")
        return operations

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        principal = request.scope.get("state", {}).get("principal", ANONYMOUS)
        return Context(
            db=self.state.db,
            catalog=self.state.catalog,
            settings=self.state.settings,
            types=self.state.types,
            plugin_manager=self.state.plugin_manager,
            lifecycles=self.state.lifecycles,
            events=self.state.events,
            live=self.state.subscribers,
            principal=principal,
            access=self.state.policy.access(principal),
            request=request,
            response=response,
        )

    async def on_ws_connect(self, context: Context) -> None:  # type: ignore[override]
        """Authenticate a WebSocket in its connection_init payload
        (``{"Authorization": "Bearer <API key>"}``), where browsers can put
        what they cannot send as a header; a refusal closes it with 4403."""
        params = context.connection_params or {}
        token = str(params.get("Authorization") or params.get("authorization") or "")
        scheme, _, key = token.partition(" ")
        if token and (scheme.lower() != "bearer" or not key.strip()):
            raise ConnectionRejectionError({"message": "send Authorization: Bearer <API key>"})
        if token:
            principal = await authenticate(self.state.db, key.strip(), self.state.principals)
            if principal is None:
                raise ConnectionRejectionError({"message": "invalid, unknown or revoked API key"})
        elif self.state.settings.anonymous:
            principal = ANONYMOUS
        else:
            raise ConnectionRejectionError({"message": "authentication required"})
        context.principal = principal
        context.access = self.state.policy.access(principal)
        request_facts.note_principal(principal.log_name)
        return None

    def encode_json(self, data: object) -> bytes:  # type: ignore[override]
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        """Every JSON the server reads from a client (a POST body, GET's
        variables, a multipart request's operations and map, graphql-ws
        messages) is decoded here, by orjson, which refuses what Python's json
        lets through to fail later: invalid UTF-8, a lone surrogate
        (``"\\ud800"``, which no database can store) and nesting deeper than
        1,024 (json recursed until RecursionError). A WebSocket message it
        refuses closes the socket with 4400."""
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        """A JSON request part, or 400 naming what is wrong with it. A body
        (strawberry hands it over as bytes; query parameters and form fields
        as str, which its own checks handle) must be a JSON object or, as a
        batch, an array: a bare string, number or null was a 500."""
        try:
            value = self.decode_json(data)
        except orjson.JSONDecodeError as exc:
            raise HTTPException(400, f"the request is not valid JSON: {exc}") from exc
        if isinstance(data, bytes) and not isinstance(value, (dict, list)):
            raise HTTPException(400, "a GraphQL request body must be a JSON object")
        return value

    async def render_graphql_ide(self, request: Request) -> Response:  # type: ignore[override]
        """GraphiQL; in demo mode (``serve --demo`` sets the token) its headers
        hold the demo admin key, but only for a browser on this machine: the
        page needs no key, so with ``--host 0.0.0.0`` anyone who can reach it
        would otherwise be handed an admin key."""
        token = self.state.settings.graphiql_token
        client = request.client.host if request.client else None
        if token and not graphiql.is_local_browser(client, request.headers):
            token = None
        return HTMLResponse(graphiql.page(token=token))


class CRMApp(Starlette):
    """Starlette, with ``POST /graphql`` handed straight to its endpoint.

    Every query is a ``POST /graphql``; for one the direct path answers
    (crmgraph.compiled.direct), Starlette's two middlewares and its router
    were about a fifth of the server's CPU per request (``{ __typename }``,
    profiled under uvicorn, issue 21). Here that request meets what the
    router would have given it (the endpoint, no path parameters) and goes to
    the same endpoint; everything else (GET, other paths, WebSockets, a
    ``root_path`` to strip) goes through Starlette. An exception escaping the
    endpoint still becomes a 500 and is logged: by uvicorn, where it was
    Starlette's ServerErrorMiddleware that answered 500 before re-raising."""

    graphql_endpoint: ASGIApp | None = None
    # what every HTTP request and WebSocket meets first (create_app sets it:
    # crmgraph.observability's request ids and facts, tracing when on); it
    # hands them on to route
    entry: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.entry is not None and scope["type"] != "lifespan":
            await self.entry(scope, receive, send)
        else:
            await self.route(scope, receive, send)

    async def route(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.graphql_endpoint
        if (
            endpoint is not None
            and scope["type"] == "http"
            and scope["path"] == "/graphql"
            and scope.get("method") == "POST"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            scope["router"] = self.router
            scope["endpoint"] = endpoint
            scope["path_params"] = {}
            await endpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


@dataclass
class AppState:
    settings: Settings
    plugin_manager: pluggy.PluginManager
    catalog: Catalog
    db: Database
    schema: strawberry.Schema
    types: SchemaTypes
    lifecycles: Lifecycles
    events: EventDispatcher
    policy: Policy
    budget: CostBudget | None
    subscribers: Subscribers
    publisher: Publisher
    pruner: Pruner
    # what plugins run beside the server (crmgraph_background_services), in order
    services: tuple[BackgroundService, ...] = ()
    # None when CRMGRAPH_API_KEY_CACHE_SECONDS is 0
    principals: PrincipalCache | None = None
    # None when CRMGRAPH_COMPILED_READS is 0
    compiled: CompiledReads | None = None
    checks: Checks | None = None
    # None without CRMGRAPH_REDIS_URL
    redis: RedisLink | None = None
    # called with each HTTP request's facts once its response is sent (the
    # access log, metrics, the request's span): append an observer here
    observers: list[Observer] = field(default_factory=list)
    # None without CRMGRAPH_TRUSTED_DOCUMENTS
    trusted: Manifest | None = None
    # what plugins' crmgraph_startup left running beside the first requests
    startup_work: StartupWork = field(default_factory=StartupWork)


def background_services(
    pm: pluggy.PluginManager, db: Database, settings: Settings
) -> tuple[BackgroundService, ...]:
    """Every plugin's ``crmgraph_background_services``, in registration order
    (built-ins first); a plugin that raises stops start-up, naming it."""
    found: list[BackgroundService] = []
    for impl in pm.hook.crmgraph_background_services.get_hookimpls():
        args = {"db": db, "settings": settings}
        try:
            found.extend(impl.function(**{n: args[n] for n in impl.argnames}) or ())
        except Exception as exc:
            raise PluginError(
                impl.plugin_name, f"crmgraph_background_services raised {exc!r}"
            ) from exc
    return tuple(found)


async def run_startup(state: AppState) -> None:
    """Every plugin's ``crmgraph_startup``, in registration order (built-ins
    first), awaited one after the other; one that raises stops start-up."""
    args = {"db": state.db, "catalog": state.catalog, "startup_work": state.startup_work}
    for impl in state.plugin_manager.hook.crmgraph_startup.get_hookimpls():
        try:
            await await_me_maybe(impl.function(**{n: args[n] for n in impl.argnames}))
        except Exception as exc:
            raise PluginError(impl.plugin_name, f"crmgraph_startup raised {exc!r}") from exc


def build_state(settings: Settings) -> AppState:
    pm = make_plugin_manager(settings)
    catalog = Catalog.from_plugin_manager(pm)
    policy = Policy.from_catalog(catalog, settings.grants)
    check_duplicate_rules(catalog, settings.duplicate_rules)
    redis = RedisLink(settings.redis_url) if settings.redis_url else None
    budget = budget_for(settings, redis)
    costs = CostCache()
    coordinates = CoordinateCache()
    compiled = CompiledReads() if settings.compiled_reads else None
    # a manifest that cannot be used stops start-up here, naming the file
    trusted = load_manifest(settings.trusted_documents) if settings.trusted_documents else None
    extensions = (
        # refuses a document outside the manifest as execution starts, before
        # any other extension's execution hook is entered
        *((functools.partial(TrustedDocumentsOnly, trusted),) if trusted else ()),
        # first: every extension after it (the compiled reads) runs inside it
        *((ReplicaReads,) if settings.database_read_url else ()),
        *((SQLStatementCount,) if settings.expose_sql_count else ()),
        functools.partial(FieldPermissions, coordinates),
        *limit_extensions(settings, budget, costs),
        # last: it answers only what every extension before it let through
        *((functools.partial(CompiledReadsExtension, compiled),) if compiled else ()),
    )
    # built once per plugin set in this process; the extensions are this app's
    schema, types = shared_schema(catalog, pm, extensions)
    db = Database(make_engine(settings), (*CORE_TABLES, *plugin_tables(catalog)))
    events = EventDispatcher(
        db, pm, poll_seconds=settings.event_poll_seconds, backoff=Backoff.for_events(settings)
    )
    subscribers = Subscribers()
    publisher = Publisher(
        db, make_broker(settings, subscribers, redis), poll_seconds=settings.event_poll_seconds
    )
    events.followers.append(publisher.wake)
    services = background_services(pm, db, settings)
    events.followers.extend(service.wake for service in services)
    return AppState(
        settings,
        pm,
        catalog,
        db,
        schema,
        types,
        Lifecycles(catalog, pm),
        events,
        policy,
        budget,
        subscribers,
        publisher,
        Pruner(db, settings),
        services,
        make_cache(settings.api_key_cache_seconds),
        compiled,
        Checks(policy, QueryLimits.from_settings(settings), costs, budget, coordinates),
        redis,
        trusted=trusted,
    )


async def with_state(settings: Settings, work: Callable[[AppState], Awaitable[T]]) -> T:
    """Run ``work`` against a started app state (database pool included) and
    stop it afterwards: for the CLI and for tests that read or seed a database."""
    state = build_state(settings)
    await state.db.start(settings)
    try:
        return await work(state)
    finally:
        await state.db.stop()
        if state.budget is not None:
            await state.budget.close()
        if state.redis is not None:
            await state.redis.close()


def metrics_readings(state: AppState) -> metrics.Readings:
    """What ``GET /metrics`` reads when scraped (crmgraph.observability.metrics)."""
    return metrics.Readings(
        pools=lambda: pool_readings(state.db),
        subscriptions=lambda: state.subscribers.count,
        outbox_lag=lambda: outbox_lag(state.db, state.events.max_attempts),
    )


def lifespan_for(
    state: AppState, auth_listener: Any, sampler: metrics.Sampler | None
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """What the server starts before its first request and stops after its
    last: migrations (when asked), the pool, plugins' start-up, the
    background loops, in this order and back."""
    settings = state.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await migrate(state.db.engine, catalog_apps(state.catalog))
        await state.db.start(settings)
        await run_startup(state)
        if auth_listener is not None:
            await auth_listener.start()
        await state.events.start()
        await state.publisher.start()
        for service in state.services:
            await service.start()
        await state.pruner.start()
        if sampler is not None:
            await sampler.start()
        # what start-up built (schema, plugins, pools) lives as long as the
        # process: out of the collector's sight, a request's garbage no longer
        # makes it walk all of that (~1 ms of a 7 ms mixed read, in process)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await state.startup_work.stop()
            if sampler is not None:
                await sampler.stop()
            await state.pruner.stop()
            for service in reversed(state.services):
                await service.stop()
            await state.publisher.stop()
            await state.events.stop()
            if auth_listener is not None:
                await auth_listener.stop()
            await state.db.stop()
            if state.budget is not None:
                await state.budget.close()
            if state.redis is not None:
                await state.redis.close()

    return lifespan


def graphql_http(state: AppState, graphql_app: CRMGraphQL) -> tuple[Any, Any]:
    """The layers a ``/graphql`` HTTP request goes through inside
    authentication, outermost first: persisted queries, the direct reads,
    the body limit, idempotent requests, strawberry; and the body limit,
    which tests look at."""
    settings = state.settings
    # Nothing reads a body before the router has matched its path and method
    # and authentication has accepted its key: a stranger's 49 MB is never read
    # (the direct reads read only a body declared within the limit).
    limited: Any = BodySizeLimit(
        IdempotentRequests(graphql_app, state.db, settings.idempotency_ttl_hours),
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.import_max_bytes,
        may_upload=lambda principal: state.policy.access(principal).can(CUSTOMER_IMPORT),
    )
    http_app: Any = limited
    if state.compiled is not None and state.checks is not None and settings.direct_reads:
        # outside the body limit and idempotent requests, whose work a query it
        # answers does not need: it takes only a body they would let through
        http_app = DirectReads(
            limited,
            state.compiled,
            state.checks,
            state.db,
            settings.expose_sql_count,
            max_body_bytes=settings.max_body_bytes,
        )
    # a document sent by hash or id gets its text before the direct reads look
    http_app = PersistedQueries(
        http_app,
        DocumentStore(state.redis),
        state.trusted,
        apq=settings.persisted_queries,
        max_body_bytes=settings.max_body_bytes,
    )
    return http_app, limited


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    state = build_state(settings)
    readings = metrics_readings(state)
    # several workers: each writes its levels for whichever answers the scrape
    sampler = metrics.Sampler(readings) if settings.metrics and metrics.MULTIPROCESS_DIR else None
    if settings.metrics:
        state.observers.append(metrics.Metrics().observe)
    auth_listener = listener_for(settings, state.redis) if state.principals is not None else None

    lifespan = lifespan_for(state, auth_listener, sampler)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """503 while a database (the primary, the replica when configured)
        does not answer; the caller learns which, never why: the exception,
        which may name hosts and users, goes to the log."""
        down = await unanswered(state.db)
        if down:
            return JSONResponse(
                {"status": "unavailable", **dict.fromkeys(down, "unavailable")}, status_code=503
            )
        ready: dict[str, Any] = {
            "status": "ok",
            "database": state.db.engine.engine_type,
            "subscriptions": state.subscribers.count,
        }
        if state.db.reader is not None:
            ready["replica"] = "ok"
        if pending := state.startup_work.pending():
            ready["startupWork"] = pending  # answering already; these still run
        if state.redis is not None:
            # still 200 while Redis is away: everything that uses it degrades
            # (docs/deployment.md), and every worker would report the same, so
            # a load balancer would take them all out
            ready["redis"] = "ok" if await state.redis.ping() else "degraded"
        return JSONResponse(ready)

    graphql_app = CRMGraphQL(state.schema, state)
    http_app, limited = graphql_http(state, graphql_app)
    endpoint = Authentication(http_app, state.db, settings.anonymous, state.principals)
    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/graphql", endpoint, methods=["GET", "POST"]),
        # graphql-transport-ws: authenticated by on_ws_connect
        WebSocketRoute("/graphql", graphql_app),
    ]
    if settings.metrics:  # off: 404, as any unknown path
        endpoint_of_metrics = metrics.MetricsEndpoint(settings.metrics_token, readings)
        routes.append(Route("/metrics", endpoint_of_metrics.respond, methods=["GET"]))
    assets = graphiql.assets_dir()
    if settings.graphiql and assets.is_dir():
        routes.append(Mount("/graphiql-assets", StaticFiles(directory=assets), name="graphiql"))
    app = CRMApp(routes=routes, lifespan=lifespan)
    app.graphql_endpoint = endpoint
    if settings.access_log:
        state.observers.append(access_line)

    def observed(inner: ASGIApp) -> ASGIApp:
        return RequestObservation(inner, state.observers)

    # tracing outermost: its span holds everything, the direct path's answers too
    app.entry = tracing.traced(app.route, observed) if settings.tracing else observed(app.route)
    app.state.crm = state
    app.state.body_limit = limited  # tests look at the uploads in flight
    return app
