"""SQLite's connections: the factory that gives each crmgraph's SQL
functions, and the open connections kept for reads outside a transaction
(:class:`SQLiteReaders`) and for writes (:class:`SQLiteWriters`).

piccolo's SQLite engine opens a connection for every statement run outside
a transaction and for every transaction, and SQLite parses the whole schema
(every trigger body included) on a new connection: tens of milliseconds per
read on a migrated database, most of a request, and ~6 ms twice per write.
Part of crmgraph.db.engine's world; kept apart so the engine module stays
one screenful of concerns."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from piccolo.engine.sqlite import SQLiteEngine, dict_factory
from piccolo.querystring import QueryString

# base64 of a text's UTF-8 (SQLite has none; PostgreSQL: encode(convert_to(...)));
# the second argument, when true, asks for the URL-safe alphabet
SQLITE_BASE64 = "crmgraph_base64"


def utf8_base64(text: str | None, urlsafe: int) -> str | None:
    if text is None:
        return None
    data = text.encode()
    return (base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)).decode()


class FunctionsConnection(sqlite3.Connection):
    """A SQLite connection with crmgraph's SQL functions (every connection
    piccolo opens is made by this factory)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.create_function(SQLITE_BASE64, 2, utf8_base64, deterministic=True)


async def with_foreign_keys(opening: Awaitable[Any]) -> Any:
    """A new connection, foreign keys enforced: a setting of the connection,
    made once here (piccolo made it before every statement, see
    :func:`run_statement`)."""
    connection = await opening
    await connection.execute("PRAGMA foreign_keys = 1")
    return connection


async def run_statement(connection: Any, query: str, args: Any = None) -> list[Any]:
    """piccolo's ``SQLiteEngine._run_in_existing_connection`` without the
    ``PRAGMA foreign_keys = 1`` it sent before every statement: each
    connection has the setting from its opening (:func:`with_foreign_keys`),
    and inside a transaction the pragma does nothing (SQLite's documentation).
    It was a round trip to the connection's thread per statement, 13 per
    createCustomer. (piccolo's branch for SQLite before 3.35, without
    RETURNING, is left out: crmgraph's own statements need RETURNING.)"""
    connection.row_factory = dict_factory
    async with connection.execute(query, args or []) as cursor:
        return list(await cursor.fetchall())


class KeptConnections:
    """Open connections kept between uses (each starts a thread and has SQLite
    parse the whole schema). A connection is held by one user at a time and
    comes back only when it is known to be outside a transaction, after a
    statement (or a COMMIT or ROLLBACK) that returned; on any failure or
    cancellation it is closed instead. At most ``size`` stay open between
    uses; more are opened while more users run at once. Off (each one closed
    when it comes back) until :meth:`start`, and again after :meth:`close`
    (aiosqlite's threads would otherwise keep the process alive)."""

    def __init__(self, open_connection: Callable[[], Awaitable[Any]], size: int) -> None:
        self.open_connection = open_connection
        self.size = size
        self._idle: list[Any] = []
        self.keeping = False

    def start(self) -> None:
        self.keeping = True

    async def run(self, statement: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``statement(connection, *args)`` on a kept connection, given back after."""
        connection = await self.take()
        clean = False
        try:
            rows = await statement(connection, *args)
            clean = True
            return rows
        finally:
            await self.give_back(connection, clean)

    async def take(self) -> Any:
        return self._idle.pop() if self._idle else await self.open_connection()

    async def give_back(self, connection: Any, clean: bool) -> None:
        """``clean``: it ended outside a transaction, by a statement that returned."""
        if clean and self.keeping and not connection.in_transaction and len(self._idle) < self.size:
            self._idle.append(connection)
        else:
            await connection.close()

    async def close(self) -> None:
        self.keeping = False
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


class SQLiteReaders(KeptConnections):
    """Open SQLite connections kept for read-only statements outside a transaction.

    piccolo opens a connection for every statement run outside a transaction,
    and aiosqlite a thread for each connection: on a compiled read that was
    most of the request. In WAL mode a statement on a kept connection sees
    everything committed before it starts, as on a new one. The connections
    are opened by the engine (so they have crmgraph's SQL functions) and set
    ``query_only``: a statement that would write fails instead."""

    def __init__(self, engine: SQLiteEngine, count: Callable[[str], None], size: int = 4) -> None:
        super().__init__(self._open, size)
        self.engine = engine
        self.count = count  # the engine's statement counting (StatementCounter)
        self.start()

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
        return [dict(row) for row in await self.run(run_statement, query, values)]

    async def _open(self) -> Any:
        connection = await self.engine.get_connection()
        await connection.execute("PRAGMA query_only = 1")
        return connection


class SQLiteWriters(KeptConnections):
    """Open SQLite connections kept for write transactions and for the
    statements piccolo runs outside one (a background loop's UPDATE).

    Each was a new connection, parsing the schema again and starting a
    thread: about 6 ms, twice per createCustomer (its transaction, and the
    event loops marking its event delivered and published). A transaction's
    connection comes back after its COMMIT or ROLLBACK returned; one whose
    BEGIN IMMEDIATE was cancelled while it waited for the lock (aiosqlite's
    thread still takes the lock then) is closed. Started by the app's
    Database: a migration's own engine opens and closes its connections as
    before."""

    def __init__(self, open_connection: Callable[[], Awaitable[Any]], size: int = 2) -> None:
        super().__init__(open_connection, size)  # piccolo's: dict rows, foreign keys on
