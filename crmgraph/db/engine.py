"""Engine set-up: which database, a pool for PostgreSQL, statement counting.

Every table (core and plugin) is bound to one engine explicitly, so a process
can switch databases (tests run the same suite on SQLite and PostgreSQL).

PostgreSQL may sit behind PgBouncer in transaction mode: every connection
(pool or not) gets ``CRMGRAPH_STATEMENT_CACHE_SIZE`` (0 there: a statement
asyncpg prepared by name on one server connection is unknown on the next),
and crmgraph keeps no session state outside a transaction (no SET, no
session advisory lock, no LISTEN: cross-process news goes through Redis).
With ``CRMGRAPH_DATABASE_READ_URL`` a second pool answers the reads
:mod:`crmgraph.db.replica` lets go there.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType
from piccolo.querystring import QueryString
from piccolo.table import Table

from crmgraph.db.replica import may_use_replica, only_reads
from crmgraph.db.sqlite_connections import (
    FunctionsConnection,
    SQLiteReaders,
    SQLiteWriters,
    run_statement,
    with_foreign_keys,
)
from crmgraph.db.turns import StatementTurns
from crmgraph.db.write_batch import GUARD_FAILED, IdBlocks, WriteQueue
from crmgraph.settings import Settings
from crmgraph.validation import UserInputError

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
# PostgreSQL's "deadlock detected" and "could not serialize access": the
# transaction was rolled back whole and may simply run again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
TRANSACTION_ATTEMPTS = 4
RETRY_PAUSE_SECONDS = 0.02  # times the attempt, with jitter: the two losers do not meet again

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class StatementCounter:
    """SQL statements run in one scope (a request); tests assert on it."""

    count: int = 0
    statements: list[str] = field(default_factory=list)

    def record(self, sql: str) -> None:
        self.count += 1
        self.statements.append(sql)


current_counter: contextvars.ContextVar[StatementCounter | None] = contextvars.ContextVar(
    "crmgraph_statement_counter", default=None
)


# The queued writes of the write transaction this task runs in (PostgreSQL
# with write batching on; crmgraph.db.write_batch), None outside one.
current_queue: contextvars.ContextVar[WriteQueue | None] = contextvars.ContextVar(
    "crmgraph_write_queue", default=None
)


def _count(querystring: QueryString | str) -> None:
    counter = current_counter.get()
    if counter is not None:
        counter.record(str(querystring))


class GivesBackItsConnection:
    """piccolo's transactions keep their connection when BEGIN, ROLLBACK or
    COMMIT fails: a background loop cancelled at shutdown in the middle of a
    statement (SQLite: while BEGIN IMMEDIATE waits for the write lock) left a
    connection that took the lock later and never gave it back (SQLite), or
    that closing the pool waited for for ever (PostgreSQL). Here the
    connection is always given back, however the transaction ends."""

    _parent: Any
    _committed: bool
    _rolled_back: bool
    connection: Any
    engine: Any
    context: Any

    # get_connection, begin, commit and rollback are piccolo's (the class this
    # one is mixed into, after it)

    def prepare(self, connection: Any) -> None:
        """Set up what BEGIN needs on the new connection."""

    async def give_back(self, connection: Any) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Any:
        if self._parent is not None:
            return self._parent
        connection = await self.get_connection()
        try:
            self.connection = connection
            self.prepare(connection)
            await self.begin()
        except BaseException:
            await self.give_back(connection)
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception:
                if not self._rolled_back:  # the caller may have rolled back itself
                    # a connection gone (the server restarted, the backend was
                    # killed) cannot roll back: the error to tell is the one that
                    # ended the transaction, not "the underlying connection is closed"
                    with contextlib.suppress(Exception):
                        await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            try:
                await self.give_back(self.connection)
            finally:
                self.engine.current_transaction.reset(self.context)
        return exception is None


class ClosingSQLiteTransaction(GivesBackItsConnection, SQLiteTransaction):
    """SQLite: the connection goes back to the engine's kept writers when the
    transaction ended by a COMMIT or ROLLBACK that returned; otherwise it is
    closed (closing waits for the statement before it, then rolls back)."""

    engine: CountingSQLiteEngine

    async def get_connection(self) -> Any:
        return await self.engine.writers.take()

    async def give_back(self, connection: Any) -> None:
        await self.engine.writers.give_back(connection, self._committed or self._rolled_back)


class CountingSQLiteEngine(SQLiteEngine):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.writers = SQLiteWriters(self.get_connection)

    async def get_connection(self) -> Any:
        return await with_foreign_keys(super().get_connection())

    async def run_querystring(self, querystring: QueryString, in_pool: bool = False) -> Any:
        _count(querystring)
        return await super().run_querystring(querystring, in_pool=in_pool)

    async def _run_in_existing_connection(
        self, connection: Any, query: str, args: Any = None, *_: Any, **__: Any
    ) -> Any:
        return await run_statement(connection, query, args)

    async def _run_in_new_connection(
        self, query: str, args: Any = None, query_type: str = "generic", table: Any = None
    ) -> Any:
        """A statement outside a transaction, on a kept writer (autocommit:
        piccolo opens its connections with ``isolation_level=None``)."""
        return await self.writers.run(
            self._run_in_existing_connection, query, args, query_type, table
        )

    def transaction(
        self,
        transaction_type: TransactionType = TransactionType.deferred,
        allow_nested: bool = True,
    ) -> SQLiteTransaction:
        return ClosingSQLiteTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )


class ReleasingPostgresTransaction(GivesBackItsConnection, PostgresTransaction):
    """PostgreSQL: the connection goes back to the pool (asyncpg closes one it
    cannot reset).

    A *lazy* one (``Database.transaction(lazy=True)``) sends BEGIN only when
    a statement needs it: reads before it run on the connection as single
    statements (each sees the latest commits, as it would inside a READ
    COMMITTED transaction), and a write whose queue holds one batch at the
    end sends it alone, one atomic statement, with no BEGIN and no COMMIT."""

    lazy = False
    begun = True

    def prepare(self, connection: Any) -> None:
        self.transaction = connection.transaction()
        # one statement at a time (a dry run's payload reads), COPYs sent behind
        self.sending = StatementTurns()

    async def begin(self) -> None:
        if self.lazy:
            self.begun = False
            return
        await super().begin()

    async def ensure_begun(self) -> None:
        if not self.begun:
            self.begun = True
            await super().begin()

    async def commit(self) -> None:
        await self.sending.settle()  # a write sent behind, done and fine
        if self.begun:
            await super().commit()
        self._committed = True

    async def rollback(self) -> None:
        await self.sending.quiet()
        if self.begun:
            await super().rollback()
        self._rolled_back = True

    async def give_back(self, connection: Any) -> None:
        if self.engine.pool:
            await self.engine.pool.release(connection)
        else:
            await connection.close()


class CountingPostgresEngine(PostgresEngine):
    async def run_querystring(self, querystring: QueryString, in_pool: bool = True) -> Any:
        await begin_if_lazy(self)
        queue = current_queue.get()
        if queue:
            # a query that went past Database.fetch (a plugin's own piccolo
            # query inside a write) still comes after every write before it
            await queue.flush(lambda sql, *args: send_in_transaction(self, sql, *args))
        _count(querystring)
        transaction = self.current_transaction.get()
        async with transaction.sending if transaction else nullcontext():
            return await super().run_querystring(querystring, in_pool=in_pool)

    def transaction(self, allow_nested: bool = True) -> PostgresTransaction:
        return ReleasingPostgresTransaction(engine=self, allow_nested=allow_nested)


async def begin_if_lazy(engine: Engine) -> Any:
    """The current transaction (None outside one), its BEGIN sent if it was
    lazy and had not sent it yet."""
    transaction = engine.current_transaction.get()
    if transaction is not None and not getattr(transaction, "begun", True):
        await transaction.ensure_begun()
    return transaction


async def send_in_transaction(
    engine: Engine, sql: str, *args: Any, begin: bool = True
) -> list[dict[str, Any]]:
    """PostgreSQL, in a transaction: ``sql``'s ``{}`` numbered and sent on
    the transaction's connection, past piccolo's QueryString (whose parse of
    a batch's hundreds of placeholders costs more than the statement) and
    past the write queue's flush; counted like every statement. A lazy
    transaction's BEGIN goes first unless ``begin`` is false (a statement
    that may run alone: the last batch, ids from a sequence)."""
    transaction = await begin_if_lazy(engine) if begin else engine.current_transaction.get()
    assert transaction is not None
    pieces = sql.split("{}")
    numbered = "".join(f"{piece}${n}" for n, piece in enumerate(pieces[:-1], 1)) + pieces[-1]
    _count(numbered)
    async with transaction.sending:
        return [dict(row) for row in await transaction.connection.fetch(numbered, *args)]


def postgres_config(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    config: dict[str, Any] = {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "database": (parsed.path or "/postgres").lstrip("/") or "postgres",
        "user": unquote(parsed.username) if parsed.username else "postgres",
    }
    if parsed.password:
        config["password"] = unquote(parsed.password)
    return config


def make_engine(settings: Settings) -> Engine:
    if settings.is_sqlite:
        return CountingSQLiteEngine(
            path=str(settings.sqlite_path),
            timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
            factory=FunctionsConnection,
        )
    if settings.database_url.startswith(("postgres://", "postgresql://")):
        return postgres_engine(settings.database_url, settings)
    raise ValueError(f"unsupported CRMGRAPH_DATABASE_URL: {settings.database_url!r}")


def postgres_engine(url: str, settings: Settings) -> CountingPostgresEngine:
    """piccolo hands its config to every asyncpg connection it opens, pooled
    or not (migrations), so the statement cache size goes there."""
    config = {**postgres_config(url), "statement_cache_size": settings.statement_cache_size}
    return CountingPostgresEngine(config=config)


def make_read_engine(settings: Settings) -> CountingPostgresEngine | None:
    """The replica's engine, or None without ``CRMGRAPH_DATABASE_READ_URL``."""
    url = settings.database_read_url
    if not url:
        return None
    if settings.is_sqlite or not url.startswith(("postgres://", "postgresql://")):
        raise ValueError(
            "CRMGRAPH_DATABASE_READ_URL needs a PostgreSQL CRMGRAPH_DATABASE_URL and a "
            f"postgresql:// URL, got {url!r}"
        )
    return postgres_engine(url, settings)


