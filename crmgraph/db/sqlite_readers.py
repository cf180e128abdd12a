"""Open SQLite connections kept for read-only statements outside a transaction.

piccolo's SQLite engine opens a connection for every statement run outside
a transaction, and SQLite parses the whole schema (every trigger body
included) on a new connection: tens of milliseconds per read on a migrated
database, most of a request. ``Database.fetch`` and ``read_value`` send
reads outside a transaction here instead. Part of crmgraph.db.engine's
world; kept apart so the engine module stays one screenful of concerns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from piccolo.engine.sqlite import SQLiteEngine
from piccolo.querystring import QueryString


class SQLiteReaders:
    """Open SQLite connections kept for read-only statements outside a transaction.

    piccolo opens a connection for every statement run outside a transaction,
    and aiosqlite a thread for each connection: on a compiled read that was
    most of the request. In WAL mode a statement on a kept connection sees
    everything committed before it starts, as on a new one. The connections
    are opened by the engine (so they have crmgraph's SQL functions) and set
    ``query_only``: a statement that would write fails instead. At most
    ``size`` stay open between requests; more are opened while more
    requests run at once, and closed afterwards."""

    def __init__(self, engine: SQLiteEngine, count: Callable[[str], None], size: int = 4) -> None:
        self.engine = engine
        self.count = count  # the engine's statement counting (StatementCounter)
        self.size = size
        self._idle: list[Any] = []
        self._closed = False

    async def fetch_value(self, sql: str, *args: Any) -> Any:
        """The first column of the first row (None without rows), of portable
        SQL with ``{}`` placeholders; counted like every statement."""
        rows = await self.fetch(sql, *args)
        return next(iter(rows[0].values())) if rows else None

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Every row, as dicts, of portable SQL with ``{}`` placeholders."""
        querystring = QueryString(sql, *args)
        self.count(str(querystring))
        query, values = querystring.compile_string(engine_type="sqlite")
        connection = self._idle.pop() if self._idle else await self._open()
        try:
            async with connection.execute(query, values) as cursor:
                rows = await cursor.fetchall()
        except BaseException:
            await connection.close()
            raise
        if self._closed or len(self._idle) >= self.size:
            await connection.close()
        else:
            self._idle.append(connection)
        return [dict(row) for row in rows]

    async def _open(self) -> Any:
        connection = await self.engine.get_connection()
        await connection.execute("PRAGMA query_only = 1")
        return connection

    async def close(self) -> None:
        """Close the idle connections; one in use is closed when it comes back
        (aiosqlite's threads would otherwise keep the process alive)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()
