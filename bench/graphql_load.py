"""Benchmark: GraphQL load on crmgraph against PostGraphile 5, same database.

    .venv/bin/python -m bench.graphql_load

1. Seeds (or reuses) a PostgreSQL database, ``crmgraph_bench_load``: 10,000
   customers with 100,000 interactions, contacts and needs, through crmgraph's
   migrations (bench.analytics' generator, bench.load_data).
2. Starts crmgraph (``crmgraph serve``, one uvicorn worker, production
   settings) and PostGraphile 5 (Amber preset, Node 22, installed by npm into
   ``bench/.cache/postgraphile``) on free loopback ports, each polled until
   ready, and checks that both answer every scenario with the same data.
3. Loads each scenario with ``wrk`` (``--connections`` keep-alive connections,
   ``--duration`` seconds), interleaving the servers for ``--rounds`` rounds
   because the machine is shared: req/s, p50, p99 and the median over rounds of
   the ratio crmgraph / PostGraphile.
4. Counts SQL statements per request without the clock: each server is
   started again behind a proxy in front of PostgreSQL that counts the Query
   and Execute messages of the wire protocol (bench.pg_wire_count), and sends
   ``--count-requests`` requests one at a time after a warm-up.

``--sqlite`` runs crmgraph alone on a SQLite copy of the same rows (statements
counted by crmgraph's own counter, ``CRMGRAPH_EXPOSE_SQL_COUNT``, in a separate
start).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import analytics, load_data
from bench.load_queries import CRMGRAPH, POSTGRAPHILE, Scenario, common_shape, scenarios
from bench.load_servers import (
    Server,
    ensure_peer,
    running,
    start_crmgraph,
    start_postgraphile,
    stop,
)
from bench.load_wrk import Load, run_wrk, wrk_binary
from bench.pg_wire_count import CountingProxy
from crmgraph.db.engine import postgres_config
from crmgraph.settings import Settings

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/crmgraph_bench_load"
CACHE = Path(__file__).resolve().parent / ".cache"
WARM_UP_SECONDS = 2
COUNT_WARM_UP = 3
# the counting start of crmgraph: background pollers (outbox, live, webhooks)
# wait this long, so that every statement counted belongs to a request
QUIET_POLL_SECONDS = "86400"
VARIANT = "crmgraph-b"


@dataclass
class Results:
    loads: dict[tuple[str, str], list[Load]] = field(default_factory=dict)  # (scenario, server)
    # CPU time the server process spent per request during each load, in ms
    cpu_ms: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    statements: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, scenario: str, server: str, load: Load, cpu_seconds: float) -> None:
        self.loads.setdefault((scenario, server), []).append(load)
        per_request = cpu_seconds * 1000 / max(1, load.requests)
        self.cpu_ms.setdefault((scenario, server), []).append(per_request)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): on a shared
    machine, CPU per request moves far less with the neighbours' load than
    requests per second do. The database's own CPU is not in it."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def post(client: httpx.AsyncClient, server: Server, body: bytes) -> dict:
    response = await client.post(
        server.url, content=body, headers={**server.headers, "content-type": "application/json"}
    )
    response.raise_for_status()
    return response.json()


async def check_answers(servers: list[Server], chosen: list[Scenario]) -> None:
    """Every server answers every scenario without errors, and with the same
    data as the first server; refuses to time anything otherwise."""
    async with httpx.AsyncClient(timeout=30) as client:
        for scenario in chosen:
            shapes = [
                common_shape(s.kind, await post(client, s, scenario.body(s.kind))) for s in servers
            ]
            if any(shape != shapes[0] for shape in shapes[1:]):
                raise SystemExit(
                    f"{scenario.name}: the servers disagree\n"
                    + "\n".join(
                        f"{s.name}: {shape}" for s, shape in zip(servers, shapes, strict=True)
                    )
                )
            if isinstance(shapes[0], list) and not shapes[0]:
                raise SystemExit(f"{scenario.name}: empty answer; is the database seeded?")
            print(f"  {scenario.name}: same data on {', '.join(s.name for s in servers)}")


async def time_load(
    servers: list[Server], chosen: list[Scenario], args: argparse.Namespace, results: Results
) -> None:
    for scenario in chosen:  # warm-up: plans, caches, JIT, pools
        for server in servers:
            await run_wrk(
                server.url,
                scenario.body(server.kind),
                server.headers,
                WARM_UP_SECONDS,
                args.connections,
            )
    for number in range(1, args.rounds + 1):
        for scenario in chosen:
            # every other round in reverse order: neither server always goes first
            for server in servers if number % 2 else servers[::-1]:
                before = cpu_seconds(server.process.pid)
                load = await run_wrk(
                    server.url,
                    scenario.body(server.kind),
                    server.headers,
                    args.duration,
                    args.connections,
                )
                results.add(
                    scenario.name, server.name, load, cpu_seconds(server.process.pid) - before
                )
                problems = ""
                if load.bad_status or load.socket_errors:
                    problems = f"  ({load.bad_status} non-2xx, {load.socket_errors} socket errors)"
                print(
                    f"  round {number} {scenario.name:9} {server.name:12} {load.rps:8.1f} req/s "
                    f"p50 {load.p50_ms:7.2f} ms p99 {load.p99_ms:7.2f} ms{problems}",
                    file=sys.stderr,
                )


async def count_statements(
    server: Server, chosen: list[Scenario], proxy: CountingProxy | None, n: int
) -> dict[str, str]:
    """Statements per request, over ``n`` requests sent one at a time: from the
    proxy's wire counts, or (SQLite) from crmgraph's ``sqlStatements``."""
    counts = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for scenario in chosen:
            body = scenario.body(server.kind)
            for _ in range(COUNT_WARM_UP):
                await post(client, server, body)
            if proxy is None:
                seen = [
                    (await post(client, server, body)).get("extensions", {}).get("sqlStatements")
                    for _ in range(n)
                ]
                if any(s is None for s in seen):
                    raise RuntimeError("crmgraph did not report extensions.sqlStatements")
                counts[scenario.name] = f"{sum(seen) / n:g}"
                continue
            proxy.counter.reset()
            for _ in range(n):
                await post(client, server, body)
            c = proxy.counter
            total = f"{c.statements / n:g}"
            counts[scenario.name] = (
                f"{total} ({c.executes / n:g} E + {c.queries / n:g} Q)" if c.queries else total
            )
    return counts


def variants(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """crmgraph's starts by name: the default, and the --compare-env one."""
    found = {CRMGRAPH: {}}
    if args.compare_env:
        found[VARIANT] = dict(pair.split("=", 1) for pair in args.compare_env)
    return found


