"""A crmgraph app started for tests: on an event loop of its own in a daemon
thread, answered in process (:class:`LiveServer`) and, on demand, behind a real
uvicorn socket, or a whole uvicorn server in a thread. Part of
crmgraph.testing, whose names these are."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import uvicorn

from crmgraph.app import AppState, create_app
from crmgraph.settings import Settings

T = TypeVar("T")


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
