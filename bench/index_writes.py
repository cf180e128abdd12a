"""What the customer table's indexes cost a bulk write (issue 28), on PostgreSQL.

The CSV import writes its customers 1,000 to a transaction. This writes the
same rows the same way (``INSERT ... SELECT`` of 1,000 customers per
transaction, names and e-mails made from the seeded ones, so their search
runs are a real table's) into copies of one migrated, seeded database,
each copy with one index set or setting, and prints the backend's CPU per row
(``/proc/<pid>/stat``, so this runs on the database's machine) and its ratio
to the first variant, measured in the same run, rounds alternating:

- ``before 0054``: the indexes migration 0054 dropped, built again;
- ``0054``: the schema as migrated;
- ``pending 16MB`` / ``pending 64MB``: ``SET LOCAL gin_pending_list_limit``
  in each transaction, so the GIN indexes' new entries wait in the pending
  list longer and are merged in fewer, larger batches;
- ``fastupdate off``: no pending list, each entry merged as it is written.

Triggers are off (``session_replication_role = replica``): the tallies they
keep cost the same in every variant. What is left in a pending list at the
end is merged (``gin_clean_pending_list``) and counted, since the next write
or VACUUM would pay it. Reproduce with::

    .venv/bin/python -m bench.index_writes --batches 20 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from crmgraph.db.migrations import crmgraph_0054_redundant_indexes as redundant
from crmgraph.testing import PG_SERVER, migrate_for, pg_admin_async, settings_for

BASE = "crmgraph_bench_index_writes"
TICK = os.sysconf("SC_CLK_TCK")
GIN = ("ix_customer_search_lexemes",)  # crmgraph_0060: one GIN index of the customer
FIRST = ("Ana", "Luis", "María", "José", "Carmen", "Javier", "Lucía", "Sergio", "Elena", "Pablo")
LAST = ("García", "López", "Martín", "Pérez", "Sánchez", "Gómez", "Ruiz", "Díaz", "Moreno", "Núñez")
SEED = f"""INSERT INTO customer (kind, name, name_sort, name_folded, email, email_folded,
  attributes, version, created_at, updated_at)
SELECT 'client', n, lower(n), lower(n), e, lower(e), '{{}}', 1, now(), now() FROM (
  SELECT (ARRAY{list(FIRST)})[1 + g % 10] || ' ' || (ARRAY{list(LAST)})[1 + g / 10 % 10]
    || ' ' || (ARRAY{list(LAST)})[1 + g / 100 % 10] AS n,
    'customer-' || g || '@example.com' AS e
  FROM generate_series(1, 10000) g) s"""
WRITE = """INSERT INTO customer (kind, name, name_sort, name_folded, email, email_folded,
  attributes, version, created_at, updated_at)
SELECT s.kind, s.name || ' ' || g, s.name_sort || ' ' || g, s.name_folded || ' ' || g,
  g || '.' || s.email, g || '.' || s.email_folded, '{}', 1, now(), now()
FROM generate_series($1::int, $1::int + 999) g JOIN customer s ON s.id = 1 + (g * 7919) % 9990"""
VARIANTS: dict[str, tuple[list[str], str | None]] = {
    "before 0054": (
        [i.create("postgres").replace(" CONCURRENTLY", "") for i in redundant.DROPPED],
        None,
    ),
    "0054": ([], None),
    "pending 16MB": ([], "16384"),
    "pending 64MB": ([], "65536"),
    "fastupdate off": ([f"ALTER INDEX {name} SET (fastupdate = off)" for name in GIN], None),
}


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def prepare() -> None:
    await pg_admin_async(
        f'DROP DATABASE IF EXISTS "{BASE}" WITH (FORCE)', f'CREATE DATABASE "{BASE}"'
    )
    await migrate_for(settings_for(f"{PG_SERVER}/{BASE}", load_entry_points=False))
    conn = await asyncpg.connect(f"{PG_SERVER}/{BASE}")
    await conn.execute("SET session_replication_role = replica")
    await conn.execute(SEED)
    await conn.execute("VACUUM ANALYZE customer")
    await conn.close()


async def measure(variant: str, batches: int) -> float:
    """Backend CPU ms per row written into a fresh copy set up as ``variant``."""
    name = f"{BASE}_copy"
    await pg_admin_async(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await pg_admin_async(f'CREATE DATABASE "{name}" TEMPLATE "{BASE}" STRATEGY FILE_COPY')
    conn = await asyncpg.connect(f"{PG_SERVER}/{name}")
    try:
        setup, pending = VARIANTS[variant]
        for statement in setup:
            await conn.execute(statement)
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("ALTER TABLE customer SET (autovacuum_enabled = false)")
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        started = backend_cpu(pid)
        for batch in range(batches):
            async with conn.transaction():
                if pending:
                    await conn.execute(f"SET LOCAL gin_pending_list_limit = {pending}")
                await conn.execute(WRITE, 100_000 + batch * 1000)
        names = ", ".join(f"'{index}'" for index in GIN)
        await conn.execute(
            f"SELECT gin_clean_pending_list(oid) FROM pg_class WHERE relname IN ({names})"
        )
        return (backend_cpu(pid) - started) / (batches * 1000) * 1000
    finally:
        await conn.close()
        await pg_admin_async(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run(batches: int, rounds: int, variants: Sequence[str]) -> None:
    await prepare()
    seen: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        for variant in variants:
            seen[variant].append(await measure(variant, batches))
    first = min(seen[variants[0]])
    for variant in variants:
        best = min(seen[variant])
        runs = ", ".join(f"{ms:.4f}" for ms in seen[variant])
        print(f"{variant:16} {best:.4f} ms/row (runs {runs}); x{best / first:.2f}")
    await pg_admin_async(f'DROP DATABASE IF EXISTS "{BASE}" WITH (FORCE)')


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="1,000-row transactions")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)
    asyncio.run(run(args.batches, args.rounds, args.variants))


if __name__ == "__main__":
    main()
