"""Small GraphQL helpers shared by the API tests, a writer of customers with a
chosen history, and headless Chromium for the browser tests."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib.util
import io
import itertools
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from crmgraph import auth
from crmgraph import cli as crmgraph_cli
from crmgraph.analytics import scores
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import AppState, with_state
from crmgraph.db import activity, queries, stays, writes
from crmgraph.db.engine import Database
from crmgraph.dedupe import matching
from crmgraph.demo import seed_demo
from crmgraph.schema.ids import decode_id, encode_id
from crmgraph.settings import Settings
from crmgraph.testing import live_server, migrate_for, settings_for
from tests.conftest import LiveServer

CHROMIUM = os.environ.get("CRMGRAPH_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
POLL_INTERVAL = 0.1

T = TypeVar("T")

CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    customer { id name email phone version kind stage phase ... on Client { segment industry } }
    userErrors { field message code }
  }
}
"""


@dataclass
class Caller:
    """One API key against a live server."""

    server: LiveServer
    key: str

    def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.server.post(query, variables, key=self.key)

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.post(query, variables)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def mutate(self, name: str, values: dict[str, Any], out: str = "") -> dict[str, Any]:
        input_type = name[0].upper() + name[1:] + "Input"
        query = (
            f"mutation($input: {input_type}!) {{ {name}(input: $input) "
            f"{{ {out} userErrors {{ field message code }} }} }}"
        )
        return self.data(query, {"input": values})[name]


