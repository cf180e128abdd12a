"""How cheap can a logged interaction be? The floor under issue 21's write target.

The load benchmark (bench/graphql_load.py --writes) compares whole servers. This
one asks what is left once the server costs nothing: the CPU a PostgreSQL
backend spends per write, for three ways of writing the same interaction into
the same database, in the same run, rounds alternating:

- ``crmgraph``: ``crmgraph.operations.interactions.log_interaction`` called
  in process (no HTTP, no GraphQL): the liveness check, the row, its audit
  entry and outbox event, in one transaction through the write queue;
- ``floor``: the least SQL that keeps crmgraph's guarantees, written by hand:
  one statement (a data-modifying WITH) that locks the customer and checks it
  is live (the party lock a merge waits for) and writes the row, its audit
  entry and its outbox event, autocommitted;
- ``postgraphile``: what PostGraphile's ``createInteraction`` sends, one
  ``INSERT ... RETURNING`` of the row, autocommitted; no audit, no event.

The rollup triggers fire for all three (they are the database's). Per write it
prints the backend's CPU (``/proc/<pid>/stat``, so this runs on the database's
machine), the client process's CPU, the statements' time from
pg_stat_statements and the statements sent. Reproduce with::

    .venv/bin/python -m bench.write_floor --writes 3000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from crmgraph import auth
from crmgraph.access import Policy
from crmgraph.auth import Principal
from crmgraph.db.engine import Database, make_engine
from crmgraph.db.tables import CORE_TABLES
from crmgraph.demo.seed import seed_demo
from crmgraph.operations.actor import Actor
from crmgraph.operations.interactions import NewInteraction, log_interaction
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.testing.databases import fresh_postgres_database, migrate_for, settings_for

TICKS = os.sysconf("SC_CLK_TCK")

POSTGRAPHILE_SQL = """
INSERT INTO interaction (customer, channel, direction, occurred_at, subject, created_at)
VALUES ($1, 'email', 'inbound', now(), $2, now()) RETURNING *
"""

FLOOR_SQL = """
WITH live AS (
    SELECT id FROM customer WHERE id = $1 AND deleted_at IS NULL AND merged_into IS NULL
    FOR UPDATE
), row AS (
    INSERT INTO interaction (customer, channel, direction, occurred_at, subject, created_at)
    SELECT id, 'email', 'inbound', now(), $2, now() FROM live RETURNING *
), trail AS (
    INSERT INTO audit_entry (at, action, entity_type, entity_id, customer, changes)
    SELECT now(), 'interaction.logged', 'Interaction', id, customer,
           json_build_object('subject', json_build_array(NULL, subject)) FROM row
), outbox AS (
    INSERT INTO event (type, customer, payload, created_at)
    SELECT 'interaction.logged', customer,
           json_build_object('customerId', customer, 'interactionId', id), now() FROM row
)
SELECT * FROM row
"""


@dataclass
class Tally:
    backend_seconds: float = 0.0
    client_seconds: float = 0.0
    statement_ms: float = 0.0
    statements: int = 0
    writes: int = 0
    rounds: list[float] = field(default_factory=list)

    def per_write(self) -> dict[str, float]:
        n = max(self.writes, 1)
        return {
            "backend CPU µs/write": self.backend_seconds / n * 1e6,
            "client CPU µs/write": self.client_seconds / n * 1e6,
            "statement time µs/write": self.statement_ms / n * 1e3,
            "statements/write": self.statements / n,
        }


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def statement_totals(admin: asyncpg.Connection, dbname: str) -> tuple[float, int]:
    row = await admin.fetchrow(
        "SELECT coalesce(sum(total_exec_time + total_plan_time), 0) AS ms,"
        " coalesce(sum(calls), 0) AS calls FROM pg_stat_statements s"
        " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1"
        " AND s.query NOT ILIKE '%pg_backend_pid%'",
        dbname,
    )
    return float(row["ms"]), int(row["calls"])


async def measure(
    tally: Tally,
    admin: asyncpg.Connection,
    dbname: str,
    pids: list[int],
    writes: int,
    write: Callable[[int], Awaitable[Any]],
) -> None:
    before_ms, before_calls = await statement_totals(admin, dbname)
    before_backend = sum(backend_cpu(pid) for pid in pids)
    before_client = time.process_time()
    for i in range(writes):
        await write(i)
    tally.client_seconds += time.process_time() - before_client
    tally.backend_seconds += sum(backend_cpu(pid) for pid in pids) - before_backend
    after_ms, after_calls = await statement_totals(admin, dbname)
    tally.statement_ms += after_ms - before_ms
    tally.statements += after_calls - before_calls - 1  # the totals' own read
    tally.writes += writes


async def crmgraph_writer(url: str) -> tuple[Callable[[int], Awaitable[Any]], Database, list[int]]:
    settings = settings_for(url, pool_min_size=1, pool_max_size=1)
    pm = make_plugin_manager(settings)
    catalog = Catalog.from_plugin_manager(pm)
    db = Database(make_engine(settings), CORE_TABLES)
    await db.start(settings)
    await seed_demo(db, catalog, customers=200)
    user = await auth.create_user(db, "Bench admin", "bench@example.test", "admin")
    actor = Actor(Policy.from_catalog(catalog, {}).access(Principal(user, "Bench admin", "admin")))
    customers = [r["id"] for r in await db.fetch("SELECT id FROM customer ORDER BY id LIMIT 100")]
    pid = int(await db.read_value("SELECT pg_backend_pid()"))

    async def write(i: int) -> Any:
        fields = {"channel": "email", "direction": "inbound", "subject": f"floor {i}"}
        new = NewInteraction(customers[i % len(customers)], None, fields)
        return await log_interaction(db, catalog, pm, actor, new)

    return write, db, [pid]


def main(writes: int, rounds: int) -> None:
    with fresh_postgres_database() as url:
        report(asyncio.run(compare(url, writes, rounds)))


async def compare(url: str, writes: int, rounds: int) -> dict[str, Tally]:
    await migrate_for(settings_for(url))
    dbname = url.rsplit("/", 1)[1]
    if True:
        crm_write, db, crm_pids = await crmgraph_writer(url)
        raw = await asyncpg.connect(url)
        admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
        customers = [r["id"] for r in await raw.fetch("SELECT id FROM customer LIMIT 100")]
        raw_pid = await raw.fetchval("SELECT pg_backend_pid()")

        async def sql_writer(sql: str) -> Callable[[int], Awaitable[Any]]:
            statement = await raw.prepare(sql)
            return lambda i: statement.fetchrow(customers[i % len(customers)], f"bench {i}")

        ways = {
            "crmgraph": (crm_write, crm_pids),
            "floor": (await sql_writer(FLOOR_SQL), [raw_pid]),
            "postgraphile": (await sql_writer(POSTGRAPHILE_SQL), [raw_pid]),
        }
        tallies = {name: Tally() for name in ways}
        for write, _ in ways.values():  # warm caches and plans
            for i in range(200):
                await write(i)
        for _ in range(rounds):
            for name, (write, pids) in ways.items():
                await measure(tallies[name], admin, dbname, pids, writes, write)
        await raw.close()
        await admin.close()
        await db.stop()
    return tallies


def report(tallies: dict[str, Tally]) -> None:
    rows = {name: tally.per_write() for name, tally in tallies.items()}
    columns = list(next(iter(rows.values())))
    print("| way | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.1f}" for c in columns) + " |")
    base = rows["postgraphile"]["backend CPU µs/write"]
    for name in ("crmgraph", "floor"):
        ratio = rows[name]["backend CPU µs/write"] / base
        print(f"{name}: backend CPU {ratio:.2f}x PostGraphile's statement")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=3000, help="writes per way per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    main(args.writes, args.rounds)