async def counting_pass(
    args: argparse.Namespace,
    chosen: list[Scenario],
    database_url: str,
    api_key: str,
    node: Path | None,
    results: Results,
) -> None:
    starts = variants(args)
    if database_url.startswith("sqlite:"):
        for label, env in starts.items():
            env = {**env, "CRMGRAPH_EXPOSE_SQL_COUNT": "1"}
            server = await start_crmgraph(database_url, api_key, env, label)
            async with running(server):
                counts = await count_statements(server, chosen, None, args.count_requests)
            results.statements.update({(name, label): v for name, v in counts.items()})
        return
    config = postgres_config(database_url)
    for label in (*starts, *((POSTGRAPHILE,) if node else ())):
        proxy = CountingProxy(config["host"], config["port"])
        port = await proxy.start()
        proxied = database_url.replace(f"{config['host']}:{config['port']}", f"127.0.0.1:{port}")
        if proxied == database_url:
            raise SystemExit("give --database-url with an explicit host:port")
        try:
            if label == POSTGRAPHILE:
                assert node is not None
                server = await start_postgraphile(args.peer_cache, node, proxied)
            else:
                env = {
                    **starts[label],
                    "CRMGRAPH_EVENT_POLL_SECONDS": QUIET_POLL_SECONDS,
                    "CRMGRAPH_PRUNE_INTERVAL_SECONDS": QUIET_POLL_SECONDS,
                }
                server = await start_crmgraph(proxied, api_key, env, label)
            async with running(server):
                counts = await count_statements(server, chosen, proxy, args.count_requests)
        finally:
            await proxy.stop()
        results.statements.update({(name, label): v for name, v in counts.items()})


