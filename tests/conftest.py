"""Fixtures: a fresh database per test on each engine (SQLite file, real
PostgreSQL), and a real uvicorn server on 127.0.0.1 in front of it."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from crmgraph.app import create_app
from crmgraph.db.engine import make_engine
from crmgraph.db.migrate import migrate
from crmgraph.settings import Settings

PG_SERVER = os.environ.get("CRMGRAPH_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
IN_CI = os.environ.get("CI", "").lower() == "true"


def pg_reachable() -> bool:
    async def probe() -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def pg_admin(*statements: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    asyncio.run(migrate(make_engine(Settings(database_url=f"sqlite:///{path}"))))
    with sqlite3.connect(path) as conn:  # fold the WAL in so a plain copy is complete
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    if not pg_reachable():
        message = f"PostgreSQL is not reachable at {PG_SERVER}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    name = f"crmgraph_tmpl_{uuid.uuid4().hex[:10]}"
    pg_admin(f'CREATE DATABASE "{name}"')
    asyncio.run(migrate(make_engine(Settings(database_url=f"{PG_SERVER}/{name}"))))
    yield name
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test, on each engine in turn."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "crm.sqlite"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"crmgraph_test_{uuid.uuid4().hex[:10]}"
    pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield f"{PG_SERVER}/{name}"
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings_for(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        load_entry_points=False,
        migrate_on_start=False,
        expose_sql_count=True,
        **overrides,
    )


class GraphQLFailure(AssertionError):
    pass


@dataclass
class LiveServer:
    """A real uvicorn server on 127.0.0.1 and an HTTP client for it."""

    url: str
    http: httpx.Client
    engine: str

    def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        assert response.status_code == 200, response.text
        return response.json()

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a query that must succeed; return its ``data``."""
        body = self.post(query, variables)
        if body.get("errors"):
            raise GraphQLFailure(body["errors"])
        return body["data"]

    def statements(self, query: str, variables: dict[str, Any] | None = None) -> int:
        body = self.post(query, variables)
        assert not body.get("errors"), body["errors"]
        return body["extensions"]["sqlStatements"]


@dataclass
class RunningServer:
    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(settings: Settings) -> RunningServer:
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # a condition polled with a deadline, not a timed wait
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return RunningServer(server, thread, f"http://127.0.0.1:{port}")


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    running = start_server(settings_for(database_url))
    engine = "sqlite" if database_url.startswith("sqlite") else "postgres"
    with httpx.Client(base_url=running.url, timeout=60) as http:
        yield LiveServer(running.url, http, engine)
    running.stop()
