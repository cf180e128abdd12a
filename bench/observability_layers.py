"""Benchmark: the CPU each observability layer adds to one request, in process.

    .venv/bin/python -m bench.observability_layers --requests 20000

bench.observability_cost compares two servers' req/s, which on a shared
2-core machine moves by +-15 % between rounds: a cost of a few percent does
not show. This calls one ASGI app that answers at once, bare and inside each
layer (the request facts, the metrics observer, the JSON access line, the
server span of crmgraph.observability.tracing with spans made and dropped),
many times in one process, and prints each layer's CPU per request
(``time.process_time``) and its share of a request's CPU given with
``--request-us`` (the nested list's server CPU per request on PostgreSQL,
from bench.graphql_load's last table).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")

from crmgraph.observability import metrics, tracing
from crmgraph.observability.logs import access_line
from crmgraph.observability.middleware import RequestObservation

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
SCOPE = {
    "type": "http",
    "method": "POST",
    "path": "/graphql",
    "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
    "query_string": b"",
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 8000),
    "scheme": "http",
    "http_version": "1.1",
    "root_path": "",
}


async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b'{"data":{}}'})


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"{}", "more_body": False}


async def send(message: dict[str, Any]) -> None:
    pass


async def cpu_us(app: App, requests: int) -> float:
    for _ in range(requests // 20):  # warm
        await app(dict(SCOPE), receive, send)
    started = time.process_time()
    for _ in range(requests):
        await app(dict(SCOPE), receive, send)
    return (time.process_time() - started) / requests * 1e6


async def main(requests: int, request_us: float) -> None:
    logging.basicConfig(level=logging.INFO, handlers=[logging.FileHandler(os.devnull)])
    bare = await cpu_us(answer, requests)
    observed = await cpu_us(RequestObservation(answer, []), requests)
    layers = {
        "request facts": observed - bare,
        "metrics": await cpu_us(RequestObservation(answer, [metrics.Metrics().observe]), requests)
        - observed,
        "access line": await cpu_us(RequestObservation(answer, [access_line]), requests) - observed,
        "server span": await cpu_us(tracing.traced(answer, lambda a: a), requests) - bare,
    }
    print(f"{'layer':<14} {'us/request':>10} {'share':>8}")
    for name, us in [*layers.items(), ("all", sum(layers.values()))]:
        print(f"{name:<14} {us:>10.1f} {us / request_us:>8.1%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument(
        "--request-us", type=float, default=720.0, help="a nested list's server CPU, us"
    )
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.request_us))
