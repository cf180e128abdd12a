"""Run piccolo migrations for the core app and every plugin app, programmatically;
build the migrations that only run SQL (:func:`raw_migration`) or only add
indexes (:func:`index_migration`, which on PostgreSQL leaves the tables open
to writes while the indexes build)."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import AppRegistry
from piccolo.engine import engine_finder
from piccolo.engine.base import Engine
from piccolo.table import Table

from crmgraph.db.engine import bind_tables, enable_wal
from crmgraph.plugin_errors import PluginError

CORE_APP = "crmgraph.db.piccolo_app"
os.environ.setdefault("PICCOLO_CONF", "crmgraph.db.piccolo_conf")


# A raw migration's statements: the same on every engine, or per engine type
# ("sqlite", "postgres"), computed when the step runs.
Statements = Sequence[str] | Callable[[str], Sequence[str]]


class MigrationError(RuntimeError):
    pass


class DeclaresApps(Protocol):
    """What the migrations need of the plugins' catalog
    (:class:`crmgraph.registry.Catalog`, a layer above the data)."""

    @property
    def piccolo_apps(self) -> tuple[str, ...]: ...


def catalog_apps(catalog: DeclaresApps) -> tuple[str, ...]:
    """The piccolo app modules plugins declared, to migrate after the core."""
    return catalog.piccolo_apps


def plugin_tables(catalog: DeclaresApps) -> list[type[Table]]:
    tables: list[type[Table]] = []
    for module_path in catalog.piccolo_apps:
        try:
            module = importlib.import_module(module_path)
        except ImportError as exc:
            raise PluginError(module_path, f"piccolo app cannot be imported: {exc}") from exc
        tables.extend(module.APP_CONFIG.table_classes)
    return tables


async def migrate(engine: Engine, app_modules: Sequence[str] = (), quiet: bool = True) -> None:
    """Bring the database behind ``engine`` up to date: the core app first, then
    each plugin app (``app_modules`` name their piccolo_app modules)."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from crmgraph.db import piccolo_conf

    if engine.engine_type == "sqlite":
        enable_wal(engine.path)  # type: ignore[attr-defined]
    apps = [CORE_APP, *[m for m in app_modules if m != CORE_APP]]
    piccolo_conf.DB = engine
    piccolo_conf.APP_REGISTRY = AppRegistry(apps=apps)
    bind_tables(engine, [Migration])
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
        result = await run_forwards(app_name="all")
    if not result.success:
        raise MigrationError(f"migrations failed: {result.message}\n{sink.getvalue()}")


def raw_migration(
    migration_id: str, description: str, create: Statements, drop: Statements
) -> Callable[[], Awaitable[MigrationManager]]:
    """The ``forwards`` of a core migration that only runs SQL: ``create``'s
    statements in order, and ``drop``'s when it is reversed, each through the
    engine piccolo finds (``piccolo_conf.DB``)."""

    async def forwards() -> MigrationManager:
        manager = MigrationManager(
            migration_id=migration_id, app_name="crmgraph", description=description
        )

        # coroutine functions, not lambdas: piccolo awaits only those
        async def forward_step() -> None:
            await run_statements(create)

        async def backward_step() -> None:
            await run_statements(drop)

        manager.add_raw(forward_step)
        manager.add_raw_backwards(backward_step)
        return manager

    return forwards


@dataclass(frozen=True)
class Index:
    """One index a migration adds: ``definition`` is what follows ``ON table``
    (the columns, ``USING gin (...)``, a ``WHERE``); ``postgres_only`` for an
    index SQLite has no use for (its searches go through FTS5 tables);
    ``statistics``: PostgreSQL's statistics target for its first column (an
    expression's), set before the table is analysed."""

    name: str
    table: str
    definition: str
    postgres_only: bool = False
    statistics: int | None = None

    def create(self, engine_type: str) -> str:
        concurrently = " CONCURRENTLY" if engine_type == "postgres" else ""
        return (
            f"CREATE INDEX{concurrently} IF NOT EXISTS {self.name} "
            f"ON {self.table} {self.definition}"
        )

    def tuned(self, engine_type: str) -> list[str]:
        """What follows its creation: its statistics target, on PostgreSQL."""
        if engine_type != "postgres" or self.statistics is None:
            return []
        return [f"ALTER INDEX {self.name} ALTER COLUMN 1 SET STATISTICS {self.statistics}"]


async def drop_indexes(indexes: Sequence[Index]) -> None:
    """Drop each index if it exists (``CONCURRENTLY`` on PostgreSQL: a running
    server's writes do not wait; the migration runs outside a transaction)."""
    engine = engine_finder()
    concurrently = " CONCURRENTLY" if engine.engine_type == "postgres" else ""
    for index in indexes:
        await engine.run_ddl(f"DROP INDEX{concurrently} IF EXISTS {index.name}")


