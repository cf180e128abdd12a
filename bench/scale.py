"""Benchmark: the same requests at 10,000 and at 1,000,000 customers on one
PostgreSQL (issue 28), so that what grows with the tables shows.

    .venv/bin/python -m bench.scale                      # 10,000 and 1,000,000
    .venv/bin/python -m bench.scale --sizes 10000,100000 --import-rows 20000
    .venv/bin/python -m bench.scale --import-rows 20000,1000000  # rows per size

1. Seeds, once per size (a marked database ``crmgraph_bench_scale_<size>`` is
   reused; ``--reseed`` starts over), bench.analytics' set-based data set at
   that many customers and ten interactions each, with bench.search_scale's
   names people have and bench.load_data's one to three contacts (two on
   average) and consent statements; the search indexes are dropped for the
   bulk load and built after it; the match keys and stored duplicate pairs
   are rebuilt as the migrations that introduced them do.
2. Serves the app in process (compiled reads on, as ``crmgraph serve``) and
   times, warm, ``--runs`` sequential requests of each shape (p50 and p90,
   ms): the load benchmark's read shapes (bench.load_queries and
   bench.load_reads), two searches (one matching a few, one matching nothing),
   the duplicates page, four writes, and every analytics report in process.
3. Imports ``--import-rows`` customer rows (bench.import_csv's file: 1 % bad
   rows, 5 % repeats) into a copy of the database made from it as a template,
   so duplicate screening meets every seeded customer; rows per second, and
   the import's peak RSS over the process's RSS before it (the peak is reset
   through ``/proc/self/clear_refs`` first), which a streaming import keeps
   flat however many rows the file has. ``--import-rows`` takes one count for
   every size or one per size.
4. Exports every customer with ``crmgraph export`` and reads the process's
   peak RSS from ``/proc``: the growth from the smallest size to each larger one
   is the memory an export's size costs.
5. Prints one table: each figure at every size and the ratio of the largest
   to the smallest. The server's RSS before and after the requests is printed
   too. The machine is shared: compare ratios, not milliseconds across days.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import analytics, import_csv, load_data, load_queries, load_reads, search_scale
from crmgraph.app import AppState, with_state
from crmgraph.commands.common import migrate_database
from crmgraph.db.match_keys import rebuild_duplicate_pairs, rebuild_match_keys
from crmgraph.settings import Settings
from crmgraph.testing import PG_SERVER, LiveServer, live_server, pg_admin, settings_for
from crmgraph.transfer.importer import ImportOptions

MARKER = "crmgraph bench scale"
SIZES = (10_000, 1_000_000)
INTERACTIONS_PER_CUSTOMER = 10
SEED = 28
ERRORS = "userErrors { field message code }"
DUPLICATES = (
    "{ duplicates(first: 20) { edges { node { score left { id name } right { id name } } } } }"
)
WRITES = {
    "write: logInteraction": (
        "mutation($i: LogInteractionInput!) { logInteraction(input: $i) "
        f"{{ interaction {{ id }} {ERRORS} }} }}",
        lambda gid, n: {
            "customerId": gid,
            "channel": "EMAIL",
            "direction": "INBOUND",
            "subject": f"Scale write {n}",
        },
    ),
    "write: addContact": (
        "mutation($i: AddContactInput!) { addContact(input: $i) "
        f"{{ contact {{ id }} {ERRORS} }} }}",
        lambda gid, n: {"customerId": gid, "name": f"Scale contact {n}"},
    ),
    "write: createCustomer": (
        "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) "
        f"{{ customer {{ id }} {ERRORS} }} }}",
        lambda gid, n: {
            "kind": "CLIENT",
            "name": f"Scalewrite Person{n}",
            "email": f"scale-{n}-{time.time_ns()}@write.example",
            "client": {"segment": "SMALL_BUSINESS"},
        },
    ),
}
UPDATE = (
    "mutation($i: UpdateCustomerInput!) { updateCustomer(input: $i) "
    f"{{ customer {{ version }} {ERRORS} }} }}"
)


@dataclass
class Results:
    """Figures by name, one per size measured (ms unless the name says)."""

    sizes: list[int] = field(default_factory=list)
    figures: dict[str, dict[int, float]] = field(default_factory=dict)

    def put(self, name: str, size: int, value: float) -> None:
        self.figures.setdefault(name, {})[size] = value
        print(f"  {size:>9,} {name:48} {value:10.1f}", file=sys.stderr)


def data_set(customers: int) -> analytics.DataSet:
    interactions = customers * INTERACTIONS_PER_CUSTOMER
    variant = "names,contacts,consents"
    return analytics.DataSet(customers, interactions, SEED, label=MARKER, variant=variant)


def database_url(size: int) -> str:
    return f"{PG_SERVER}/crmgraph_bench_scale_{size}"


MATCH_TABLES = ("customer_match_key", "duplicate_pair")


async def rebuild_pairs(state: AppState) -> None:
    """The match keys and stored pairs, in one transaction: a database holding
    any key holds them all (an interrupted seed starts this step over)."""
    started = time.perf_counter()
    async with state.db.transaction():
        await rebuild_match_keys(state.db)
        await rebuild_duplicate_pairs(state.db)
    print(f"  match keys and pairs rebuilt in {time.perf_counter() - started:.1f} s")


async def fetch_value(url: str, sql: str) -> Any:
    conn = await analytics.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def prepare(
    url: str, settings: Settings, size: int, reseed: bool, pairs: bool = True
) -> None:
    """Seed (or reuse) the size's database; the search indexes are built once
    after the bulk load rather than kept row by row during it. Each step after
    the seed runs when its result is missing, so an interrupted run goes on."""
    data = data_set(size)
    extra = [
        *search_scale.name_statements(data),
        *load_data.contact_statements(data),
        *load_data.consent_statements(data),
    ]
    first = search_scale.drop_statements()  # crmgraph_0060's
    await analytics.prepare(url, settings, data, reseed, extra, first)
    if await search_scale.indexes_missing(url):
        statements = [*search_scale.create_statements(), "VACUUM ANALYZE"]
        took = await search_scale.run_ddl(url, statements)
        print(f"  search indexes built in {took:.1f} s")
    has_keys = await fetch_value(url, "SELECT EXISTS (SELECT 1 FROM customer_match_key)")
    if pairs and not has_keys:
        await with_state(settings, rebuild_pairs)
    elif not has_keys:
        print("  no match keys: duplicate screening and the duplicates page see no pairs")
    # as autovacuum leaves them (this machine's is off): the keys were written after
    # the seed's VACUUM, and without a visibility map every index-only read of a
    # name block's keys fetched their heap rows (16,644 per import batch at 1M)
    took = await search_scale.run_ddl(url, [f"VACUUM ANALYZE {t}" for t in MATCH_TABLES])
    print(f"  match keys and pairs vacuumed in {took:.1f} s")


def timed(call: Callable[[], Any], runs: int) -> list[float]:
    call()  # warm
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def put_samples(results: Results, name: str, size: int, samples: list[float]) -> None:
    results.put(f"{name} p50", size, statistics.median(samples))
    results.put(f"{name} p90", size, statistics.quantiles(samples, n=10)[-1])


async def fixtures_of(url: str) -> load_reads.Fixtures:
    conn = await analytics.connect(url)
    try:
        return await load_reads.find_fixtures(conn)
    finally:
        await conn.close()


async def middle_name(state: AppState) -> str:
    """The name of the customer in the middle of the table (a few share it)."""
    rows = await state.db.fetch(
        "SELECT name FROM customer WHERE id >= (SELECT MAX(id) / 2 FROM customer) "
        "ORDER BY id LIMIT 1"
    )
    return str(rows[0]["name"])


def read_requests(server: LiveServer, url: str) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """Every read shape: the documents with their variables."""
    fixtures = asyncio.run(fixtures_of(url))
    shapes = [
        *load_queries.scenarios(fixtures.timeline_customer),
        *load_reads.read_scenarios(fixtures),
    ]
    found: dict[str, tuple[str, dict[str, Any] | None]] = {
        f"read: {s.name}": (s.documents[load_queries.CRMGRAPH], None)
        for s in shapes
        if s.name != "typename"
    }
    name = server.run(middle_name)
    found["search: a full name"] = (search_scale.SEARCH, {"f": {"search": name}})
    found["search: no match"] = (search_scale.SEARCH, {"f": {"search": "zqxjvw"}})
    found["read: duplicates page"] = (DUPLICATES, None)
    return found


def measure_reads(server: LiveServer, url: str, size: int, runs: int, results: Results) -> None:
    for name, (document, variables) in read_requests(server, url).items():
        samples = timed(lambda d=document, v=variables: server.gql(d, v), runs)
        put_samples(results, name, size, samples)


def client_ids(server: LiveServer, count: int) -> list[tuple[str, int]]:
    """Live clients (global id, version) to write to, newest first."""
    page = server.gql(
        f"{{ customers(first: {count}, filter: {{ kinds: [CLIENT] }}) "
        "{ nodes { id version } } }"
    )
    return [(n["id"], n["version"]) for n in page["customers"]["nodes"]]


def writer(server: LiveServer, document: str, variables: Callable, targets: list) -> Callable:
    """One write per call, each to the next target, checked for userErrors."""
    counter = iter(range(10**9))

    def write() -> None:
        n = next(counter)
        answer = server.gql(document, {"i": variables(targets[n % len(targets)][0], n)})
        payload = next(iter(answer.values()))
        assert not payload["userErrors"], answer

    return write


def measure_writes(server: LiveServer, size: int, runs: int, results: Results) -> None:
    targets = client_ids(server, runs + 1)
    for name, (document, variables) in WRITES.items():
        put_samples(results, name, size, timed(writer(server, document, variables, targets), runs))
    versions = dict(targets)
    order = iter(list(versions) * 2)

    def update() -> None:
        gid = next(order)
        body = {"id": gid, "expectedVersion": versions[gid], "client": {"industry": "Scale"}}
        answer = server.gql(UPDATE, {"i": body})["updateCustomer"]
        assert not answer["userErrors"], answer
        versions[gid] = answer["customer"]["version"]

    put_samples(results, "write: updateCustomer", size, timed(update, min(runs, len(versions))))


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_analytics(server: LiveServer, size: int, runs: int, results: Results) -> None:
    async def work(state: AppState) -> list[analytics.Timing]:
        ids = [row["id"] for row in await state.db.fetch("SELECT id FROM customer LIMIT 20")]
        return (await analytics.measure(state, analytics.cases(state, ids), runs))[1]

    for timing in server.run(work):
        results.put(f"analytics: {timing.name}", size, timing.median)


def measure_server(settings: Settings, url: str, size: int, runs: int, results: Results) -> None:
    with live_server(settings) as server:
        results.put("server RSS at start (MB)", size, rss_mb())
        measure_reads(server, url, size, runs, results)
        measure_writes(server, size, runs, results)
        measure_analytics(server, size, max(3, runs // 4), results)
        results.put("server RSS after the requests (MB)", size, rss_mb())


@dataclass(frozen=True)
class ImportCopy:
    """A copy of a size's database (a template clone, brought up to the
    code's migrations: bench.import_cpu copies a database seeded before the
    newest ones without running this module's ``prepare``) and
    bench.import_csv's customers file for it, with the seeds file its
    repeats of known customers need imported first."""

    url: str
    data: Path
    seeds: Path
    truth: import_csv.Truth
    options: ImportOptions = field(default_factory=lambda: ImportOptions(on_duplicate="skip"))

    async def import_seeds(self, state: AppState) -> None:
        await import_csv.import_file(state, self.seeds, self.options)


@contextlib.contextmanager
def import_copy(size: int, rows: int) -> Iterator[ImportCopy]:
    """An :class:`ImportCopy` of ``rows`` customer rows, dropped afterwards."""
    name = f"crmgraph_bench_scale_{size}_import"
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "crmgraph_bench_scale_{size}" STRATEGY FILE_COPY')
    url = f"{PG_SERVER}/{name}"
    try:
        asyncio.run(migrate_database(settings_for(url)))
        with tempfile.TemporaryDirectory() as folder:
            data, seeds = Path(folder) / "customers.csv", Path(folder) / "seeds.csv"
            truth = import_csv.generate(data, seeds, rows, SEED, "customers")
            yield ImportCopy(url, data, seeds, truth)
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset_peak_rss() -> float:
    """Start ``VmHWM`` over from the current RSS; that RSS (MB)."""
    Path("/proc/self/clear_refs").write_text("5")
    return rss_mb()


def peak_rss_since_reset() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def check_import(summary: Any, truth: import_csv.Truth) -> None:
    """Every bad row rejected and every other row created or matched to a
    party already known: a repeat within the file, or (a large file into a
    large database) a seeded customer the generated row shares an e-mail or
    a phone with, which screening rightly skips; those are counted, not lost."""
    assert summary.rejected == truth.bad, (summary.lines(), truth.bad)
    landed = summary.created + summary.skipped_duplicates
    assert landed == truth.created + truth.repeats, (summary.lines(), truth)
    if summary.created != truth.created:
        extra = truth.created - summary.created
        print(f"  {extra:,} generated rows matched a seeded customer", file=sys.stderr)


def measure_import(settings: Settings, size: int, rows: int, results: Results) -> None:
    """bench.import_csv's customers file into a copy of the size's database."""
    with import_copy(size, rows) as copy:

        async def work(state: AppState) -> tuple[float, float]:
            await copy.import_seeds(state)
            before = reset_peak_rss()
            started = time.perf_counter()
            summary = await import_csv.import_file(state, copy.data, copy.options)
            took = time.perf_counter() - started
            check_import(summary, copy.truth)
            return took, peak_rss_since_reset() - before

        took, grew = asyncio.run(with_state(settings.with_database(copy.url), work))
    results.put("import: customer rows in the file", size, rows)
    results.put("import: customer rows (rows/s)", size, rows / took)
    results.put("import: peak RSS over the RSS before it (MB)", size, grew)


def peak_rss_mb(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``command``; its peak RSS (``VmHWM``, MB) and its seconds."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    peak = 0.0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.05)  # sampling the child's memory, not waiting for an event
    if process.wait() != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return peak, time.perf_counter() - started


def measure_export(url: str, size: int, results: Results) -> None:
    crmgraph = str(Path(sys.executable).with_name("crmgraph"))
    env = {**os.environ, "CRMGRAPH_DATABASE_URL": url, "CRMGRAPH_MIGRATE_ON_START": "0"}
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "customers.csv"
        command = [crmgraph, "export", "customers", "--output", str(target)]
        peak, took = peak_rss_mb(command, env)
        results.put("export every customer: peak RSS (MB)", size, peak)
        results.put("export every customer (rows/s)", size, size / took)


def table(results: Results) -> str:
    sizes = sorted(results.sizes)
    head = " | ".join(f"{s:,}" for s in sizes)
    lines = [
        f"| figure | {head} | x{sizes[-1] // sizes[0]:,} size |",
        "|---|" + "---:|" * len(sizes) + "---:|",
    ]
    for name, by_size in results.figures.items():
        values = [by_size.get(s) for s in sizes]
        cells = " | ".join("" if v is None else f"{v:,.1f}" for v in values)
        first, last = values[0], values[-1]
        ratio = f"{last / first:.2f}x" if first and last else ""
        lines.append(f"| {name} | {cells} | {ratio} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="customers, comma-separated"
    )
    parser.add_argument("--runs", type=int, default=30, help="timed requests per shape")
    parser.add_argument(
        "--import-rows",
        default="1000000",
        help="rows to import: one count, or one per size (comma-separated); 0: no import",
    )
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument(
        "--import-only",
        action="store_true",
        help="time the import alone (no reads, writes, export)",
    )
    parser.add_argument(
        "--no-pairs",
        action="store_true",
        help="leave a database without match keys as it is (rebuilding them is slow at 1M)",
    )
    parser.add_argument("--reseed", action="store_true", help="drop and seed the databases again")
    parser.add_argument(
        "--seed-only", action="store_true", help="prepare the databases, time nothing"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = Results(sizes=[int(s) for s in args.sizes.split(",")])
    imports = [int(n) for n in args.import_rows.split(",")]
    if len(imports) not in (1, len(results.sizes)):
        raise SystemExit("--import-rows: one count, or one per size")
    for n, size in enumerate(results.sizes):
        url = database_url(size)
        settings = settings_for(url, load_entry_points=True)
        print(f"\n{size:,} customers: {url}", file=sys.stderr)
        asyncio.run(prepare(url, settings, size, args.reseed, not args.no_pairs))
        if args.seed_only:
            continue
        if not args.import_only:
            measure_server(settings, url, size, args.runs, results)
        if not (args.no_export or args.import_only):
            measure_export(url, size, results)
        rows = imports[n % len(imports)]
        if rows:
            measure_import(settings, size, rows, results)
    if not args.seed_only:
        print(table(results))
        print(f"\nPostgreSQL: {asyncio.run(server_settings(database_url(results.sizes[0])))}")
    return 0


# the server's settings that moved these figures most (docs/deployment.md)
SERVER_SETTINGS = ("shared_buffers", "max_wal_size", "checkpoint_timeout", "autovacuum")


async def server_settings(url: str) -> str:
    """The settings a table is to be read with, as ``name = value`` pairs."""
    return ", ".join(
        [f"{name} = {await fetch_value(url, f'SHOW {name}')}" for name in SERVER_SETTINGS]
    )


if __name__ == "__main__":
    raise SystemExit(main())