async def start_pool(engine: PostgresEngine, settings: Settings) -> None:
    await engine.start_connection_pool(
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        init=know_array_types,
        **({} if settings.pool_reset_session else {"reset": keep_session}),
    )


async def know_array_types(connection: Any) -> None:
    """asyncpg learns an array type's codec by asking the server (three
    round trips: its type query between a save and a restore of ``jit``) the
    first time a connection binds one; the match-key lookups bind arrays, so
    the first write on each pooled connection paid them. Learnt once here,
    as the connection opens, in a transaction: behind PgBouncer in
    transaction mode its statement is prepared and run on one server
    connection."""
    async with connection.transaction():
        await connection.fetchval(
            "SELECT $1::text[] IS NULL AND $2::bigint[] IS NULL AND $3::varchar[] IS NULL",
            [],
            [],
            [],
        )


async def keep_session(connection: Any) -> None:
    """asyncpg's pool, on each release, rolls back an open transaction and then
    sends a reset query (advisory locks, cursors, LISTEN, settings): a second
    round trip for every statement piccolo runs in the pool. crmgraph keeps no
    session state outside transactions, so the query is skipped; the rollback
    stays. ``CRMGRAPH_POOL_RESET_SESSION`` restores it for a plugin that does."""


def enable_wal(path: str) -> None:
    """WAL is a property of the file: set once, every later connection uses it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def bind_tables(engine: Engine, tables: Iterable[type[Table]]) -> None:
    for table in tables:
        table._meta.db = engine


@dataclass
class Database:
    """The engine of one app instance and the tables bound to it."""

    engine: Engine
    tables: tuple[type[Table], ...]
    # SQLite only, between start() and stop(): kept connections for reads
    readers: SQLiteReaders | None = field(default=None, init=False)
    # PostgreSQL: writes not read back go in one round trip (crmgraph.db.write_batch)
    batching: bool = field(default=False, init=False)
    ids: IdBlocks = field(default_factory=IdBlocks, init=False)
    # PostgreSQL with CRMGRAPH_DATABASE_READ_URL, between start() and stop()
    reader: CountingPostgresEngine | None = field(default=None, init=False)

    async def read_value(self, sql: str, *args: Any) -> Any:
        """A read-only statement's single value: on SQLite outside a
        transaction through a kept connection, otherwise as ``fetch`` runs it."""
        if self.readers is not None and self.engine.current_transaction.get() is None:
            return await self.readers.fetch_value(sql, *args)
        rows = await self.fetch(sql, *args)
        return next(iter(rows[0].values())) if rows else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.engine_type == "sqlite"

    async def start(self, settings: Settings) -> None:
        bind_tables(self.engine, self.tables)
        if isinstance(self.engine, SQLiteEngine):
            enable_wal(self.engine.path)
            self.readers = SQLiteReaders(self.engine, _count)
            if isinstance(self.engine, CountingSQLiteEngine):
                self.engine.writers.start()
        if isinstance(self.engine, PostgresEngine):
            self.batching = settings.write_batching
            await start_pool(self.engine, settings)
            reader = make_read_engine(settings)
            if reader is not None:
                await start_pool(reader, settings)
                self.reader = reader

    async def stop(self) -> None:
        if self.readers is not None:
            readers, self.readers = self.readers, None
            await readers.close()
        if isinstance(self.engine, CountingSQLiteEngine):
            await self.engine.writers.close()
        if self.reader is not None:
            reader, self.reader = self.reader, None
            await reader.close_connection_pool()
        if isinstance(self.engine, PostgresEngine) and self.engine.pool is not None:
            await self.engine.close_connection_pool()

    def read_pool(self) -> Any:
        """The asyncpg pool a read outside a transaction goes to: the
        replica's when :mod:`crmgraph.db.replica` allows it, else the primary's."""
        engine: Any = self.reader if self.reader is not None and may_use_replica() else self.engine
        return engine.pool

    @asynccontextmanager
    async def transaction(self, lazy: bool = False) -> AsyncIterator[None]:
        """One write transaction; SQLite takes the write lock up front (IMMEDIATE)
        so two writers queue on the busy timeout instead of failing on upgrade.
        PostgreSQL with write batching: ``lazy`` defers BEGIN
        (:class:`ReleasingPostgresTransaction`); a write that only queued
        (:meth:`guarding`) is then one statement."""
        if isinstance(self.engine, SQLiteEngine):
            async with self.engine.transaction(transaction_type=TransactionType.immediate):
                yield
        elif not self.batching or current_queue.get() is not None:
            async with self.engine.transaction():
                yield
        else:
            transaction: Any = self.engine.transaction()
            transaction.lazy = lazy
            async with transaction:
                queue = WriteQueue()
                token = current_queue.set(queue)
                try:
                    yield
                    if len(queue.batches) > 1:  # alone, only one statement is atomic
                        await transaction.ensure_begun()
                    await queue.flush(self._send_unbegun)  # before the COMMIT
                except Exception as exc:
                    if getattr(exc, "sqlstate", None) == GUARD_FAILED:
                        self.ids.give_back(queue.given)  # the run again takes them
                    raise
                finally:
                    current_queue.reset(token)

    def guarding(self) -> WriteQueue | None:
        """The write queue of a lazy transaction that has sent no BEGIN yet:
        what the write would read first may go into its statement as a guard
        (:meth:`WriteQueue.guard`); None otherwise."""
        queue = current_queue.get()
        transaction = self.engine.current_transaction.get()
        if queue is None or transaction is None or getattr(transaction, "begun", True):
            return None
        return queue

    @property
    def in_transaction(self) -> bool:
        return self.engine.current_transaction.get() is not None

    async def run_transaction(self, work: Callable[[], Awaitable[T]]) -> T:
        """``work()`` in one write transaction: the one place writes run theirs.

        Party locks (:func:`crmgraph.db.writes.lock_parties`) are taken in id
        order, but a write may still meet another in a cycle (a lock it takes
        after reading a row, a foreign key's share lock); PostgreSQL then
        rolls one of them back (40P01), as it does a serialization failure
        (40001). That transaction is run again from the start, a bounded
        number of times; if it still fails the caller gets a userError
        (VERSION_CONFLICT: someone else was writing the same customer), not
        an internal error. Inside an outer transaction ``work`` joins it and
        the outermost one decides (a rolled-back transaction cannot go on)."""
        if self.in_transaction:
            return await work()
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                return await self._guarded_attempt(work)
            except Exception as exc:
                sqlstate = getattr(exc, "sqlstate", None)
                if sqlstate not in RETRYABLE_SQLSTATES:
                    raise
                log.info("transaction rolled back (%s), attempt %d", sqlstate, attempt)
                if attempt < TRANSACTION_ATTEMPTS:
                    await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt * (0.5 + random.random()))
        raise UserInputError.single(
            None,
            "another change to the same customer ran at the same time and this one could not "
            "be completed; try again",
            "VERSION_CONFLICT",
        )

    async def _guarded_attempt(self, work: Callable[[], Awaitable[T]]) -> T:
        """``work`` in a lazy transaction; if a guard of it failed (its
        customer was not there, live and visible when its one statement ran),
        once more in an ordinary one, whose reads refuse it with the exact
        user error (or find it there after all, and write)."""
        try:
            async with self.transaction(lazy=True):
                return await work()
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != GUARD_FAILED:
                raise
        async with self.transaction():
            return await work()

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Run portable SQL with ``{}`` placeholders (piccolo's QueryString),
        after the writes this transaction has queued (:meth:`write_queue`):
        sent before it, or with it when it reads none of their tables."""
        queue = current_queue.get()
        if queue:
            sql, values = await queue.before(sql, args, self._send_direct)
            return await self._send_direct(sql, *values)
        outside = self.engine.current_transaction.get() is None
        if self.readers is not None and outside and only_reads(sql):
            return await self.readers.fetch(sql, *args)
        if (
            self.reader is not None
            and may_use_replica()
            and self.engine.current_transaction.get() is None
            and only_reads(sql)
        ):
            rows = await self.reader.run_querystring(QueryString(sql, *args))
            return [dict(row) for row in rows] if rows else []
        return await self._send(sql, *args)

    async def _send(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        rows = await self.engine.run_querystring(QueryString(sql, *args))
        return [dict(row) for row in rows] if rows else []

    async def _send_direct(self, sql: str, *args: Any, begin: bool = True) -> list[dict[str, Any]]:
        if self.engine.current_transaction.get() is None or self.is_sqlite:
            return await self._send(sql, *args)
        return await send_in_transaction(self.engine, sql, *args, begin=begin)

    async def _send_unbegun(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """As :meth:`_send_direct`, without sending a lazy transaction's BEGIN."""
        return await self._send_direct(sql, *args, begin=False)

    async def flush_writes(self) -> None:
        """Send the writes this transaction has queued, if any (before a
        statement that goes past :meth:`fetch`, such as a bulk INSERT)."""
        queue = current_queue.get()
        if queue:
            await queue.flush(self._send_direct)

    def write_queue(self) -> WriteQueue | None:
        """Where this transaction queues writes it does not read back, sent
        together at its next read or before its commit; None when each
        statement goes at once (SQLite, batching off, no transaction)."""
        return current_queue.get()

    async def next_id(self, table: str) -> int | None:
        """A primary key for a row of ``table`` queued before its INSERT."""
        pk = await self.ids.next_id(table, self._send_unbegun)
        queue = current_queue.get()
        if queue is not None and pk is not None:
            queue.given.append((table, pk))
        return pk

    async def written_row(self, table: str, pk: int) -> dict[str, Any] | None:
        """Row ``pk`` of ``table`` as this transaction's queued INSERT wrote
        it (``keep``), once sent; None when no such row was kept."""
        await self.flush_writes()
        queue = current_queue.get()
        return None if queue is None else queue.kept.get((table, pk))

    async def ping(self) -> bool:
        rows = await self.fetch("SELECT 1 AS ok")
        return bool(rows) and rows[0]["ok"] == 1