def report(
    results: Results, chosen: list[Scenario], servers: list[str], args: argparse.Namespace
) -> None:
    """One row per scenario: each server's req/s, the ratio of crmgraph's to
    every other server's (median of the rounds' ratios), latencies, SQL/req."""
    names = {CRMGRAPH: "crmgraph", POSTGRAPHILE: "PostGraphile"}
    # every crmgraph against the peer, and the default crmgraph against the variant
    pairs = [(s, POSTGRAPHILE) for s in servers if s != POSTGRAPHILE and POSTGRAPHILE in servers]
    if VARIANT in servers:
        pairs.append((CRMGRAPH, VARIANT))
    print(
        f"\n{args.rounds} rounds of {args.duration:g} s per scenario and server, "
        f"{args.connections} connections, wrk on loopback; medians over rounds\n"
    )
    header = ["scenario"]
    header += [f"{names.get(s, s)} req/s" for s in servers]
    header += [f"ratio {names.get(a, a)} / {names.get(b, b)}" for a, b in pairs]
    header += [f"{names.get(s, s)} p50 / p99 ms" for s in servers]
    header += [f"{names.get(s, s)} CPU ms/req" for s in servers]
    header += [f"{names.get(s, s)} SQL/req" for s in servers]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for scenario in chosen:
        loads = {s: results.loads[(scenario.name, s)] for s in servers}
        row = [scenario.name]
        row += [f"{statistics.median(x.rps for x in loads[s]):.0f}" for s in servers]
        for a, b in pairs:
            rounds = zip(loads[a], loads[b], strict=True)
            row.append(f"{statistics.median(x.rps / y.rps for x, y in rounds):.2f}")
        for s in servers:
            p50 = statistics.median(x.p50_ms for x in loads[s])
            p99 = statistics.median(x.p99_ms for x in loads[s])
            row.append(f"{p50:.1f} / {p99:.1f}")
        row += [f"{statistics.median(results.cpu_ms[(scenario.name, s)]):.2f}" for s in servers]
        row += [results.statements.get((scenario.name, s), "-") for s in servers]
        print("| " + " | ".join(row) + " |")
    print("\nscenarios:")
    for scenario in chosen:
        print(f"  {scenario.name}: {scenario.description}")
    print(
        "ratio: req/s / the other server's req/s in the same round, median over rounds; "
        "CPU ms/req: the server process's user+system time over requests served (not the "
        "database's); SQL/req: Execute (E) and simple Query (Q) messages on the wire"
        + (" (crmgraph's sqlStatements on SQLite)" if args.sqlite else "")
    )
    if args.compare_env:
        print(f"{VARIANT}: crmgraph started with {' '.join(args.compare_env)}")


async def timeline_customer(source_url: str) -> int:
    conn = await analytics.connect(source_url)
    try:
        found = await conn.fetchval(
            "SELECT i.customer FROM interaction i JOIN customer c ON c.id = i.customer "
            "WHERE c.deleted_at IS NULL GROUP BY i.customer HAVING COUNT(*) >= 30 "
            "ORDER BY i.customer LIMIT 1"
        )
    finally:
        await conn.close()
    if found is None:
        raise SystemExit("no customer with 30 interactions: reseed with --reseed")
    return int(found)


async def bench(args: argparse.Namespace) -> None:
    source_url = args.database_url
    settings = Settings.from_env().with_database(source_url)
    await load_data.prepare_postgres(source_url, settings, args.reseed)
    database_url = source_url
    if args.sqlite:
        await load_data.prepare_sqlite(args.sqlite_path, source_url, settings)
        database_url = f"sqlite:///{args.sqlite_path}"
    api_key = await load_data.admin_key(settings.with_database(database_url))
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    chosen = [
        s for s in scenarios(await timeline_customer(source_url)) if not only or s.name in only
    ]
    if not chosen:
        raise SystemExit(f"--only {args.only!r} matches no scenario")
    node = ensure_peer(args.peer_cache) if args.peer == POSTGRAPHILE else None
    wrk_binary()

    results = Results()
    servers: list[Server] = []
    try:
        servers.append(await start_crmgraph(database_url, api_key))
        if VARIANT in variants(args):
            env = variants(args)[VARIANT]
            servers.append(await start_crmgraph(database_url, api_key, env, VARIANT))
        if node is not None:
            servers.append(await start_postgraphile(args.peer_cache, node, database_url))
            print(f"peer: {servers[-1].version}")
        print("checking answers")
        await check_answers(servers, chosen)
        print("timing (progress on stderr)")
        await time_load(servers, chosen, args, results)
    finally:
        for server in servers:
            await stop(server)
    print("counting statements")
    await counting_pass(args, chosen, database_url, api_key, node, results)
    report(results, chosen, [s.name for s in servers], args)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.graphql_load", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--database-url", default=DEFAULT_URL, help=f"default {DEFAULT_URL}")
    parser.add_argument("--reseed", action="store_true", help="drop and seed the database again")
    parser.add_argument(
        "--sqlite",
        action="store_true",
        help="crmgraph alone on a SQLite copy of the PostgreSQL data set (no peer)",
    )
    parser.add_argument("--sqlite-path", type=Path, default=CACHE / "graphql_load.sqlite")
    parser.add_argument("--peer", choices=("none", POSTGRAPHILE), default=POSTGRAPHILE)
    parser.add_argument("--peer-cache", type=Path, default=CACHE / "postgraphile")
    parser.add_argument("--only", default="", help="scenarios, comma-separated")
    parser.add_argument("--duration", type=float, default=10, help="seconds per load (10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument(
        "--count-requests", type=int, default=20, help="requests per statement count (20)"
    )
    parser.add_argument(
        "--compare-env",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help=f"also time a second crmgraph ({VARIANT}) started with these environment "
        "variables, interleaved with the first (to measure a setting or a change)",
    )
    args = parser.parse_args(argv)
    if any("=" not in pair for pair in args.compare_env):
        parser.error("--compare-env takes NAME=VALUE pairs")
    if args.sqlite:
        args.peer = "none"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        print("--database-url must be PostgreSQL (the source of --sqlite too)", file=sys.stderr)
        return 2
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