def raw_steps(
    migration_id: str,
    description: str,
    forward: Callable[[], Awaitable[None]],
    backward: Callable[[], Awaitable[None]],
) -> MigrationManager:
    """A core migration of one raw step each way, outside a transaction (an
    index built or dropped ``CONCURRENTLY`` on PostgreSQL cannot be in one)."""
    manager = MigrationManager(
        migration_id=migration_id,
        app_name="crmgraph",
        description=description,
        wrap_in_transaction=False,
    )
    manager.add_raw(forward)
    manager.add_raw_backwards(backward)
    return manager


def dropping_indexes(
    migration_id: str,
    description: str,
    indexes: Sequence[Index],
    piccolo_indexed: Sequence[tuple[str, str, str]],
) -> MigrationManager:
    """A migration that drops ``indexes`` (built again when it is reversed)
    outside a transaction, and records ``index`` false for the piccolo
    columns (table class, table, column) that had made some of them, after
    the raw steps: piccolo's own DROP INDEX IF EXISTS (and, reversed, its
    CREATE INDEX IF NOT EXISTS) then finds its work done."""

    async def forward_step() -> None:
        await drop_indexes(indexes)

    async def backward_step() -> None:
        await build_indexes(indexes, ())

    manager = raw_steps(migration_id, description, forward_step, backward_step)
    for class_name, table, column in piccolo_indexed:
        manager.alter_column(
            table_class_name=class_name,
            tablename=table,
            column_name=column,
            params={"index": False},
            old_params={"index": True},
        )
    return manager


# an index a CREATE INDEX CONCURRENTLY left behind when it failed or was
# stopped: it exists, so IF NOT EXISTS would keep it, but no query can use it
INVALID_INDEXES = (
    "SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE NOT i.indisvalid AND c.relname IN ({names})"
)


async def build_indexes(indexes: Sequence[Index], before: Statements) -> None:
    """``before``'s statements, then each index (built again when an earlier
    build left it invalid), then ANALYZE of their tables on PostgreSQL."""
    engine = engine_finder()
    postgres = engine.engine_type == "postgres"
    await run_statements(before)
    wanted = [i for i in indexes if postgres or not i.postgres_only]
    if postgres and wanted:
        names = ", ".join(f"'{i.name}'" for i in wanted)
        for row in await engine.run_ddl(INVALID_INDEXES.format(names=names)):
            await engine.run_ddl(f"DROP INDEX CONCURRENTLY IF EXISTS {row['name']}")
    for index in wanted:
        await engine.run_ddl(index.create(engine.engine_type))
        await run_statements(index.tuned(engine.engine_type))
    if postgres:
        for table in dict.fromkeys(i.table for i in wanted):
            await engine.run_ddl(f"ANALYZE {table}")


def index_migration(
    migration_id: str,
    description: str,
    indexes: Sequence[Index],
    before: Statements = (),
    after_drop: Statements = (),
) -> Callable[[], Awaitable[MigrationManager]]:
    """The ``forwards`` of a core migration that adds ``indexes`` (after
    ``before``'s statements, e.g. the function an index expression calls).

    Outside a transaction, so that on PostgreSQL each index is built
    ``CONCURRENTLY``: a plain ``CREATE INDEX`` holds a lock that stops every
    write to the table until it is built, minutes for a GIN index over a
    million customers, while a running server (or the previous version's,
    during a rolling upgrade) keeps taking writes. Each statement is
    idempotent, so a migration stopped half way runs again whole. Reversed,
    it drops the indexes, then runs ``after_drop``."""

    async def forwards() -> MigrationManager:
        async def forward_step() -> None:
            await build_indexes(indexes, before)

        async def backward_step() -> None:
            await run_statements([f"DROP INDEX IF EXISTS {i.name}" for i in indexes])
            await run_statements(after_drop)

        return raw_steps(migration_id, description, forward_step, backward_step)

    return forwards


async def run_statements(statements: Statements) -> None:
    engine = engine_finder()
    listed = statements(engine.engine_type) if callable(statements) else statements
    for statement in listed:
        await engine.run_ddl(statement)


def postgres_only(statements: Sequence[str]) -> Callable[[str], list[str]]:
    """``statements`` on PostgreSQL, nothing on SQLite."""

    def for_engine(engine_type: str) -> list[str]:
        return list(statements) if engine_type == "postgres" else []

    return for_engine


def analyzed(statements: Sequence[str], *tables: str) -> Callable[[str], list[str]]:
    """``statements`` on both engines, then on PostgreSQL ``ANALYZE`` of each of
    ``tables``, so its planner weighs a new index with fresh statistics."""

    def for_engine(engine_type: str) -> list[str]:
        if engine_type != "postgres":
            return list(statements)
        return [*statements, *(f"ANALYZE {table}" for table in tables)]

    return for_engine
