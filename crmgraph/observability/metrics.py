"""Prometheus metrics: what each request's facts add up to, served on ``GET /metrics``.

The per-request part is one observer (:meth:`Metrics.observe`) called with
the facts of every ``/graphql`` request once it has ended: it bumps a counter
(operation, outcome, answering path), a latency histogram, the cost
histogram and, for a refusal, the refusals by code. It runs on the direct
path's requests too, so it keeps to dictionary look-ups and prometheus-client's
own increments (a few microseconds; label children are cached here rather
than looked up through ``labels()`` each time).

What is a level, not a count (the database pool, live subscriptions, the
outbox's lag), is read when Prometheus scrapes, through callables the app
hands in (:class:`Readings`): this package sits below crmgraph.db and reads
no database itself.

prometheus-client keeps its values per process. With several workers
(``crmgraph serve --workers N``) each would answer a scrape with its own
numbers only, so when ``PROMETHEUS_MULTIPROC_DIR`` is set (a directory the
operator empties before the workers start) the values go to files there and
a scrape adds up every worker's (prometheus-client's multiprocess mode): the
levels of each worker are then also written every few seconds by a
:class:`Sampler`, because the worker that answers a scrape cannot read the
others' pools. Without it, the registry is this process's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crmgraph.observability.request_facts import RequestFacts

logger = logging.getLogger("crmgraph.observability")

# read once, as prometheus-client reads it when it is imported
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
GRAPHQL_PATH = "/graphql"
# distinct operation names counted under their own label; later ones are "other"
MAX_OPERATION_NAMES = 200
MAX_NAME_LENGTH = 100
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

if MULTIPROCESS_DIR is not None and not os.path.isdir(MULTIPROCESS_DIR):
    # prometheus-client would fail on the first metric with a bare FileNotFoundError
    raise RuntimeError(
        f"PROMETHEUS_MULTIPROC_DIR={MULTIPROCESS_DIR!r} is not a directory: create it "
        "(empty) before starting crmgraph, or unset it for one process"
    )

REGISTRY = CollectorRegistry()
if MULTIPROCESS_DIR is None:  # in multiprocess mode these would describe one worker only
    ProcessCollector(registry=REGISTRY)
    PlatformCollector(registry=REGISTRY)
    GCCollector(registry=REGISTRY)

REQUESTS = Counter(
    "crmgraph_requests",
    "GraphQL requests by operation name (bounded: unknown, anonymous, other), "
    "outcome (ok, errors, refused, failed) and what answered them (direct, full, none)",
    ["operation", "outcome", "answered_by"],
    registry=REGISTRY,
)
DURATION = Histogram(
    "crmgraph_request_duration_seconds",
    "Time from a GraphQL request's arrival to its response sent",
    ["answered_by", "operation_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
COST = Histogram(
    "crmgraph_query_cost",
    "The calculated cost of each costed operation (objects its answer can hold)",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000),
    registry=REGISTRY,
)
REFUSALS = Counter(
    "crmgraph_refusals",
    "Requests refused, by error code (RATE_LIMITED, QUERY_TOO_DEEP, FORBIDDEN, ...)",
    ["code"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "crmgraph_webhook_deliveries",
    "Webhook delivery attempts recorded, by outcome: succeeded, retrying (failed, "
    "to be sent again), failed (failed for good)",
    ["outcome"],
    registry=REGISTRY,
)
# levels: summed over the live workers in multiprocess mode. The pool gauges
# are labelled by pool ("primary", "replica" with CRMGRAPH_DATABASE_READ_URL),
# so SQLite, which has none, shows none.
POOL_CONNECTIONS = Gauge(
    "crmgraph_db_pool_connections",
    "Open connections of the PostgreSQL pool",
    ["pool"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
POOL_IN_USE = Gauge(
    "crmgraph_db_pool_connections_in_use",
    "Pool connections lent out",
    ["pool"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "crmgraph_db_pool_waiting",
    "Tasks waiting for a pool connection",
    ["pool"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "crmgraph_db_pool_max_connections",
    "The pool's maximum size",
    ["pool"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS = Gauge(
    "crmgraph_live_subscriptions",
    "GraphQL subscriptions open",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
# in PoolReading's order
POOL_GAUGES = (POOL_CONNECTIONS, POOL_IN_USE, POOL_WAITING, POOL_MAX)
# one database, whichever worker reads it: the latest reading
OUTBOX_LAG = Gauge(
    "crmgraph_outbox_lag_seconds",
    "Age of the oldest outbox event still to be delivered (0: none waiting)",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)


def webhook_delivery(outcome: str, count: int = 1) -> None:
    """Called where crmgraph.webhooks records attempts' outcomes."""
    WEBHOOK_DELIVERIES.labels(outcome).inc(count)


