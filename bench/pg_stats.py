"""Database time per request from pg_stat_statements: the statements of one
database are reset before a load, and their execution plus planning time
summed after it.

pg_stat_statements must be in ``shared_preload_libraries`` (a restart);
without it the benchmark says how to enable it and goes on without the
column. Planning time needs ``pg_stat_statements.track_planning``, which a
superuser can turn on without a restart (ALTER SYSTEM and a reload); every
other session on the same database during a load is counted too.

Execution time is wall time in the backend: under a load of many connections
on few cores it includes the wait for a CPU and for locks, so the benchmark
also measures it with requests sent one at a time (the counting pass).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import asyncpg

from bench import analytics

ENABLE = (
    "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';",
    "-- then restart PostgreSQL, e.g. pg_ctlcluster 15 main restart",
)
RELOAD_POLLS = 50
RELOAD_POLL_SECONDS = 0.1
# the benchmark's own statements stay out of the sum: this connection's, and
# the write scenarios' reads of their customers (marked with this comment)
BENCH_MARK = "/* bench pool */"
OWN = "query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%bench pool%'"


@dataclass
class DbTime:
    conn: asyncpg.Connection
    dbid: int
    planning: bool  # plan time is tracked (else execution time only)

    async def reset(self) -> None:
        await self.conn.execute(
            "SELECT pg_stat_statements_reset(0::oid, $1::oid, 0::bigint)", self.dbid
        )

    async def total_ms(self) -> float:
        """Execution + planning time of the database's statements since the reset."""
        value = await self.conn.fetchval(
            "SELECT COALESCE(SUM(total_exec_time + total_plan_time), 0) "
            f"FROM pg_stat_statements WHERE dbid = $1 AND {OWN}",
            self.dbid,
        )
        return float(value)

    async def close(self) -> None:
        await self.conn.close()


async def open_db_time(url: str) -> DbTime | None:
    """A connection to the database of ``url`` measuring its statements'
    time, or None (with the commands that enable it) without the library."""
    conn = await analytics.connect(url)
    try:
        preloaded = await conn.fetchval("SHOW shared_preload_libraries")
        if "pg_stat_statements" not in preloaded:
            print(
                "pg_stat_statements is not preloaded: no DB time column. To enable it:\n  "
                + "\n  ".join(ENABLE),
                file=sys.stderr,
            )
            await conn.close()
            return None
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        planning = await track_planning(conn)
        dbid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()")
    except BaseException:
        await conn.close()
        raise
    return DbTime(conn, int(dbid), planning)


async def track_planning(conn: asyncpg.Connection) -> bool:
    """Turn pg_stat_statements.track_planning on if it is off and we may."""
    if await conn.fetchval("SHOW pg_stat_statements.track_planning") == "on":
        return True
    try:
        await conn.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
        await conn.execute("SELECT pg_reload_conf()")
    except asyncpg.PostgresError as error:
        print(f"track_planning stays off ({error}): DB time without planning", file=sys.stderr)
        return False
    print("set pg_stat_statements.track_planning = on (ALTER SYSTEM, reload)", file=sys.stderr)
    for _ in range(RELOAD_POLLS):  # the reload reaches this session asynchronously
        if await conn.fetchval("SHOW pg_stat_statements.track_planning") == "on":
            return True
        await asyncio.sleep(RELOAD_POLL_SECONDS)
    return False
