"""Benchmark: what metrics, tracing and the access log cost, as a ratio of req/s.

    .venv/bin/python -m bench.observability_cost --duration 3 --rounds 3

Two ``crmgraph serve`` processes (one worker each) on one SQLite copy of a
demo database (``crmgraph demo``): one with everything off
(``CRMGRAPH_METRICS=0``, ``CRMGRAPH_TRACING=0``, ``CRMGRAPH_ACCESS_LOG=0``, level
warning), one with everything on (metrics, tracing with spans made and
dropped, ``OTEL_TRACES_EXPORTER=none``, and the JSON access log at level info,
written to a file). wrk loads the nested list (bench.load_queries: 50
customers, their contacts, 5 interactions each; the direct path answers it),
or with ``--scenario typename`` ``{ __typename }``, on each in turn,
alternating for ``--rounds`` rounds on the same machine: req/s of each, and
the median of the on/off ratios.

SQLite, not the PostgreSQL data set of bench.graphql_load: what is measured
is the server's own CPU per request, which both runs share, and a demo file
takes seconds to make where the load data set takes minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import load_data
from bench.load_queries import CRMGRAPH, scenarios
from bench.load_servers import CRMGRAPH_BIN, Server, free_port, running, wait_ready
from bench.load_wrk import run_wrk
from crmgraph.settings import Settings

OFF = {
    "CRMGRAPH_METRICS": "0",
    "CRMGRAPH_TRACING": "0",
    "CRMGRAPH_ACCESS_LOG": "0",
    "CRMGRAPH_LOG_LEVEL": "warning",
}
# what "on" turns on, each alone with --only
PARTS = {
    "metrics": {"CRMGRAPH_METRICS": "1"},
    "tracing": {"CRMGRAPH_TRACING": "1", "OTEL_TRACES_EXPORTER": "none"},
    "logs": {
        "CRMGRAPH_ACCESS_LOG": "1",
        "CRMGRAPH_LOG_LEVEL": "info",
        "CRMGRAPH_LOG_FORMAT": "json",
    },
}


async def start(
    database_url: str, api_key: str, env: dict[str, str], log: Path, label: str
) -> Server:
    port = free_port()
    environ = {
        **os.environ,
        "CRMGRAPH_DATABASE_URL": database_url,
        "CRMGRAPH_RATE_LIMIT_COST": str(10**15),
        **env,
    }
    with log.open("w") as err:
        process = await asyncio.create_subprocess_exec(
            str(CRMGRAPH_BIN), "serve", "--host", "127.0.0.1", "--port", str(port),
            env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    server = Server(CRMGRAPH, f"{base}/graphql", process, {"Authorization": f"Bearer {api_key}"})
    server.label = label
    await wait_ready(server, f"{base}/readyz", None)
    return server


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="crmgraph-obs-") as tmp:
        path = Path(tmp) / "demo.sqlite"
        database_url = f"sqlite:///{path}"
        subprocess.run(
            [str(CRMGRAPH_BIN), "--database", database_url, "demo", "--customers",
             str(args.customers)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        api_key = await load_data.admin_key(Settings.from_env().with_database(database_url))
        body = next(s for s in scenarios(1) if s.name == args.scenario).body(CRMGRAPH)
        off = await start(database_url, api_key, OFF, Path(tmp) / "off.log", "off")
        async with running(off):
            parts = [args.only] if args.only else list(PARTS)
            on_env = {**OFF, **{k: v for part in parts for k, v in PARTS[part].items()}}
            on = await start(database_url, api_key, on_env, Path(tmp) / "on.log", "on")
            async with running(on):
                rates: dict[str, list[float]] = {"off": [], "on": []}
                for server in (off, on):  # warm-up: the direct path learns the query
                    await run_wrk(server.url, body, server.headers, 1, args.connections)
                for _ in range(args.rounds):
                    for server in (off, on):
                        load = await run_wrk(
                            server.url, body, server.headers, args.duration, args.connections
                        )
                        if load.bad_status or load.socket_errors:
                            raise SystemExit(f"{server.label}: failed requests {load}")
                        rates[server.label].append(load.requests / load.seconds)
            logged = (Path(tmp) / "on.log").read_text().splitlines()
            direct = sum('"answered_by":"direct"' in line for line in logged)
    ratios = [a / b for a, b in zip(rates["on"], rates["off"], strict=True)]
    print(
        f"{args.scenario}, on: {args.only or 'all'}; {args.rounds} rounds of {args.duration:g} s, "
        f"{args.connections} connections"
    )
    for label, found in rates.items():
        print(f"  {label:>3}: " + ", ".join(f"{r:,.0f}" for r in found) + " req/s")
    print(f"  on/off: median {statistics.median(ratios):.2f}x")
    print(f"  on: {len(logged):,} log lines written, {direct:,} access lines of direct answers")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.observability_cost")
    parser.add_argument("--duration", type=float, default=3, help="seconds per load (3)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--customers", type=int, default=500, help="demo customers (500)")
    parser.add_argument("--only", choices=tuple(PARTS), help="turn on only this one")
    parser.add_argument(
        "--scenario",
        default="nested",
        choices=("nested", "typename"),
        help="bench.load_queries' nested list (default), or { __typename }: the least work "
        "per request, where the observation's own cost weighs most",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(bench(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
