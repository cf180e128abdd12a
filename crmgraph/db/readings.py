"""What ``GET /metrics`` reads of the database when it is scraped: the
PostgreSQL pool's occupancy and the outbox's lag.

Here rather than in crmgraph.observability, which sits below the data layer
and is handed these as callables (crmgraph.app wires them).
"""

from __future__ import annotations

import datetime
from typing import Any

from piccolo.engine.postgres import PostgresEngine

from crmgraph.db.engine import Database
from crmgraph.observability.metrics import PoolReading

# The first event still to deliver, through ix_event_undelivered (crmgraph_0032):
# the index holds only undelivered ids, so this reads one entry however long
# the delivered history is. Events given up on (attempts exhausted) wait for
# no one and are left out, or one of them would be the lag for ever.
OLDEST_UNDELIVERED = (
    "SELECT created_at FROM event WHERE delivered_at IS NULL AND attempts < {} ORDER BY id LIMIT 1"
)


def pool_readings(db: Database) -> dict[str, PoolReading]:
    """The PostgreSQL pools' readings by name: ``primary``, and ``replica``
    with a read replica; none on SQLite or before the pools start."""
    engines = {"primary": db.engine, "replica": db.reader}
    found: dict[str, PoolReading] = {}
    for name, engine in engines.items():
        pool = engine.pool if isinstance(engine, PostgresEngine) else None
        if pool is not None:
            found[name] = pool_reading(pool)
    return found


def pool_reading(pool: Any) -> PoolReading:
    """An asyncpg pool's connections, those lent out, and the tasks waiting for one."""
    connections = pool.get_size()
    in_use = connections - pool.get_idle_size()
    return PoolReading(connections, in_use, waiting_for(pool), pool.get_max_size())


def waiting_for(pool: Any) -> int:
    """Tasks blocked in ``pool.acquire()``: the waiters of asyncpg's holder
    queue (an asyncio.Queue; asyncpg offers no public count), 0 if its
    insides ever change."""
    getters = getattr(getattr(pool, "_queue", None), "_getters", None) or ()
    return sum(1 for waiter in getters if not waiter.done())


async def outbox_lag(db: Database, max_attempts: int) -> float:
    """Seconds since the oldest event still to deliver was written; 0 when
    none waits."""
    created = await db.read_value(OLDEST_UNDELIVERED, max_attempts)
    if created is None:
        return 0.0
    if isinstance(created, str):  # SQLite without a converter for the column
        created = datetime.datetime.fromisoformat(created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.UTC)
    return max(0.0, (datetime.datetime.now(datetime.UTC) - created).total_seconds())
