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
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import sqlite3
import threading
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import uvicorn
from piccolo.querystring import QueryString

from crmgraph.app import AppState, create_app, with_state
from crmgraph.db.engine import make_engine
from crmgraph.db.migrate import catalog_apps, migrate
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.settings import Settings

PG_SERVER = os.environ.get("CRMGRAPH_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
IN_CI = os.environ.get("CI", "").lower() == "true"
ENGINES = ("sqlite", "postgres")
T = TypeVar("T")


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


class GraphQLFailure(AssertionError):
    pass


class LiveServer:
    """A started crmgraph app (lifespan run, pools open) and an HTTP client for it.

    ``http`` is an ``httpx.Client``; ``url`` is where a real socket serves the
    same app. :func:`live_server` answers ``http`` in process and opens the
    socket only when a test first reads ``url`` (WebSockets, subprocesses,
    raw sockets, clients of its own): most tests never pay for one."""

    def __init__(
        self,
        url: str | None,
        http: httpx.Client,
        engine: str,
        app_loop: AppLoop | None = None,
    ) -> None:
        self._url = url
        self._app_loop = app_loop
        self.http = http
        self.engine = engine

    def run(self, work: Callable[[AppState], Awaitable[T]]) -> T:
        """``work(state)`` on the running app's own state and loop (its pool is
        open): to seed or read the database without starting a second app,
        as :func:`crmgraph.app.with_state` would (a fraction of a second each)."""
        if self._app_loop is None:
            raise RuntimeError("this server's app runs elsewhere: use with_state")
        state = self._app_loop.app.state.crm
        return self._app_loop.call(work(state))

    @property
    def url(self) -> str:
        if self._url is None:
            if self._app_loop is None:
                raise RuntimeError("this server has no socket")
            self._url = self._app_loop.open_socket()
        return self._url

    def post(
        self, query: str, variables: dict[str, Any] | None = None, key: str | None = None
    ) -> dict[str, Any]:
        """``key``: an API key to send (see the ``crmgraph_key`` fixture); without
        one the test server lets the request in as an admin."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    def gql(
        self, query: str, variables: dict[str, Any] | None = None, key: str | None = None
    ) -> dict[str, Any]:
        """Run a query that must succeed; return its ``data``."""
        body = self.post(query, variables, key)
        if body.get("errors"):
            raise GraphQLFailure(body["errors"])
        return body["data"]

    def statements(self, query: str, variables: dict[str, Any] | None = None) -> int:
        body = self.post(query, variables)
        assert not body.get("errors"), body["errors"]
        return body["extensions"]["sqlStatements"]


class AppLoop:
    """One event loop in a daemon thread that runs an ASGI app: its lifespan,
    the requests of an in-process client and, on demand, a uvicorn socket.
    Everything the app opens (pools, listeners, background loops) lives on
    this loop, as it would in ``crmgraph serve``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        # the loop uvicorn would pick (uvloop when installed), as in production
        self.loop = uvicorn.Config(app).get_loop_factory()()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._lifespan: asyncio.Task | None = None
        self._to_app: asyncio.Queue | None = None
        self._from_app: asyncio.Queue | None = None
        self._socket: tuple[uvicorn.Server, asyncio.Task] | None = None

    def call(self, work: Awaitable[T], timeout: float | None = None) -> T:
        """Run ``work`` on the app's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    async def _lifespan_event(self, event: str) -> None:
        assert self._to_app is not None and self._from_app is not None
        await self._to_app.put({"type": f"lifespan.{event}"})
        reply = asyncio.ensure_future(self._from_app.get())
        assert self._lifespan is not None
        await asyncio.wait({reply, self._lifespan}, return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():  # the app returned or raised without answering
            reply.cancel()
            self._lifespan.result()
            raise RuntimeError(f"the app ended its lifespan during {event}")
        message = reply.result()
        if message["type"].endswith(".failed"):
            raise RuntimeError(f"lifespan {event} failed: {message.get('message', '')}")

    async def _start(self) -> None:
        self._to_app, self._from_app = asyncio.Queue(), asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._lifespan = asyncio.ensure_future(
            self.app(scope, self._to_app.get, self._from_app.put)
        )
        await self._lifespan_event("startup")

    async def _stop(self) -> None:
        if self._socket is not None:
            server, task = self._socket
            server.should_exit = True
            await task
        if self._lifespan is not None and not self._lifespan.done():
            await self._lifespan_event("shutdown")
            await self._lifespan
        # what is left (a task a request started), cancelled and awaited as
        # asyncio.run does, so no thread reports back to a closed loop
        current = asyncio.current_task()
        left = [task for task in asyncio.all_tasks() if task is not current]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        await self.loop.shutdown_asyncgens()
        await self.loop.shutdown_default_executor()

    def start(self) -> None:
        self.call(self._start(), timeout=60)

    async def _describe_tasks(self) -> str:
        """Where each task on the loop waits: the message of a stop that hung."""
        stacks = []
        for task in asyncio.all_tasks():
            if task is asyncio.current_task():
                continue
            stacks.append(f"{task.get_name()}: {' -> '.join(awaiting(task.get_coro()))}")
        return "\n".join(stacks)

    def stop(self) -> None:
        try:
            self.call(self._stop(), timeout=60)
        except concurrent.futures.TimeoutError:
            tasks = self.call(self._describe_tasks(), timeout=10)
            raise RuntimeError(f"the app did not stop within 60 s; its tasks:\n{tasks}") from None
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()

    async def _open_socket(self) -> str:
        # lifespan off: the app's lifespan already runs on this loop
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve())
        self._socket = (server, task)
        deadline = time.monotonic() + 30
        while not server.started:  # polled with a deadline, not a timed wait
            if task.done():
                task.result()
                raise RuntimeError("test server did not start")
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def open_socket(self) -> str:
        """Serve the app on a real uvicorn socket too (once); its URL."""
        return self.call(self._open_socket(), timeout=60)

    def transport(self) -> httpx.BaseTransport:
        return InProcessTransport(self)


def awaiting(coro: Any) -> list[str]:
    """The chain of coroutines ``coro`` awaits, outermost first (a task's own
    stack stops at its first frame)."""
    chain = []
    while coro is not None and getattr(coro, "cr_frame", None) is not None:
        frame = coro.cr_frame
        chain.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})")
        coro = coro.cr_await
    return chain


class InProcessTransport(httpx.BaseTransport):
    """A synchronous httpx transport that hands each request to the app on its
    loop through httpx's ASGITransport: no socket, no HTTP parsing, the same
    app, middleware and lifespan state as behind uvicorn."""

    def __init__(self, app_loop: AppLoop) -> None:
        self.app_loop = app_loop
        # an app fault answers 500 as behind a server, instead of raising here
        self.asgi = httpx.ASGITransport(
            app_loop.app, raise_app_exceptions=False, client=("127.0.0.1", 50000)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the body as bytes, readable from the app's loop

        async def exchange() -> httpx.Response:
            response = await self.asgi.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return self.app_loop.call(exchange())


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
        pg_admin(f'CREATE DATABASE "{name}"')
    else:
        name = _spares.take(template)
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        drop_database_soon(name)


def new_database_name() -> str:
    return f"crmgraph_test_{uuid.uuid4().hex[:10]}"


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
        pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
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


@pytest.fixture
def crmgraph_plugins() -> Sequence[str]:
    """Plugin modules to load besides the built-ins (override in your conftest)."""
    return ()


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
            pg_admin(f'CREATE DATABASE "{name}"')
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
    from crmgraph import auth

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


@contextlib.contextmanager
def live_server(settings: Settings, socket: bool = False) -> Iterator[LiveServer]:
    """The app ``crmgraph serve`` builds for ``settings``, started (lifespan and
    all) on its own loop: ``http`` answers in process; reading ``url`` (or
    ``socket=True``) puts a real uvicorn socket in front of the same app."""
    app_loop = AppLoop(create_app(settings))
    engine = "sqlite" if settings.is_sqlite else "postgres"
    try:
        app_loop.start()
        url = app_loop.open_socket() if socket else None
        transport = app_loop.transport()
        with httpx.Client(transport=transport, base_url="http://127.0.0.1", timeout=60) as http:
            yield LiveServer(url, http, engine, app_loop)
    finally:
        app_loop.stop()


@contextlib.contextmanager
def uvicorn_server(settings: Settings) -> Iterator[LiveServer]:
    """A real uvicorn server in a thread of its own, ``http`` over its socket:
    for the few tests where the server itself (not only the app) is under test."""
    running = start_server(settings)
    engine = "sqlite" if settings.is_sqlite else "postgres"
    try:
        with httpx.Client(base_url=running.url, timeout=60) as http:
            yield LiveServer(running.url, http, engine)
    finally:
        running.stop()


def run_sql(settings: Settings, statement: str, *args: Any) -> list[dict[str, Any]]:
    """Run one statement against the test's database, behind the API's back
    (piccolo ``{}`` placeholders): to look at what a mutation left (an audit
    entry, an event, a plugin's rows) or to set up a state the API refuses."""

    async def run() -> list[dict[str, Any]]:
        rows = await make_engine(settings).run_querystring(QueryString(statement, *args))
        return [dict(row) for row in rows or []]

    return asyncio.run(run())