class OperationNames:
    """Operation names as a label, at most ``limit`` distinct ones: an
    operation name is the client's to choose, and each new label value is a
    new time series. Only names of operations that ran are admitted, first
    come first counted; the rest are "other"."""

    def __init__(self, limit: int = MAX_OPERATION_NAMES) -> None:
        self.limit = limit
        self.admitted: set[str] = set()

    def label(self, facts: RequestFacts) -> str:
        name = facts.operation_name
        if name is None:
            return "anonymous" if facts.operation_type is not None else "unknown"
        if name in self.admitted:
            return name
        if (
            len(self.admitted) < self.limit
            and len(name) <= MAX_NAME_LENGTH
            and facts.operation_type is not None
            and facts.outcome in ("ok", "errors")
        ):
            self.admitted.add(name)
            return name
        return "other"


class Metrics:
    """The per-request observer (append :meth:`observe` to the app's observers)."""

    def __init__(self, names: OperationNames | None = None) -> None:
        self.names = names or OperationNames()
        # label children by label values: labels() validates and locks each call
        self._requests: dict[tuple[str, str, str], Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}

    def observe(self, facts: RequestFacts) -> None:
        if facts.path != GRAPHQL_PATH:
            return
        operation_type = facts.operation_type or "none"
        key = (self.names.label(facts), facts.outcome, facts.answered_by)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = REQUESTS.labels(*key)
        counter.inc()
        timing = (facts.answered_by, operation_type)
        histogram = self._durations.get(timing)
        if histogram is None:
            histogram = self._durations[timing] = DURATION.labels(*timing)
        histogram.observe(facts.seconds)
        if facts.cost is not None:
            COST.observe(facts.cost)
        if facts.refusal is not None:
            REFUSALS.labels(facts.refusal).inc()


class PoolReading(NamedTuple):
    connections: int
    in_use: int
    waiting: int
    maximum: int


@dataclass(frozen=True)
class Readings:
    """What the app reads for a scrape: the pools by name (none on SQLite),
    live subscriptions, and the outbox's lag in seconds (a query)."""

    pools: Callable[[], dict[str, PoolReading]]
    subscriptions: Callable[[], int]
    outbox_lag: Callable[[], Awaitable[float]]

    def set_levels(self) -> None:
        """This process's levels (no database round trip)."""
        SUBSCRIPTIONS.set(self.subscriptions())
        pools = self.pools()
        for index, gauge in enumerate(POOL_GAUGES):
            gauge.clear()  # a pool gone (or an earlier app's in this process) leaves no series
            for name, reading in pools.items():
                gauge.labels(name).set(reading[index])

    async def refresh(self) -> None:
        self.set_levels()
        try:
            OUTBOX_LAG.set(await self.outbox_lag())
        except Exception:  # a scrape still answers, with the last lag read
            logger.exception("reading the outbox lag for /metrics failed")


def exposition() -> bytes:
    """The text a scrape gets: every worker's values in multiprocess mode."""
    if MULTIPROCESS_DIR is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, MULTIPROCESS_DIR)
    return generate_latest(registry)


def is_loopback(host: str | None) -> bool:
    return host is not None and (host in LOOPBACK_HOSTS or host.startswith("127."))


class MetricsEndpoint:
    """``GET /metrics``. With a token, only ``Authorization: Bearer <token>``
    (401 otherwise); without one, only a client on this machine (403
    otherwise): the numbers name operations and show load, not for anyone
    who can reach the API."""

    def __init__(self, token: str | None, readings: Readings) -> None:
        self.token = token.encode() if token else None
        self.readings = readings

    async def respond(self, request: Request) -> Response:
        refusal = self.refusal(request)
        if refusal is not None:
            return refusal
        await self.readings.refresh()
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    def refusal(self, request: Request) -> Response | None:
        if self.token is None:
            client = request.client.host if request.client else None
            if is_loopback(client):
                return None
            return JSONResponse(
                {"error": "/metrics answers only this machine; set CRMGRAPH_METRICS_TOKEN"},
                status_code=403,
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token):
            return None
        return JSONResponse(
            {"error": "send Authorization: Bearer <metrics token>"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="crmgraph-metrics"'},
        )


class Sampler:
    """Multiprocess mode: writes this worker's levels every ``interval``
    seconds, so a scrape answered by another worker adds them up; on stop,
    the worker's live gauges are let go (prometheus-client's
    ``mark_process_dead``)."""

    def __init__(self, readings: Readings, interval: float = 5.0) -> None:
        self.readings = readings
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="crmgraph-metrics-sampler")

    async def _run(self) -> None:
        while True:
            try:
                self.readings.set_levels()
            except Exception:
                logger.exception("sampling the pool and subscriptions for /metrics failed")
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if MULTIPROCESS_DIR is not None:
            multiprocess.mark_process_dead(os.getpid(), MULTIPROCESS_DIR)
