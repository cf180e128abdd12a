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
   Each load's database time comes from pg_stat_statements (bench.pg_stats),
   reset before it.
4. Counts SQL statements and round trips per request without the clock: each
   server is started again behind a proxy in front of PostgreSQL that counts
   the Query, Execute and Sync messages of the wire protocol
   (bench.pg_wire_count), and sends ``--count-requests`` requests one at a
   time after a warm-up.
5. The write scenarios (bench.load_writes) do the same on a copy of the
   database made for the run and dropped at the end: each request a write of
   its own, made by wrk's Lua, every answer checked for errors and userErrors.

Read scenarios: bench.load_queries (nested, mixed, timeline, search, typename)
and bench.load_reads (list, related, detail, dashboard).

``--sqlite`` runs crmgraph alone on a SQLite copy of the same rows (statements
counted by crmgraph's own counter, ``CRMGRAPH_EXPOSE_SQL_COUNT``, in a separate
start).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import analytics, load_data
from bench.load_queries import CRMGRAPH, POSTGRAPHILE, Scenario, common_shape, scenarios
from bench.load_reads import Fixtures, find_fixtures, read_scenarios
from bench.load_report import VARIANT, Results, report
from bench.load_servers import (
    Server,
    ensure_peer,
    running,
    start_crmgraph,
    start_postgraphile,
    stop,
)
from bench.load_writes import (
    WriteScenario,
    drain_events,
    write_database,
    write_scenarios,
    write_script,
)
from bench.load_wrk import Load, run_script, run_wrk, wrk_binary
from bench.pg_stats import DbTime, open_db_time
from bench.pg_wire_count import CountingProxy, WireCounter
from crmgraph.db.engine import postgres_config
from crmgraph.settings import Settings

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/crmgraph_bench_load"
CACHE = Path(__file__).resolve().parent / ".cache"
WARM_UP_SECONDS = 2
COUNT_WARM_UP = 3
# the counting start of crmgraph: background pollers (outbox, live, webhooks)
# wait this long, so that every statement counted belongs to a request
QUIET_POLL_SECONDS = "86400"
# answers per wrk thread that must all be right before a write scenario is timed
WRITE_CHECKS = 3
COUNT_SECONDS = 3  # a counting load's time limit (it stops after its requests)

# one load: a scenario on a server for some seconds, with some connections
LoadFn = Callable[[Any, Server, float, int], Awaitable[Load]]
# one counting run on a server behind the proxy (None: SQLite), measuring DB time
# if it can: scenario -> (SQL/req, round trips/req, DB ms/req)
Counts = dict[str, tuple[str, str, str]]
CountFn = Callable[[Server, CountingProxy | None, DbTime | None], Awaitable[Counts]]


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
            if not shapes[0] or (isinstance(shapes[0], dict) and not shapes[0].get("customers", 1)):
                raise SystemExit(f"{scenario.name}: empty answer; is the database seeded?")
            print(f"  {scenario.name}: same data on {', '.join(s.name for s in servers)}")


def read_load(
    scenario: Scenario, server: Server, seconds: float, connections: int
) -> Awaitable[Load]:
    return run_wrk(server.url, scenario.body(server.kind), server.headers, seconds, connections)


def write_load(conn: asyncpg.Connection, limit: int = 0) -> LoadFn:
    """Loads of write scenarios: each makes its wrk script from the database
    as it is now (bench.load_writes), ``limit`` answers per thread (0: none)."""

    async def load(
        scenario: WriteScenario, server: Server, seconds: float, connections: int
    ) -> Load:
        script = await write_script(conn, scenario, server.kind, server.headers, connections, limit)
        return await run_script(server.url, script, seconds, connections)

    return load


async def check_writes(
    servers: list[Server], chosen: list[WriteScenario], conn: asyncpg.Connection
) -> None:
    """A few requests of every write scenario on every server, two at a time:
    all must be 2xx without GraphQL errors or userErrors."""
    check = write_load(conn, WRITE_CHECKS)
    for scenario in chosen:
        for server in servers:
            load = await check(scenario, server, 1, 2)
            if load.bad_status or load.graphql_errors or load.socket_errors or not load.requests:
                raise SystemExit(
                    f"{scenario.name} on {server.name}: {load.requests} answers, "
                    f"{load.bad_status} non-2xx, {load.graphql_errors} with errors: "
                    f"{load.bad_sample[:2000]}"
                )
        print(f"  {scenario.name}: {load.requests} right answers on each server")


