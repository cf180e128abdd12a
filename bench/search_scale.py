"""Benchmark: ``search`` and ``contactSearch`` on 100,000 customers (or
``--customers``), with the search indexes of migration crmgraph_0060 (runs
of six characters from every other one) and without them, on PostgreSQL.

    .venv/bin/python -m bench.search_scale \\
        --database-url postgresql://postgres@127.0.0.1:5432/crmgraph_bench_search

1. Seeds (once; a marked database is reused, ``--reseed`` starts over) the
   data set of bench.analytics set-based at 100,000 customers and 100,000
   interactions, with names people have (a given name and two surnames drawn
   from short lists, accents included: about 0 to 3 customers share a full
   name at 100,000, about 15 at 1,000,000) and bench.load_data's one to three
   contacts per customer, the search indexes dropped during the bulk load and
   built after it, then ``VACUUM ANALYZE``.
2. Serves the app in process (crmgraph.testing.live_server, the resolver and
   compiled paths as configured) and times GraphQL requests ``customers(first:
   20, filter: {search: ...})``: a needle matching nothing, a customer's full
   name (a few matches), its given name (one customer in 30), a part of one
   e-mail, and a ``contactSearch`` of a contact's name; warm, ``--runs`` each,
   p50 and p90 in ms.
3. Unless ``--with-indexes-only``: drops the two search indexes, times the
   same requests (the scan the indexes replace), and creates them again.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

from bench import analytics, load_data
from crmgraph.app import AppState
from crmgraph.db.migrations import crmgraph_0060_search_lexemes as search_lexemes
from crmgraph.settings import Settings
from crmgraph.testing import LiveServer, live_server, settings_for

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/crmgraph_bench_search"
MARKER = "crmgraph bench search_scale"
CUSTOMERS = 100_000
INTERACTIONS = 100_000
SEED = 28
GIVEN = (  # noqa: SIM905 (a list of words, read as words)
    "Ana María José Lucía Carmen Pablo Javier Elena Sergio Marta Álvaro Nuria Iñigo Raúl Sofía "
    "Daniel Laura Diego Irene Hugo Paula Adrián Andrea Jorge Sara Rubén Noelia Óscar Inés Tomás"
).split()
SURNAMES = (  # noqa: SIM905
    "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín Jiménez "
    "Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez "
    "Vázquez Ramos Gil Ramírez Serrano Blanco Molina Morales Suárez Ortega Delgado Castro Ortiz "
    "Rubio Marín Sanz Núñez Iglesias Medina Garrido Cortés Castillo Santos Lozano Guerrero"
).split()
SEARCH = """query($f: CustomerFilter) {
  customers(first: 20, filter: $f) { nodes { id name email } }
}"""
SAMPLE_ID = 4242  # whose name, e-mail and contact the "a few" needles are


def array(words: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join(analytics.quote(w) for w in words) + "]"


def name_statements(data: analytics.DataSet) -> list[str]:
    """A given name and two surnames per customer, instead of bench.analytics'
    numbered ones (runs before the contacts, which are named after them)."""
    salt = data.seed * 1000 + 80

    def pick(words: Sequence[str], n: int) -> str:
        return f"({array(words)})[1 + floor(pg_temp.u(id, {salt + n}) * {len(words)})::int]"

    return [
        f"UPDATE customer SET name = {pick(GIVEN, 1)} || ' ' || {pick(SURNAMES, 2)} "
        f"|| ' ' || {pick(SURNAMES, 3)}"
    ]


def data_set(customers: int) -> analytics.DataSet:
    return analytics.DataSet(customers, INTERACTIONS, SEED, label=MARKER, variant="names,contacts")


def drop_statements() -> list[str]:
    """The search indexes of crmgraph_0060, dropped."""
    return search_lexemes.drop_statements()


def create_statements() -> list[str]:
    # a GIN index of 1,000,000 rows' runs builds faster with room to sort
    return ["SET maintenance_work_mem = '256MB'", *search_lexemes.postgres_statements()]


def index_names() -> list[str]:
    """Every index create_statements builds."""
    return [index.name for index in search_lexemes.INDEXES]


async def indexes_missing(url: str) -> bool:
    """Whether some index create_statements builds is missing (bench.scale asks too)."""
    conn = await analytics.connect(url)
    try:
        built = await conn.fetchval(
            "SELECT COUNT(*) FROM pg_indexes WHERE indexname = ANY($1::text[])", index_names()
        )
    finally:
        await conn.close()
    return bool(built < len(index_names()))


async def prepare(url: str, settings: Settings, customers: int, reseed: bool) -> None:
    """Seed (or reuse) the database; the search indexes are built once after
    the bulk load rather than kept row by row during it (at 1,000,000
    customers the seed took minutes longer with them)."""
    data = data_set(customers)
    extra = [*name_statements(data), *load_data.contact_statements(data)]
    await analytics.prepare(url, settings, data, reseed, extra, drop_statements())
    if await indexes_missing(url):
        took = await run_ddl(url, create_statements())
        await run_ddl(url, ["VACUUM ANALYZE customer", "VACUUM ANALYZE contact"])
        print(f"  search indexes built and vacuumed in {took:.1f} s")


async def needles(state: AppState) -> dict[str, dict[str, str]]:
    """The searches timed, named: filters of a customers list."""
    (row,) = await state.db.fetch(
        "SELECT c.name, c.email, (SELECT MIN(ct.name) FROM contact ct WHERE ct.customer = c.id) "
        "AS contact FROM customer c WHERE c.id = {}",
        SAMPLE_ID,
    )
    email = row["email"] or f"customer-{SAMPLE_ID}@"
    return {
        "no match": {"search": "zqxjvw"},
        "full name (a few)": {"search": row["name"]},
        "given name (3%)": {"search": row["name"].split()[0]},
        "part of an e-mail": {"search": email.split("@")[0] + "@"},
        "contactSearch": {"contactSearch": row["contact"] or "zqxjvw"},
    }


def time_requests(server: LiveServer, filters: dict[str, str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs + 1):  # the first warms up
        started = time.perf_counter()
        server.gql(SEARCH, {"f": filters})
        samples.append((time.perf_counter() - started) * 1000)
    return samples[1:]


def report(label: str, name: str, found: int, samples: list[float]) -> None:
    p50 = statistics.median(samples)
    p90 = statistics.quantiles(samples, n=10)[-1]
    print(f"  {label:14} {name:20} {found:3} found  p50 {p50:8.2f} ms   p90 {p90:8.2f} ms")


async def run_ddl(url: str, statements: Sequence[str]) -> float:
    conn = await analytics.connect(url)
    started = time.perf_counter()
    try:
        for statement in statements:
            await conn.execute(statement)
        await conn.execute("ANALYZE customer")
        await conn.execute("ANALYZE contact")
    finally:
        await conn.close()
    return time.perf_counter() - started


def measure(url: str, settings: Settings, runs: int, without: bool) -> None:
    """Each search timed with the indexes, then (``without``) with none."""
    with live_server(settings) as server:
        searches = server.run(needles)
        for label in ("with indexes", "without")[: 2 if without else 1]:
            if label == "without":
                asyncio.run(run_ddl(url, drop_statements()))
            for name, filters in searches.items():
                found = len(server.gql(SEARCH, {"f": filters})["customers"]["nodes"])
                report(label, name, found, time_requests(server, filters, runs))
    if without:
        took = asyncio.run(run_ddl(url, create_statements()))
        print(f"  indexes created again in {took:.1f} s")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.search_scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--database-url", default=DEFAULT_URL, help=f"default {DEFAULT_URL}")
    parser.add_argument("--customers", type=int, default=CUSTOMERS)
    parser.add_argument("--reseed", action="store_true", help="drop and seed the database again")
    parser.add_argument("--runs", type=int, default=40, help="timed requests per search")
    parser.add_argument(
        "--with-indexes-only",
        action="store_true",
        help="skip the timing without indexes (dropping and building them takes minutes at 1M)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    url = args.database_url
    if analytics.not_postgres(url):
        return 2
    settings = settings_for(url, load_entry_points=True)
    asyncio.run(prepare(url, settings, args.customers, args.reseed))
    measure(url, settings, args.runs, not args.with_indexes_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
