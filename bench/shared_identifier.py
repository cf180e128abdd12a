"""Benchmark: many customers sharing one e-mail (``info@company.com``), the
attack crowded identifier blocks answer (crmgraph.db.match_crowding).

    .venv/bin/python -m bench.shared_identifier --creates 600
    .venv/bin/python -m bench.shared_identifier --creates 600 --engine sqlite

``--creates`` ``createCustomer`` mutations through a real server (in process,
over HTTP) into a fresh database, each customer with a name of its own, in
two series run in the same process, alternating one create of each: every
one with the same e-mail, and, as the baseline, every one with an e-mail of
its own. Prints the median milliseconds per create of each series in windows
along the way (the e-mail block crosses the limit, 100 holders, in the
third), the shared series' median as a ratio to the baseline's in the same
window (the machine is noisy: read the ratio), and the ``duplicate_pair``
rows each series left. Without the limit the shared series' ratio grew with
its holders and it stored n(n-1)/2 pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.scratch import scratch_database
from crmgraph.app import AppState, with_state
from crmgraph.testing import LiveServer, live_server, migrate_for, settings_for

CREATE = """mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
  customer { id } userErrors { code } } }"""
SHARED = "info@company.com"
SERIES = ("shared", "own")


def name(n: int, series: str) -> str:
    """A name no other customer of the run has (no name block pairs them)."""
    letters = "".join(chr(ord("a") + n // 26**k % 26) for k in range(3))
    return f"{series.capitalize()}{letters} Qa{letters}"


def create(server: LiveServer, n: int, series: str) -> float:
    """One create of ``series``; its milliseconds."""
    email = SHARED if series == "shared" else f"own{n}@company{n}.example"
    started = time.perf_counter()
    data = server.gql(
        CREATE, {"input": {"kind": "CLIENT", "name": name(n, series), "email": email}}
    )
    elapsed = (time.perf_counter() - started) * 1000
    assert data["createCustomer"]["userErrors"] == [], data
    return elapsed


async def pairs_of(state: AppState, series: str) -> int:
    """The stored pairs with a customer of ``series`` on either side."""
    rows = await state.db.fetch(
        "SELECT COUNT(*) AS n FROM duplicate_pair p JOIN customer a ON a.id = p.customer_a "
        "JOIN customer b ON b.id = p.customer_b WHERE a.name LIKE {} OR b.name LIKE {}",
        f"{series.capitalize()}%",
        f"{series.capitalize()}%",
    )
    return int(rows[0]["n"])


def windows(creates: int) -> list[tuple[int, int]]:
    """The windows of creates reported: before, at and well past the limit."""
    edges = [0, 50, 90, 110, 200, *range(300, creates, 150), creates]
    kept = sorted({edge for edge in edges if edge <= creates})
    return list(itertools.pairwise(kept))


def run(engine: str, creates: int) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        scratch_database(engine, Path(folder), "shared_identifier_bench") as url,
    ):
        settings = settings_for(url)
        asyncio.run(migrate_for(settings))
        times: dict[str, list[float]] = {series: [] for series in SERIES}
        with live_server(settings) as server:
            for n in range(creates):
                for series in SERIES:
                    times[series].append(create(server, n, series))
        pairs = {
            series: asyncio.run(with_state(settings, lambda s, x=series: pairs_of(s, x)))
            for series in SERIES
        }
    print(f"{engine}: {creates} creates per series, median ms per create")
    print(f"{'creates':>10} {'shared':>8} {'own':>8} {'ratio':>6}")
    for low, high in windows(creates):
        shared, own = (statistics.median(times[s][low:high]) for s in SERIES)
        print(f"{low + 1:>4}-{high:<5} {shared:8.1f} {own:8.1f} {shared / own:6.2f}")
    print(f"duplicate_pair rows: shared {pairs['shared']:,}, own {pairs['own']:,}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shared_identifier", description=__doc__)
    parser.add_argument("--creates", type=int, default=600, help="creates per series")
    parser.add_argument("--engine", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args(argv)
    run(args.engine, args.creates)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
