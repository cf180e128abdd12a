"""The databases crmgraph's tests run on: PostgreSQL and Redis reachability,
templates migrated once per session and per-test copies of them (clones made
ahead, dropped off the tests' path), the settings of a test server, and raw
SQL behind the API's back. Part of crmgraph.testing, whose names these are."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import sqlite3
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from piccolo.querystring import QueryString

from crmgraph.db.engine import make_engine
from crmgraph.db.migrate import catalog_apps, migrate
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.settings import Settings

PG_SERVER = os.environ.get("CRMGRAPH_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
IN_CI = os.environ.get("CI", "").lower() == "true"
ENGINES = ("sqlite", "postgres")


def pg_reachable() -> bool:
    return pg_answers(f"{PG_SERVER}/postgres")


def pg_answers(url: str, timeout: float = 3, statement_cache_size: int = 100) -> bool:
    """Whether a PostgreSQL (or a pooler in front of one) at ``url`` accepts
    a connection now."""

    async def probe() -> None:
        conn = await asyncpg.connect(
            url, timeout=timeout, statement_cache_size=statement_cache_size
        )
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


async def pg_admin_async(*statements: str) -> None:
    """Run ``statements`` on the server's ``postgres`` database (CREATE or
    DROP DATABASE), from code already in an event loop."""
    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def pg_admin(*statements: str) -> None:
    asyncio.run(pg_admin_async(*statements))


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test server: no entry-point plugins (only what the test
    names), no migration on start (the fixture migrated), SQL counts exposed."""
    defaults: dict[str, Any] = {
        "load_entry_points": False,
        "migrate_on_start": False,
        "expose_sql_count": True,
        "anonymous": True,  # tests of authentication turn it off
        "rate_limit_cost": 0,  # tests of the rate limit set one
    }
    return Settings(database_url=database_url, **{**defaults, **overrides})


async def migrate_for(settings: Settings) -> None:
    """Migrate the core and every plugin app the settings load."""
    catalog = Catalog.from_plugin_manager(make_plugin_manager(settings))
    await migrate(make_engine(settings), catalog_apps(catalog))


@contextlib.contextmanager
def fresh_postgres_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (a clone of ``template``), dropped afterwards.
    A clone of a template is made ahead, while the test before runs."""
    if template is None:
        name = new_database_name()
        create_database(name)
    else:
        name = _spares.take(template)
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        drop_database_soon(name)


def new_database_name() -> str:
    return f"crmgraph_test_{uuid.uuid4().hex[:10]}"


def create_database(name: str, template: str | None = None) -> None:
    """A new test database (a clone of ``template``) whose commits do not wait
    for the WAL to reach the disk: a test database need not outlive a crash
    of the server, and that fsync (4 to 10 ms a commit on a busy CI disk, 0.3
    without) came thousands of times a run. Transactions, locks and what each
    one sees are the same."""
    clone = f' TEMPLATE "{template}"' if template else ""
    pg_admin(
        f'CREATE DATABASE "{name}"{clone}', f'ALTER DATABASE "{name}" SET synchronous_commit = off'
    )


def drop_database(name: str) -> None:
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Creating and dropping a database each take from a tenth of a second to
# seconds on a busy machine: one thread does both off the tests' path, in
# order; the interpreter waits for it at exit, so none is left behind.
_background = concurrent.futures.ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="crmgraph-databases"
)


def drop_database_soon(name: str) -> None:
    def drop() -> None:
        try:
            drop_database(name)
        except (OSError, asyncpg.PostgresError) as exc:  # a leftover database, not a test failure
            warnings.warn(f"could not drop test database {name}: {exc}", stacklevel=1)

    _background.submit(drop)


class SpareClones:
    """One clone of each template made ahead: a test takes it and the next is
    made in the background while the test runs."""

    def __init__(self) -> None:
        self._ready: dict[str, concurrent.futures.Future[str]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _clone(template: str) -> str:
        name = new_database_name()
        create_database(name, template)
        return name

    def take(self, template: str) -> str:
        with self._lock:
            spare = self._ready.pop(template, None)
            self._ready[template] = _background.submit(self._clone, template)
        if spare is not None:
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                return spare.result()
        return self._clone(template)  # none ready (or it failed): made now

    def discard(self, template: str) -> None:
        """Drop the spare of ``template`` (before the template itself goes)."""
        with self._lock:
            spare = self._ready.pop(template, None)
        if spare is not None:
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                drop_database(spare.result())


_spares = SpareClones()


def drop_template(name: str) -> None:
    """Drop a template database and the clone made ahead from it."""
    _spares.discard(name)
    drop_database(name)


def require_postgres() -> None:
    if not pg_reachable():
        message = f"PostgreSQL is not reachable at {PG_SERVER}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


REDIS_URL = os.environ.get("CRMGRAPH_TEST_REDIS", "redis://127.0.0.1:6379/0")


def require_redis() -> str:
    """The test Redis URL; skips locally and fails in CI when it is not reachable."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        message = f"Redis is not reachable at {REDIS_URL}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


class TemplateDatabases:
    """Migrated databases made once per test session, one per engine and
    plugin set, that each test gets a copy of: a SQLite file copied, a
    PostgreSQL database cloned with ``CREATE DATABASE … TEMPLATE``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sqlite: dict[tuple[str, ...], Path] = {}
        self._postgres: dict[tuple[str, ...], str] = {}

    def sqlite_template(self, plugins: Sequence[str]) -> Path:
        key = tuple(plugins)
        if key not in self._sqlite:
            path = self.directory / f"template-{len(self._sqlite)}.sqlite"
            asyncio.run(migrate_for(settings_for(f"sqlite:///{path}", plugins=key)))
            with sqlite3.connect(path) as conn:  # fold the WAL in: a plain copy is complete
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._sqlite[key] = path
        return self._sqlite[key]

    def postgres_template(self, plugins: Sequence[str]) -> str:
        key = tuple(plugins)
        if key not in self._postgres:
            name = f"crmgraph_tmpl_{uuid.uuid4().hex[:10]}"
            create_database(name)
            self._postgres[key] = name  # dropped by close() even if migrating fails
            asyncio.run(migrate_for(settings_for(f"{PG_SERVER}/{name}", plugins=key)))
        return self._postgres[key]

    @contextlib.contextmanager
    def fresh(self, engine: str, plugins: Sequence[str], path: Path) -> Iterator[str]:
        """A copy of the template: SQLite at ``path``, or a new PostgreSQL database."""
        if engine == "sqlite":
            shutil.copyfile(self.sqlite_template(plugins), path)
            yield f"sqlite:///{path}"
            return
        require_postgres()
        with fresh_postgres_database(self.postgres_template(plugins)) as url:
            yield url

    def close(self) -> None:
        for name in self._postgres.values():
            drop_template(name)


def run_sql(settings: Settings, statement: str, *args: Any) -> list[dict[str, Any]]:
    """Run one statement against the test's database, behind the API's back
    (piccolo ``{}`` placeholders): to look at what a mutation left (an audit
    entry, an event, a plugin's rows) or to set up a state the API refuses."""

    async def run() -> list[dict[str, Any]]:
        rows = await make_engine(settings).run_querystring(QueryString(statement, *args))
        return [dict(row) for row in rows or []]

    return asyncio.run(run())
