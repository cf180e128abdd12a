"""Test fixtures crmgraph ships for its own suite and for plugin authors.

A pytest plugin you opt into (installing crmgraph loads nothing into other
pytest runs): a plugin package's ``pyproject.toml`` says

    [tool.pytest.ini_options]
    addopts = "-p crmgraph.testing"

(or its root ``conftest.py`` says ``pytest_plugins = ["crmgraph.testing"]``),
and its ``conftest.py``::

    @pytest.fixture
    def crmgraph_plugins():
        return ["my_plugin.plugin"]          # modules to load besides the built-ins

Then a test takes ``crmgraph_client`` — the app ``crmgraph serve`` builds,
started in process over a fresh, migrated SQLite file (or PostgreSQL: set
``CRMGRAPH_TEST_DATABASE=postgres``) with the plugin loaded — and calls
``crmgraph_client.gql(query, variables)``. ``crmgraph_server`` is the same
behind a real uvicorn socket at ``.url``, for tests of WebSockets or of
clients of their own. Databases are copies of a template migrated once per
session (per engine and plugin set).

The fixtures are defined here; the test servers (crmgraph.testing.servers)
and the databases (crmgraph.testing.databases) are modules of their own, and
every name of the three is importable from ``crmgraph.testing``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from crmgraph import auth
from crmgraph.app import AppState, with_state
from crmgraph.conformance import assert_conforms, check_plugin
from crmgraph.settings import Settings
from crmgraph.testing.databases import (
    ENGINES,
    IN_CI,
    PG_SERVER,
    REDIS_URL,
    SpareClones,
    TemplateDatabases,
    drop_database,
    drop_database_soon,
    drop_template,
    fresh_postgres_database,
    migrate_for,
    new_database_name,
    pg_admin,
    pg_admin_async,
    pg_reachable,
    require_postgres,
    require_redis,
    run_sql,
    settings_for,
)
from crmgraph.testing.servers import (
    AppLoop,
    GraphQLFailure,
    InProcessTransport,
    LiveServer,
    RunningServer,
    awaiting,
    live_server,
    start_server,
    uvicorn_server,
)

__all__ = [
    "ENGINES",
    "IN_CI",
    "PG_SERVER",
    "REDIS_URL",
    "AppLoop",
    "GraphQLFailure",
    "InProcessTransport",
    "LiveServer",
    "RunningServer",
    "SpareClones",
    "TemplateDatabases",
    "assert_conforms",
    "awaiting",
    "check_plugin",
    "crmgraph_client",
    "crmgraph_database_url",
    "crmgraph_key",
    "crmgraph_plugins",
    "crmgraph_server",
    "crmgraph_settings",
    "crmgraph_templates",
    "drop_database",
    "drop_database_soon",
    "drop_template",
    "fresh_postgres_database",
    "live_server",
    "migrate_for",
    "new_database_name",
    "new_user_key",
    "pg_admin",
    "pg_admin_async",
    "pg_reachable",
    "require_postgres",
    "require_redis",
    "run_sql",
    "settings_for",
    "start_server",
    "user_key",
    "uvicorn_server",
]


@pytest.fixture
def crmgraph_plugins() -> Sequence[str]:
    """Plugin modules to load besides the built-ins (override in your conftest)."""
    return ()


@pytest.fixture(scope="session")
def crmgraph_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemplateDatabases]:
    templates = TemplateDatabases(tmp_path_factory.mktemp("crmgraph-templates"))
    yield templates
    templates.close()


@pytest.fixture
def crmgraph_database_url(
    crmgraph_templates: TemplateDatabases, crmgraph_plugins: Sequence[str], tmp_path: Path
) -> Iterator[str]:
    """A fresh, migrated database (the plugins' tables included) for one test:
    a SQLite file, or a PostgreSQL database when ``CRMGRAPH_TEST_DATABASE=postgres``."""
    engine = os.environ.get("CRMGRAPH_TEST_DATABASE") or "sqlite"
    if engine not in ENGINES:
        raise pytest.UsageError(f"CRMGRAPH_TEST_DATABASE must be one of {ENGINES}")
    with crmgraph_templates.fresh(engine, crmgraph_plugins, tmp_path / "crm.sqlite") as url:
        yield url


@pytest.fixture
def crmgraph_settings(crmgraph_database_url: str, crmgraph_plugins: Sequence[str]) -> Settings:
    return settings_for(crmgraph_database_url, plugins=tuple(crmgraph_plugins))


@pytest.fixture
def crmgraph_client(crmgraph_settings: Settings) -> Iterator[LiveServer]:
    """The app with the test's plugins, started in process: ``gql``, ``post``
    and ``http`` need no socket (reading ``url`` opens one)."""
    with live_server(crmgraph_settings) as client:
        yield client


@pytest.fixture
def crmgraph_server(crmgraph_settings: Settings) -> Iterator[LiveServer]:
    """The app with the test's plugins behind a real uvicorn socket on
    127.0.0.1 (``url``), for WebSocket clients and clients of a test's own."""
    with live_server(crmgraph_settings, socket=True) as server:
        yield server


@pytest.fixture
def crmgraph_key(
    crmgraph_settings: Settings, request: pytest.FixtureRequest
) -> Callable[[str], str]:
    """``crmgraph_key("agent")``: an API key of a new user with that role, to
    pass as ``key=`` to ``LiveServer.post``/``gql`` (roles: admin, manager,
    agent, viewer). Made through the test's running app when it has one."""

    def make(role: str, teams: Sequence[str] = ()) -> str:
        for name in ("crmgraph_client", "crmgraph_server"):
            if name in request.fixturenames:
                running: LiveServer = request.getfixturevalue(name)
                return running.run(lambda state: new_user_key(state, role, teams))
        return asyncio.run(user_key(crmgraph_settings, role, teams))

    return make


async def new_user_key(state: AppState, role: str, teams: Sequence[str] = ()) -> str:
    """A new user with ``role`` (in ``teams``, created if missing) and a key for them."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@test.example"
    await auth.create_user(state.db, f"Test {role}", email, role)
    for team in teams:
        if not await state.db.fetch("SELECT id FROM team WHERE name = {}", team):
            await auth.create_team(state.db, team)
        await auth.add_team_member(state.db, team, email)
    return await auth.create_key(state.db, email, "test")


async def user_key(settings: Settings, role: str, teams: Sequence[str] = ()) -> str:
    """:func:`new_user_key` through an app state of its own, started and stopped."""
    return await with_state(settings, lambda state: new_user_key(state, role, teams))
