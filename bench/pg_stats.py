"""Database time per request from pg_stat_statements: the execution plus
planning time of one database's statements, summed before and after a load;
the difference is the load's. (Not a reset before each load: the server is
shared, and another session's ``pg_stat_statements_reset()`` during a load
would zero the sum. A load during which the statistics were reset or entries
were evicted, per ``pg_stat_statements_info``, has no DB time.)

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
OWN = (
    "query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%bench pool%' "
    "AND query NOT LIKE 'ANALYZE%'"  # the write loads' statistics, taken before each load
)


SNAPSHOT = (
    "SELECT (SELECT COALESCE(SUM(total_exec_time + total_plan_time), 0) FROM "
    f"pg_stat_statements WHERE dbid = $1 AND {OWN}) AS ms, i.dealloc, i.stats_reset "
    "FROM pg_stat_statements_info i"
)


@dataclass
class DbTime:
    conn: asyncpg.Connection
    dbid: int
    planning: bool  # plan time is tracked (else execution time only)
    start: asyncpg.Record | None = None

    async def reset(self) -> None:
        """Start measuring (a snapshot of the sums, not a reset)."""
        self.start = await self.conn.fetchrow(SNAPSHOT, self.dbid)

    async def total_ms(self) -> float | None:
        """Execution + planning time of the database's statements since
        ``reset``; None if the statistics were reset or evicted meanwhile."""
        end = await self.conn.fetchrow(SNAPSHOT, self.dbid)
        start, self.start = self.start, None
        if start is None or (end["dealloc"], end["stats_reset"]) != (
            start["dealloc"],
            start["stats_reset"],
        ):
            print("  pg_stat_statements was reset or evicted entries: no DB time", file=sys.stderr)
            return None
        return float(end["ms"] - start["ms"])

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