def create_customer(server: LiveServer, **fields: Any) -> dict[str, Any]:
    payload = server.gql(CREATE, {"input": {"kind": "CLIENT", **fields}})["createCustomer"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["customer"]


def log_interaction(server: LiveServer, customer_id: str, **fields: Any) -> dict[str, Any]:
    data = server.gql(
        """mutation($input: LogInteractionInput!) {
          logInteraction(input: $input) {
            interaction { id channel direction occurredAt subject satisfaction amount }
            userErrors { field message code }
          }
        }""",
        {
            "input": {
                "customerId": customer_id,
                "channel": "EMAIL",
                "direction": "INBOUND",
                "subject": "hello",
                **fields,
            }
        },
    )["logInteraction"]
    assert data["userErrors"] == [], data["userErrors"]
    return data["interaction"]


def add_contact(server: LiveServer, customer_id: str, **fields: Any) -> dict[str, Any]:
    data = server.gql(
        """mutation($input: AddContactInput!) {
          addContact(input: $input) { contact { id name email phone isPrimary } userErrors { field message code } }
        }""",
        {"input": {"customerId": customer_id, "name": "Ana García", **fields}},
    )["addContact"]
    assert data["userErrors"] == [], data["userErrors"]
    return data["contact"]


def record_need(server: LiveServer, customer_id: str, **fields: Any) -> dict[str, Any]:
    data = server.gql(
        """mutation($input: RecordNeedInput!) {
          recordNeed(input: $input) { need { id title status priority } userErrors { field message code } }
        }""",
        {"input": {"customerId": customer_id, "title": "Quarterly supply", **fields}},
    )["recordNeed"]
    assert data["userErrors"] == [], data["userErrors"]
    return data["need"]


AUDIT_TRAIL = """query($id: ID!, $first: Int, $after: String) {
  auditTrail(customerId: $id, first: $first, after: $after) {
    edges { cursor node { action entityType entityId changes { field old new } } }
    pageInfo { hasNextPage endCursor } } }"""


def audit_trail(server: LiveServer, customer_id: str, page_size: int) -> list[dict[str, Any]]:
    """A customer's whole audit trail, oldest first, read ``page_size`` entries a page."""
    entries: list[dict[str, Any]] = []
    after = None
    while True:
        variables = {"id": customer_id, "first": page_size, "after": after}
        conn = server.gql(AUDIT_TRAIL, variables)["auditTrail"]
        entries += [edge["node"] for edge in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return entries
        after = conn["pageInfo"]["endCursor"]


def count_customers(server: LiveServer, deleted: str = "ALL") -> int:
    return server.gql(
        "query($d: DeletedState!) { customers(filter: {deleted: $d}) { totalCount } }",
        {"d": deleted},
    )["customers"]["totalCount"]


async def add_people(
    state: AppState, people: dict[str, str], domain: str
) -> tuple[dict[str, str], dict[str, int]]:
    """Users ``people`` (name -> role, e-mail name@domain) with an API key
    each: (name -> key, name -> user pk)."""
    keys, users = {}, {}
    for name, role in people.items():
        email = f"{name}@{domain}"
        users[name] = await auth.create_user(state.db, name.title(), email, role)
        keys[name] = await auth.create_key(state.db, email, "test")
    return keys, users


def api_keys(url: str, people: dict[str, str], domain: str) -> dict[str, str]:
    """The API keys of ``people`` (see add_people), made in ``url``'s database."""

    async def run(state: AppState) -> dict[str, str]:
        return (await add_people(state, people, domain))[0]

    return asyncio.run(with_state(settings_for(url), run))


def people_and_red(
    url: str, people: dict[str, str], domain: str
) -> tuple[dict[str, str], dict[str, int], int]:
    """``people`` (see add_people) and the team Red holding the user
    ``agent``: (keys, user pks, Red's pk)."""

    async def run(state: AppState) -> tuple[dict[str, str], dict[str, int], int]:
        keys, users = await add_people(state, people, domain)
        red = await auth.create_team(state.db, "Red")
        await auth.add_team_member(state.db, "Red", f"agent@{domain}")
        return keys, users, red

    return asyncio.run(with_state(settings_for(url), run))


def require(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI: there the prerequisites are installed by .ci/run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


def require_loyalty() -> None:
    """The crmgraph-loyalty plugin is installed (see require)."""
    require(
        importlib.util.find_spec("crmgraph_loyalty") is not None,
        "crmgraph-loyalty is not installed: pip install -e plugins/crmgraph-loyalty",
    )


async def insert_customer(
    state: AppState,
    name: str,
    created: datetime.datetime,
    history: Sequence[tuple[str, str, datetime.datetime]],
    owner: int | None = None,
) -> int:
    """A customer as the CRM writes it, at the times given (the API stamps "now"):
    its row, typed by the last type in ``history`` (kind, stage, entered at), the
    stage history, and a role per type held, at the last stage entered in it."""
    db = state.db
    pk = await writes.insert(db, "customer", {
        "kind": history[-1][0], "name": name, "owner": owner, "attributes": "{}",
        "version": 1, "created_at": created, "updated_at": history[-1][2],
    })  # fmt: skip
    last: dict[str, tuple[str, datetime.datetime]] = {}
    for kind, stage, when in history:
        await writes.insert(db, "stage_change", {
            "customer": pk, "kind": kind, "to_stage": stage, "at": when,
            "from_stage": last[kind][0] if kind in last else None,
        })  # fmt: skip
        last[kind] = (stage, when)
    await stays.record_stays(db, [pk])
    await matching.refresh_match_keys(db, [pk])  # as every customer write keeps them
    for kind, (stage, when) in last.items():
        descriptor = state.catalog.customer_type(kind)
        assert descriptor is not None
        phase = descriptor.lifecycle.stage(stage).phase.value  # type: ignore[union-attr]
        await writes.insert(db, "customer_role", {
            "customer": pk, "kind": kind, "stage": stage, "phase": phase, "entered_at": when,
        })  # fmt: skip
    return pk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float) -> None:
    """Terminate ``process``; kill it if it has not exited within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


@contextlib.contextmanager
def server_process(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """``crmgraph serve`` in its own process (with ``env``; output to ``log``),
    ready to answer; stopped afterwards unless the test already ended it."""
    port = free_port()
    with log.open("a") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "crmgraph", "serve", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url, log.read_text, attempts=600)
        yield process, url
    finally:
        if process.poll() is None:
            stop(process, 30)


def wait_ready(
    process: subprocess.Popen, url: str, output: Callable[[], str], attempts: int
) -> None:
    """Poll ``url``'s /readyz until it answers 200; should ``process`` exit
    first, fail with its ``output()``."""

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{output()}")
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    poll(f"{url}/readyz", ready, attempts=attempts)


def poll(what: str, probe: Callable[[], T | None], attempts: int = 300) -> T:
    """Call ``probe`` until it returns something truthy, at most ``attempts`` times."""
    for _ in range(attempts):
        result = probe()
        if result:
            return result
        time.sleep(POLL_INTERVAL)
    raise AssertionError(f"timed out waiting for {what}")


class DevTools:
    """A minimal synchronous Chrome DevTools Protocol client for one page target."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if message.get("id") == message_id:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element, as a person would."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                type=kind, x=box["x"], y=box["y"], button="left", clickCount=1,
            )  # fmt: skip


@contextlib.contextmanager
def chromium(directory: Path) -> Iterator[DevTools]:
    """Debian's headless Chromium with its profile and log in ``directory``, driven
    over the DevTools protocol (Page, Runtime and Network events enabled); it
    skips locally and fails in CI when Chromium is missing."""
    require(
        shutil.which(CHROMIUM) is not None,
        f"{CHROMIUM} is missing: apt-get install chromium",
    )
    profile = directory / "chromium-profile"
    profile.mkdir()
    log = (directory / "chromium.log").open("w+")
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--disable-dev-shm-usage", "--window-size=1280,900",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def debug_port() -> int | None:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"chromium exited with {process.returncode}:\n{log.read()}")
            active = profile / "DevToolsActivePort"  # written once it listens
            lines = active.read_text().split() if active.is_file() else []
            return int(lines[0]) if lines else None

        port = poll("Chromium's DevTools port", debug_port)

        def page_target() -> str | None:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
            except httpx.TransportError:
                return None
            pages = [t for t in targets if t.get("type") == "page"]
            return pages[0]["webSocketDebuggerUrl"] if pages else None

        with connect(poll("a page target", page_target), max_size=None, open_timeout=30) as ws:
            devtools = DevTools(ws)
            devtools.send("Page.enable")
            devtools.send("Runtime.enable")
            devtools.send("Network.enable")
            try:
                yield devtools
            finally:
                # the connection may drop as the browser goes away
                with contextlib.suppress(Exception):
                    devtools.send("Browser.close", timeout=10)
    finally:
        try:
            process.wait(timeout=15)  # Browser.close asked it to exit
        except subprocess.TimeoutExpired:
            stop(process, 15)
        log.close()


def pk(gid: str) -> int:
    """The primary key inside a Relay global ID."""
    return decode_id(gid)[1]


def codes(payload: dict[str, Any]) -> list[tuple[str | None, str]]:
    """A mutation payload's userErrors as (field, code) pairs."""
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


@dataclass
class RoleWorld:
    """A live server with one user and API key per role, and its database:
    for tests that act as each role through GraphQL and check rows in SQL."""

    server: LiveServer
    settings: Settings
    keys: dict[str, str]  # role -> API key
    users: dict[str, str]  # role -> User global ID

    @classmethod
    @contextlib.contextmanager
    def serving(
        cls,
        database_url: str,
        plugins: Sequence[str],
        roles: Sequence[str],
        domain: str,
        **overrides: Any,
    ) -> Iterator[Self]:
        """``overrides``: more settings (``grants``…)."""
        settings = settings_for(database_url, anonymous=False, plugins=plugins, **overrides)
        asyncio.run(migrate_for(settings))  # plugins' own tables

        async def people(state: AppState) -> tuple[dict[str, str], dict[str, int]]:
            return await add_people(state, {role: role for role in roles}, domain)

        keys, users = asyncio.run(with_state(settings, people))
        with live_server(settings) as server:
            ids = {role: encode_id("User", pk) for role, pk in users.items()}
            yield cls(server, settings, keys, ids)

    def post(self, query: str, variables: dict[str, Any] | None = None, role: str = "admin") -> Any:
        return self.server.post(query, variables, key=self.keys[role])

    def data(self, query: str, variables: dict[str, Any] | None = None, role: str = "admin") -> Any:
        body = self.post(query, variables, role)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def mutate(self, name: str, values: dict[str, Any], out: str = "", role: str = "admin") -> Any:
        input_type = name[0].upper() + name[1:] + "Input"
        query = (
            f"mutation($input: {input_type}!) {{ {name}(input: $input) "
            f"{{ {out} userErrors {{ field message code }} }} }}"
        )
        return self.data(query, {"input": values}, role)[name]

    def ok(self, name: str, values: dict[str, Any], out: str = "", role: str = "admin") -> Any:
        payload = self.mutate(name, values, out, role)
        assert payload["userErrors"] == [], payload["userErrors"]
        return payload

    def run(self, work: Callable[[AppState], Awaitable[T]]) -> T:
        """``work(state)`` on the live app's own state (no second app to build)."""
        return self.server.run(work)

    def sql(self, query: str, *args: Any) -> list[dict[str, Any]]:
        async def fetch(state: AppState) -> list[dict[str, Any]]:
            return await state.db.fetch(query, *args)

        return self.run(fetch)

    def create(self, name: str, **fields: Any) -> str:
        out = "customer { id }"
        made = self.ok("createCustomer", {"kind": "CLIENT", "name": name, **fields}, out)
        return made["customer"]["id"]

    def version(self, gid: str) -> int:
        return self.sql("SELECT version FROM customer WHERE id = {}", pk(gid))[0]["version"]


# ---------------------------------------------------------------------------
# Analytics reports counted again in Python

# the calendar buckets' labels, as strftime formats
BUCKET_FORMATS = {"DAY": "%Y-%m-%d", "MONTH": "%Y-%m", "YEAR": "%Y"}


def in_scope(customer: dict[str, Any], q: queries.CustomerQuery) -> bool:
    """Whether a customer row is among ``q``'s customers (deleted state, types, owners)."""
    if (customer["deleted_at"] is None) != (q.deleted == "ACTIVE") and q.deleted != "ALL":
        return False
    if q.kinds and customer["kind"] not in q.kinds:
        return False
    return not (q.owner_ids and customer["owner"] not in q.owner_ids)


RECOUNT_NOW = datetime.datetime(2026, 11, 18, 15, 30, tzinfo=datetime.UTC)
# a period starting and ending inside a day, in the past
CUT_START = RECOUNT_NOW - datetime.timedelta(days=200, hours=7, minutes=13)
CUT_END = RECOUNT_NOW - datetime.timedelta(days=20, hours=3)

Scope = tuple[queries.CustomerQuery, datetime.datetime | None, datetime.datetime]


async def recount_world(state: AppState, counted: str) -> tuple[list[Scope], int]:
    """Demo data in which 12 of the customers with interactions where
    ``counted`` is set are deleted (the rows a report over every active
    customer leaves out), and the scopes a recount checks: every active
    customer over all time and over a cut period, all, deleted, a type, an
    owner; with that owner's id."""
    db = state.db
    await seed_demo(db, state.catalog, customers=300, now=RECOUNT_NOW)
    await db.fetch(
        "UPDATE customer SET deleted_at = updated_at WHERE id IN (SELECT DISTINCT "
        f"customer FROM interaction WHERE {counted} IS NOT NULL ORDER BY customer LIMIT 12)"
    )
    owner = (await db.fetch("SELECT MIN(owner) AS o FROM customer"))[0]["o"]
    everything = queries.CustomerQuery()
    scopes: list[Scope] = [
        (everything, None, RECOUNT_NOW),
        (everything, CUT_START, CUT_END),
        (queries.CustomerQuery(deleted="ALL"), None, RECOUNT_NOW),
        (queries.CustomerQuery(deleted="DELETED"), None, RECOUNT_NOW),
        (queries.CustomerQuery(kinds=("client",)), CUT_START, RECOUNT_NOW),
        (queries.CustomerQuery(owner_ids=(owner,)), None, CUT_END),
    ]
    return scopes, owner


async def covers_everything(state: AppState, scope: AnalyticsScope) -> bool:
    """Whether a report reads the lifetime rollup for this period (the rollup
    holds every interaction of it) rather than the interactions."""
    ts = scope.ts()
    sql = f"SELECT CASE WHEN {activity.covers_every_interaction(ts)} THEN 1 ELSE 0 END AS yes"
    rows = await state.db.fetch(sql, scope.starts_at, scope.ends_at)
    return bool(rows[0]["yes"])


MAX_SCORED_PAGES = 200


async def every_scored_page(
    state: AppState, scope: AnalyticsScope, condition: Any, by: str, size: int
) -> tuple[list[dict[str, Any]], set[int]]:
    """Every page of a scored list (``scores.scored_page``, by keyset) and
    the totals they gave. Bounded: a cursor that does not move on (a score the
    ranking and the facts disagree on) fails the test instead of paging forever."""
    rows: list[dict[str, Any]] = []
    totals: set[int] = set()
    after = None
    for _ in range(MAX_SCORED_PAGES):
        page = await scores.scored_page(state.db, scope, condition, by, size, after)
        rows += page.rows
        totals.add(page.total)
        if not page.has_next:
            return rows, totals
        cursor = (page.rows[-1]["churn_score"], page.rows[-1]["id"])
        assert cursor != after, f"the page after {after} starts over"
        after = cursor
    raise AssertionError(f"more than {MAX_SCORED_PAGES} pages of {size} for {len(rows)} rows")


@dataclass
class Recording(Database):
    """The app's engine, remembering what it was asked to fetch."""

    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.statements.append((sql, args))
        return await super().fetch(sql, *args)


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cli_in_process(
    database_url: str, *args: str, redis_url: str = ""
) -> subprocess.CompletedProcess:
    """:func:`cli`'s command run by ``crmgraph.cli.main`` in this process: the
    same parsing, settings from the environment and exit codes, without the
    1.5 s of imports a process pays. Warnings logged go to its stderr, as
    logging's last-resort handler writes them in a process of its own. Not
    for a test of what crosses processes: this process's principal cache is
    the in-process servers' too."""
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with (
            environment(CRMGRAPH_DATABASE_URL=database_url, CRMGRAPH_LOAD_ENTRY_POINTS="0",
                        CRMGRAPH_REDIS_URL=redis_url),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):  # fmt: skip
            try:
                code = crmgraph_cli.main(args)
            except SystemExit as exit_:  # argparse's errors
                code = exit_.code if isinstance(exit_.code, int) else 2
    finally:
        root.removeHandler(handler)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