async def time_load(
    servers: list[Server],
    chosen: Sequence[Scenario | WriteScenario],
    args: argparse.Namespace,
    results: Results,
    load_fn: LoadFn,
    db_time: DbTime | None,
    settle: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Warm up, then time every scenario on every server, round after round;
    ``settle`` waits after each load for the work it left behind (the write
    scenarios' event backlog), which counts in that load's CPU and DB time."""
    for scenario in chosen:  # warm-up: plans, caches, JIT, pools
        for server in servers:
            await load_fn(scenario, server, WARM_UP_SECONDS, args.connections)
            if settle is not None:
                await settle()
    for number in range(1, args.rounds + 1):
        for scenario in chosen:
            # every other round in reverse order: neither server always goes first
            for server in servers if number % 2 else servers[::-1]:
                if db_time is not None:
                    await db_time.reset()
                before = cpu_seconds(server.process.pid)
                load = await load_fn(scenario, server, args.duration, args.connections)
                settled = "" if settle is None else await settle()
                cpu = cpu_seconds(server.process.pid) - before
                db_ms = None if db_time is None else await db_time.total_ms()
                results.add(scenario.name, server.name, load, cpu, db_ms)
                problems = ""
                if load.bad_status or load.socket_errors or load.graphql_errors:
                    problems = (
                        f"  ({load.bad_status} non-2xx, {load.socket_errors} socket errors, "
                        f"{load.graphql_errors} with errors) {load.bad_sample[:300]}"
                    )
                if load.unanswered > args.connections:
                    problems += f"  ({load.unanswered} bodies made but not answered)"
                db = "" if db_ms is None else f" DB {db_ms / max(1, load.requests):6.2f} ms/req"
                print(
                    f"  round {number} {scenario.name:18} {server.name:12} {load.rps:8.1f} req/s "
                    f"p50 {load.p50_ms:7.2f} ms p99 {load.p99_ms:7.2f} ms{db}{settled}{problems}",
                    file=sys.stderr,
                )


async def start_count(proxy: CountingProxy, db_time: DbTime | None) -> None:
    proxy.counter.reset()
    if db_time is not None:
        await db_time.reset()


async def per_request(counter: WireCounter, n: int, db_time: DbTime | None) -> tuple[str, str, str]:
    """SQL statements, round trips and DB time per request since start_count."""
    total = f"{counter.statements / n:.3g}"
    if counter.queries:
        total += f" ({counter.executes / n:.3g} E + {counter.queries / n:.3g} Q)"
    db_ms = None if db_time is None else await db_time.total_ms()
    db = "-" if db_ms is None else f"{db_ms / n:.2f}"
    return total, f"{counter.round_trips / n:.3g}", db


async def count_reads(
    server: Server,
    chosen: list[Scenario],
    proxy: CountingProxy | None,
    db_time: DbTime | None,
    n: int,
) -> Counts:
    """Statements and round trips per request, over ``n`` requests sent one at
    a time: from the proxy's wire counts, or (SQLite) from crmgraph's
    ``sqlStatements`` (no round trips)."""
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
                counts[scenario.name] = (f"{sum(seen) / n:g}", "-", "-")
                continue
            await start_count(proxy, db_time)
            for _ in range(n):
                await post(client, server, body)
            counts[scenario.name] = await per_request(proxy.counter, n, db_time)
    return counts


async def count_writes(
    server: Server,
    chosen: list[WriteScenario],
    proxy: CountingProxy,
    db_time: DbTime | None,
    n: int,
    conn: asyncpg.Connection,
) -> Counts:
    """The same for the write scenarios, sent one at a time by wrk (one
    connection, stopping after ``n`` answers), each request its own write."""
    counts = {}
    for scenario in chosen:
        await write_load(conn, COUNT_WARM_UP)(scenario, server, 1, 1)
        seconds = COUNT_SECONDS
        while True:
            await start_count(proxy, db_time)
            load = await write_load(conn, n)(scenario, server, seconds, 1)
            if load.requests >= n or seconds > 60 * COUNT_SECONDS:
                break
            seconds *= 4  # too slow for the time limit: again, with more time
        if load.bad_status or load.graphql_errors:
            raise SystemExit(f"{scenario.name} on {server.name}: {load.bad_sample[:2000]}")
        counts[scenario.name] = await per_request(proxy.counter, max(1, load.requests), db_time)
    return counts


def variants(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """crmgraph's starts by name: the default, and the --compare-env one."""
    found = {CRMGRAPH: {}}
    if args.compare_env:
        found[VARIANT] = dict(pair.split("=", 1) for pair in args.compare_env)
    return found


async def counting_pass(
    args: argparse.Namespace,
    database_url: str,
    api_key: str,
    node: Path | None,
    results: Results,
    count: CountFn,
) -> None:
    starts = variants(args)
    found: dict[str, Counts] = {}
    if database_url.startswith("sqlite:"):
        for label, env in starts.items():
            env = {**env, "CRMGRAPH_EXPOSE_SQL_COUNT": "1"}
            server = await start_crmgraph(database_url, api_key, env, label)
            async with running(server):
                found[label] = await count(server, None, None)
    else:
        config = postgres_config(database_url)
        db_time = await open_db_time(database_url)
        for label in (*starts, *((POSTGRAPHILE,) if node else ())):
            proxy = CountingProxy(config["host"], config["port"])
            port = await proxy.start()
            host = f"{config['host']}:{config['port']}"
            proxied = database_url.replace(host, f"127.0.0.1:{port}")
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
                    found[label] = await count(server, proxy, db_time)
            finally:
                await proxy.stop()
        if db_time is not None:
            await db_time.close()
    for label, counts in found.items():
        for name, (statements, round_trips, db_ms) in counts.items():
            results.statements[(name, label)] = statements
            results.round_trips[(name, label)] = round_trips
            results.db_ms_serial[(name, label)] = db_ms


async def start_servers(
    args: argparse.Namespace, database_url: str, api_key: str, node: Path | None
) -> list[Server]:
    servers: list[Server] = []
    try:
        servers.append(await start_crmgraph(database_url, api_key))
        if VARIANT in variants(args):
            env = variants(args)[VARIANT]
            servers.append(await start_crmgraph(database_url, api_key, env, VARIANT))
        if node is not None:
            servers.append(await start_postgraphile(args.peer_cache, node, database_url))
            print(f"peer: {servers[-1].version}")
    except BaseException:
        for server in servers:
            await stop(server)
        raise
    return servers


async def read_phase(
    args: argparse.Namespace,
    chosen: list[Scenario],
    database_url: str,
    api_key: str,
    node: Path | None,
    results: Results,
) -> list[str]:
    servers = await start_servers(args, database_url, api_key, node)
    db_time = None if args.sqlite else await open_db_time(database_url)
    try:
        print("checking answers")
        await check_answers(servers, chosen)
        print("timing the reads (progress on stderr)")
        await time_load(servers, chosen, args, results, read_load, db_time)
    finally:
        for server in servers:
            await stop(server)
        if db_time is not None:
            await db_time.close()
    print("counting statements")

    async def count(server: Server, proxy: CountingProxy | None, db: DbTime | None) -> Counts:
        return await count_reads(server, chosen, proxy, db, args.count_requests)

    await counting_pass(args, database_url, api_key, node, results, count)
    return [s.name for s in servers]


async def write_phase(
    args: argparse.Namespace,
    chosen: list[WriteScenario],
    source_url: str,
    node: Path | None,
    results: Results,
) -> list[str]:
    results.checked.update(s.name for s in chosen)
    async with write_database(source_url) as url:
        settings = Settings.from_env().with_database(url)
        api_key = await load_data.admin_key(settings)
        conn = await analytics.connect(url)
        try:
            servers = await start_servers(args, url, api_key, node)
            db_time = await open_db_time(url)
            try:
                print("checking writes")
                await check_writes(servers, chosen, conn)
                await drain_events(conn)
                print("timing the writes (progress on stderr)")

                async def settle() -> str:
                    return await drain_events(conn)

                await time_load(servers, chosen, args, results, write_load(conn), db_time, settle)
            finally:
                for server in servers:
                    await stop(server)
                if db_time is not None:
                    await db_time.close()
            print("counting the writes' statements")

            async def count(
                server: Server, proxy: CountingProxy | None, db: DbTime | None
            ) -> Counts:
                assert proxy is not None
                return await count_writes(server, chosen, proxy, db, args.count_requests, conn)

            await counting_pass(args, url, api_key, node, results, count)
        finally:
            await conn.close()
    return [s.name for s in servers]


def choose(
    args: argparse.Namespace, fixtures: Fixtures
) -> tuple[list[Scenario], list[WriteScenario]]:
    reads = [*scenarios(fixtures.timeline_customer), *read_scenarios(fixtures)]
    writes = write_scenarios()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - {s.name for s in reads} - {s.name for s in writes}
    if unknown:
        raise SystemExit(f"--only: no scenario {', '.join(sorted(unknown))}")
    if args.reads or args.writes:
        reads, writes = (reads if args.reads else []), (writes if args.writes else [])
    reads = [s for s in reads if not only or s.name in only]
    writes = [s for s in writes if not only or s.name in only]
    if args.sqlite and writes:
        print("--sqlite: the write scenarios run on PostgreSQL only; skipping them")
        writes = []
    if not reads and not writes:
        raise SystemExit("no scenario chosen")
    return reads, writes


async def bench(args: argparse.Namespace) -> None:
    source_url = args.database_url
    settings = Settings.from_env().with_database(source_url)
    await load_data.prepare_postgres(source_url, settings, args.reseed)
    conn = await analytics.connect(source_url)
    try:
        fixtures = await find_fixtures(conn)
    finally:
        await conn.close()
    reads, writes = choose(args, fixtures)
    database_url = source_url
    if args.sqlite:
        await load_data.prepare_sqlite(args.sqlite_path, source_url, settings)
        database_url = f"sqlite:///{args.sqlite_path}"
    node = ensure_peer(args.peer_cache) if args.peer == POSTGRAPHILE else None
    wrk_binary()

    results = Results()
    servers: list[str] = []
    if reads:
        api_key = await load_data.admin_key(settings.with_database(database_url))
        servers = await read_phase(args, reads, database_url, api_key, node, results)
    if writes:
        servers = await write_phase(args, writes, source_url, node, results)
    report(results, [*reads, *writes], servers, args)


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
    parser.add_argument("--reads", action="store_true", help="the read scenarios only")
    parser.add_argument("--writes", action="store_true", help="the write scenarios only")
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
