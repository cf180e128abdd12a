"""Concurrent ``createCustomer`` throughput with the ``customer_tally``
triggers (crmgraph.db.customer_counts) and without them, on one PostgreSQL
database of this benchmark's own (created, seeded with demo customers, and
dropped at the end): the tally's cost on the write path, and a check that
its delta rows leave concurrent writers no shared row to queue on.

Rounds alternate the two ways (triggers dropped and created again, which
counts the customers once more) so a noisy machine's drift falls on both;
the medians and their ratio are printed, with the load average.

    .venv/bin/python -m bench.tally_writes --clients 8 --writes 40 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg

from crmgraph.app import AppState, with_state
from crmgraph.db import customer_count_triggers
from crmgraph.demo import seed_demo
from crmgraph.testing import LiveServer, live_server, migrate_for, settings_for

SERVER = "postgresql://postgres@127.0.0.1:5432"
CREATE = """mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
  customer { id } userErrors { code } } }"""


async def admin(statement: str) -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def set_triggers(server: LiveServer, on: bool) -> None:
    async def work(state: AppState) -> None:
        have = await state.db.fetch("SELECT to_regclass('customer_tally') IS NOT NULL AS t")
        if bool(have[0]["t"]) == on:
            return
        way = customer_count_triggers.create_statements if on else None
        statements = way("postgres") if way else customer_count_triggers.drop_statements("postgres")
        for statement in statements:
            await state.db.fetch(statement)

    server.run(work)


async def drop_other_triggers(state: AppState) -> None:
    """Drop the triggers of other rollups on the tables a create writes
    (``--alone``): the tally's cost measured by itself, not behind another
    rollup's row locks."""
    rows = await state.db.fetch(
        "SELECT tgname, tgrelid::regclass::text AS t FROM pg_trigger WHERE NOT tgisinternal "
        "AND tgrelid::regclass::text IN ('customer', 'customer_role', 'stage_change') "
        "AND tgname NOT LIKE 'customer%tally%'"
    )
    for row in rows:
        print(f"  dropped trigger {row['tgname']} on {row['t']}")
        await state.db.fetch(f"DROP TRIGGER {row['tgname']} ON {row['t']}")


def measure(server: LiveServer, clients: int, writes: int, tag: str) -> tuple[float, int]:
    """Creates per second over ``clients`` threads of ``writes`` each, and
    how many were refused (VERSION_CONFLICT after the engine's retries)."""

    def client(n: int) -> int:
        refused = 0
        for i in range(writes):
            data = {"input": {"kind": "CLIENT", "name": f"Bench {tag} {n} {i}"}}
            answer: dict[str, Any] = server.gql(CREATE, data)["createCustomer"]
            refused += bool(answer["userErrors"])
        return refused

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        refused = sum(pool.map(client, range(clients)))
    return clients * writes / (time.perf_counter() - started), refused


# createCustomer's two rows in one statement, as the app writes them (a CTE)
CREATE_SQL = (
    "WITH c AS (INSERT INTO customer (kind, name) VALUES ('client', $1) RETURNING id) "
    "INSERT INTO customer_role (customer, kind, stage, phase) "
    "SELECT id, 'client', 'interest', 'ENGAGEMENT' FROM c"
)


def measure_sql(url: str, clients: int, writes: int, tag: str) -> tuple[float, int]:
    """``--sql``: the same creates as bare statements over ``clients``
    connections, each its own transaction: the database's share alone."""

    async def client(n: int) -> None:
        conn = await asyncpg.connect(url)
        try:
            for i in range(writes):
                await conn.execute(CREATE_SQL, f"Bench {tag} {n} {i}")
        finally:
            await conn.close()

    async def all_clients() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        return time.perf_counter() - started

    return clients * writes / asyncio.run(all_clients()), 0


def run(args: argparse.Namespace) -> None:
    url = f"{SERVER}/{args.database}"
    asyncio.run(admin(f'CREATE DATABASE "{args.database}"'))
    try:
        settings = settings_for(url)
        asyncio.run(migrate_for(settings))
        asyncio.run(with_state(settings, lambda s: seed_demo(s.db, s.catalog, customers=args.seed)))
        rates: dict[str, list[float]] = {"with": [], "without": []}
        with live_server(settings) as server:
            if args.alone:
                server.run(drop_other_triggers)
            measure(server, args.clients, 5, "warm")
            for r in range(args.rounds):
                ways = ("with", "without") if r % 2 == 0 else ("without", "with")
                for way in ways:
                    set_triggers(server, way == "with")
                    if args.sql:
                        rate, refused = measure_sql(url, args.clients, args.writes, f"{r}{way}")
                    else:
                        rate, refused = measure(server, args.clients, args.writes, f"{r}{way}")
                    rates[way].append(rate)
                    load = os.getloadavg()[0]
                    print(
                        f"round {r} {way:8} {rate:7.1f} creates/s refused {refused} load {load:.1f}"
                    )
        with_, without = (statistics.median(rates[w]) for w in ("with", "without"))
        print(f"median with {with_:.1f}/s, without {without:.1f}/s, ratio {with_ / without:.2f}")
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)'))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--writes", type=int, default=40, help="creates per client per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=2000, help="demo customers first")
    parser.add_argument("--sql", action="store_true", help="bare INSERTs, not the API")
    parser.add_argument("--alone", action="store_true", help="drop other rollups' triggers")
    parser.add_argument("--database", default="counts_tally_writes")
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
