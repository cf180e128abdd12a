"""The load benchmark's list page (25 clients newest first with
``totalCount``) on bench.scale's databases, its total read from
``customer_tally`` (crmgraph.db.customer_counts), beside the same page whose
filter adds ``createdBefore`` a date after every customer: the same answer,
counted with ``COUNT(*)`` as every list was before the tally. And the two
counts as SQL (EXPLAIN ANALYZE's execution time). The app's migrations are
applied first, the tally's among them (its backfill counts every customer).

    .venv/bin/python -m bench.tally_list --sizes 10000,1000000 --runs 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence

from bench import analytics, load_reads, scale
from bench.load_queries import CRMGRAPH
from crmgraph.db import customer_counts, queries
from crmgraph.testing import live_server, migrate_for, settings_for

COUNTED = ', createdBefore: "2999-01-01T00:00:00Z"'


async def sql_times(url: str, runs: int) -> tuple[float, float]:
    """Median execution times (ms) of the clients' count: tally, COUNT(*)."""
    q = queries.CustomerQuery(kinds=(load_reads.LIST_KIND,), any_role=True)
    tally = queries.tally_where(q)
    assert tally is not None
    where = queries.customer_where(q)
    statements = [
        (customer_counts.count_select(tally.sql()), tally.args),
        (f"SELECT COUNT(*) FROM customer c WHERE {where.sql()}", where.args),
    ]
    conn = await analytics.connect(url)
    found = []
    try:
        for sql, args in statements:
            numbered = sql
            for n in range(len(args)):
                numbered = numbered.replace("{}", f"${n + 1}", 1)
            plan = f"EXPLAIN (ANALYZE, FORMAT JSON) {numbered}"
            times = [
                (await conn.fetchval(plan, *args))
                for _ in range(runs)  # the first warms the cache as any other does
            ]
            found.append(statistics.median(_execution(t) for t in times))
    finally:
        await conn.close()
    return found[0], found[1]


def _execution(plan: str | list) -> float:
    parsed = json.loads(plan) if isinstance(plan, str) else plan
    return float(parsed[0]["Execution Time"])


def measure(size: int, runs: int) -> dict[str, float]:
    url = scale.database_url(size)
    settings = settings_for(url, load_entry_points=True)
    started = time.perf_counter()
    asyncio.run(migrate_for(settings))  # the tally's migration counts every customer once
    print(f"{size:,}: migrated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    with live_server(settings) as server:
        fixtures = asyncio.run(scale.fixtures_of(url))
        (shape,) = [s for s in load_reads.read_scenarios(fixtures) if s.name == "list"]
        page = shape.documents[CRMGRAPH]
        counted = page.replace(f"[{load_reads.LIST_KIND.upper()}]", f"[CLIENT]{COUNTED}", 1)
        assert counted != page
        totals = [server.gql(d)["customers"]["totalCount"] for d in (page, counted)]
        assert totals[0] == totals[1], totals
        found = {"clients": float(totals[0])}
        for name, document in (("list p50 (tally)", page), ("list p50 (COUNT(*))", counted)):
            found[name] = statistics.median(scale.timed(lambda d=document: server.gql(d), runs))
    tally, count = asyncio.run(sql_times(url, runs))
    found["SQL: tally sum (ms)"] = tally
    found["SQL: COUNT(*) (ms)"] = count
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {size: measure(size, args.runs) for size in sizes}
    print(f"load {os.getloadavg()[0]:.1f}")
    names = list(next(iter(results.values())))
    print(f"{'':24}" + "".join(f"{size:>14,}" for size in sizes))
    for name in names:
        print(f"{name:24}" + "".join(f"{results[s][name]:14.2f}" for s in sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
