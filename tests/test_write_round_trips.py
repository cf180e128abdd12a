"""Round trips per write on PostgreSQL, counted on the wire (issue 21), and
the write queue (crmgraph.db.write_batch) leaving exactly what the
statement-by-statement path leaves.

The server talks to PostgreSQL through bench.pg_wire_count's proxy, which
counts each committed transaction's round trips (Sync and simple Query
messages from its BEGIN to its COMMIT). Counts, not times."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import statistics
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bench.pg_wire_count import CountingProxy, WireCounter
from crmgraph.testing import LiveServer, live_server, settings_for
from crmgraph.testing.databases import run_sql

QUIET = 86400.0  # background passes wait a day: only the woken ones run


@contextlib.contextmanager
def proxy_for(database_url: str) -> Iterator[tuple[str, WireCounter]]:
    """The database URL through a counting proxy run on a loop of its own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    proxy = CountingProxy("127.0.0.1", 5432)
    port = asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(30)
    try:
        yield database_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}"), proxy.counter
    finally:
        asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


def started(database_url: str, batching: bool) -> contextlib.AbstractContextManager[LiveServer]:
    settings = settings_for(
        database_url,
        write_batching=batching,
        event_poll_seconds=QUIET,
        prune_interval_seconds=QUIET,
        # webhooks' fan-out claims a write's events in a transaction of its
        # own after the commit; without the feature only the writes' remain
        disabled_plugins=("crmgraph.plugins.webhooks",),
    )
    return live_server(settings)


@pytest.fixture(scope="module", params=["postgres"])
def counted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tests.conftest import fresh_database

    path = tmp_path_factory.mktemp("round_trips") / "unused.sqlite"
    with (
        fresh_database(request.param, request, path) as url,
        proxy_for(url) as (proxied, counter),
        started(proxied, batching=True) as server,
    ):
        yield server, counter


CREATE = """mutation($name: String!) { createCustomer(input: {kind: CLIENT, name: $name}) {
  customer { id version } userErrors { code } } }"""
UPDATE = """mutation($id: ID!, $v: Int!, $name: String!) {
  updateCustomer(input: {id: $id, expectedVersion: $v, name: $name}) {
  customer { id version } userErrors { code } } }"""
LOG = """mutation($id: ID!) { logInteraction(input: {customerId: $id, channel: EMAIL,
  direction: INBOUND, subject: "Hello"}) { interaction { id subject } userErrors { code } } }"""
CONTACT = """mutation($id: ID!, $name: String!) { addContact(input: {customerId: $id, name: $name}) {
  contact { id name } userErrors { code } } }"""
NEED = """mutation($id: ID!, $title: String!) { recordNeed(input: {customerId: $id, title: $title}) {
  need { id title } userErrors { code } } }"""
MOVE = """mutation($id: ID!, $v: Int!) { transitionCustomer(input: {id: $id,
  toStage: "engaged", expectedVersion: $v}) { customer { id stage version } userErrors { code } } }"""


def payload(server: LiveServer, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    (answer,) = server.gql(query, variables).values()
    assert answer["userErrors"] == [], answer
    return answer


def new_customer(server: LiveServer, name: str) -> dict[str, Any]:
    return payload(server, CREATE, {"name": name})["customer"]


def round_trips(counter: WireCounter, write: Callable[[int], None], times: int = 5) -> list[int]:
    """Each write's transaction's round trips, after two writes to warm up
    (statements prepared, ids handed out). The outbox passes a write wakes
    (a read of the events, then one UPDATE marking them delivered or
    published, outside any transaction) are not the write's, whichever
    transaction the proxy counted their reads in."""
    write(-1)
    write(-2)
    counter.reset()
    for number in range(times):
        write(number)
    ended = list(zip(counter.transactions, counter.writes, counter.loose, strict=True))
    trips = [
        total - sum(1 for text in loose if OUTBOX_PASS.search(text))
        for total, texts, loose in ended
        if not all(OUTBOX_PASS.search(text) for text in texts)
    ]
    assert len(trips) == times, ended
    return trips


# the dispatcher's and the live publisher's statements on the outbox
OUTBOX_PASS = re.compile(r"^\s*(UPDATE event SET|SELECT \* FROM event WHERE)|FROM event e?\b")


def typical(trips: list[int]) -> int:
    """The usual count: a write now and then also prepares a statement or
    takes a block of ids (one more round trip)."""
    assert max(trips) <= min(trips) + 1, trips
    return int(statistics.median_low(trips))


def test_a_logged_interaction_is_one_statement(counted) -> None:  # type: ignore[no-untyped-def]
    server, counter = counted
    customer = new_customer(server, "Round Trip Logger")
    trips = round_trips(counter, lambda n: payload(server, LOG, {"id": customer["id"]}))
    # no BEGIN, no COMMIT: one statement locks the customer and checks it is
    # live (the guard), writes the row, audit entry and event, and returns
    # the row for the payload (before the lazy transaction: BEGIN; the
    # customer read with its lock; that batch; COMMIT: 4)
    assert typical(trips) == 1


def test_a_contact_and_a_need_cost_the_same_one(counted) -> None:  # type: ignore[no-untyped-def]
    server, counter = counted
    customer = new_customer(server, "Round Trip Contacts")
    contact = round_trips(
        counter, lambda n: payload(server, CONTACT, {"id": customer["id"], "name": f"P {n}"})
    )
    need = round_trips(
        counter, lambda n: payload(server, NEED, {"id": customer["id"], "title": f"N {n}"})
    )
    assert (typical(contact), typical(need)) == (1, 1)


def test_customer_writes(counted) -> None:  # type: ignore[no-untyped-def]
    server, counter = counted
    made = iter(range(10_000))
    created = round_trips(counter, lambda n: new_customer(server, f"Zq Trips {next(made)} Vw"))
    customer = new_customer(server, "Round Trip Updates")
    version = [customer["version"]]

    def update(field: str, value: Callable[[int], str]) -> Callable[[int], None]:
        def write(n: int) -> None:
            answer = payload(
                server,
                UPDATE.replace("name: $name", field),
                {"id": customer["id"], "v": version[0], "name": value(n)},
            )
            version[0] = answer["customer"]["version"]

        return write

    # the industry is matched by no duplicate rule; the name is
    industry = round_trips(counter, update("client: {industry: $name}", lambda n: f"I{n}"))
    renamed = round_trips(counter, update("name: $name", lambda n: f"Round Trip {n + 10}"))
    assert (typical(created), typical(industry), typical(renamed)) == CUSTOMER_WRITES


# createCustomer: BEGIN; the duplicate screen's candidates; the queued rows
# (customer, role, first stage, match keys); the identifier locks and the
# pairs' lookup (2); the payload's read, with the audit entry and event in
# front of it; COMMIT. updateCustomer of a field no duplicate rule matches:
# BEGIN; lock+read; the UPDATE (counted: the version guard) with its audit
# entry and event; the payload's read; COMMIT. A rename also refreshes the
# customer's match keys and pairs.
CUSTOMER_WRITES = (7, 5, 10)


TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")
TABLES = (
    "customer",
    "customer_role",
    "stage_change",
    "contact",
    "interaction",
    "need",
    "audit_entry",
    "event",
    "customer_match_key",
    "duplicate_pair",
    "customer_activity",  # the rollups of interactions, kept by triggers
    "customer_month",
)


ORDER = {
    # a stage_change row's id comes from a block of ids on one path and from
    # the sequence on the other: the same rows, other numbers after a merge
    "stage_change": "customer, kind, at, to_stage",
    "customer_match_key": "customer, key_type, key_value",
    "duplicate_pair": "customer_a, customer_b",
    "customer_activity": "customer_id",
    "customer_month": "customer_id, month",
}


UNNUMBERED = {("stage_change", "id")}


def comparable(value: Any) -> Any:
    """A column's value with the moment of writing taken out."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return "<time>"
    if isinstance(value, str) and value[:1] in "{[":
        with contextlib.suppress(ValueError):
            return comparable(json.loads(value))
    if isinstance(value, str):
        return TIME.sub("<time>", value)
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def contents(database_url: str) -> dict[str, list[dict[str, Any]]]:
    settings = settings_for(database_url)
    found = {}
    for table in TABLES:
        order = ORDER.get(table, "id")
        rows = run_sql(settings, f"SELECT * FROM {table} ORDER BY {order}")
        found[table] = [
            {k: comparable(v) for k, v in row.items() if (table, k) not in UNNUMBERED}
            for row in rows
        ]
    return found


def write_sequence(server: LiveServer) -> list[Any]:
    """Every write of the benchmark and a refused one, as a client sends them;
    what each answered."""
    answers: list[Any] = []
    first = new_customer(server, "Ada Differential")
    second = new_customer(server, "Ada Differentail")  # a likely duplicate of the first
    answers += [first, second]
    answers.append(payload(server, UPDATE, {"id": first["id"], "v": 1, "name": "Ada Diff"}))
    answers.append(server.post(UPDATE, {"id": first["id"], "v": 1, "name": "Stale"}))  # conflict
    answers.append(payload(server, CONTACT, {"id": first["id"], "name": "Grace"}))
    answers.append(payload(server, LOG, {"id": first["id"]}))
    answers.append(payload(server, NEED, {"id": second["id"], "title": "Loans"}))
    answers.append(payload(server, MOVE, {"id": second["id"], "v": 1}))
    # what the one-statement path's guard refuses: a missing customer, a
    # deleted one and a merged one (the same user errors either way)
    missing = "Q3VzdG9tZXI6OTk5OTk="
    answers.append(server.post(LOG.replace("EMAIL", "PHONE"), {"id": missing})["data"])
    gone = new_customer(server, "Ada Deleted")
    payload(server, DELETE, {"id": gone["id"]})
    answers.append(server.post(CONTACT, {"id": gone["id"], "name": "Nobody"})["data"])
    payload(server, MERGE, {"survivor": first["id"], "merged": second["id"]})
    answers.append(server.post(NEED, {"id": second["id"], "title": "After"})["data"])
    answers.append(payload(server, LOG, {"id": first["id"]}))
    return [comparable(a) for a in answers]


DELETE = """mutation($id: ID!) { deleteCustomer(input: {id: $id}) { userErrors { code } } }"""
MERGE = """mutation($survivor: ID!, $merged: ID!) {
  mergeCustomers(input: {survivorId: $survivor, mergedId: $merged}) { userErrors { code } } }"""


@pytest.mark.parametrize("engine", ["postgres"])
def test_the_queue_leaves_what_statement_by_statement_leaves(
    engine: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    from tests.conftest import fresh_database

    seen = {}
    for batching in (True, False):
        with (
            fresh_database(engine, request, tmp_path / f"{batching}.sqlite") as url,
            started(url, batching) as server,
        ):
            answers = write_sequence(server)
            seen[batching] = (answers, contents(url))
    assert seen[True][0] == seen[False][0]
    for table in TABLES:
        assert seen[True][1][table] == seen[False][1][table], table
    assert len(seen[True][1]["audit_entry"]) >= 7
    assert seen[True][1]["customer_activity"], "the logged interaction is counted"


@pytest.mark.parametrize("engine", ["postgres"])
def test_statement_by_statement_a_logged_interaction_takes_seven(
    engine: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """CRMGRAPH_WRITE_BATCHING=0, the path before the queue: BEGIN, the
    customer locked and read, INSERT, audit INSERT, event INSERT, payload
    read, COMMIT (the lock had a round trip of its own before: 8)."""
    from tests.conftest import fresh_database

    with (
        fresh_database(engine, request, tmp_path / "unused.sqlite") as url,
        proxy_for(url) as (proxied, counter),
        started(proxied, batching=False) as server,
    ):
        customer = new_customer(server, "Round Trip One By One")
        trips = round_trips(counter, lambda n: payload(server, LOG, {"id": customer["id"]}))
    assert typical(trips) == 7


def test_a_transition(counted) -> None:  # type: ignore[no-untyped-def]
    server, counter = counted
    made = iter(range(100))
    ready = [new_customer(server, f"Round Trip Mover {next(made)}") for _ in range(7)]

    def move(n: int) -> None:
        payload(server, MOVE, {"id": ready.pop()["id"], "v": 1})

    # BEGIN; lock+read; the role's stage and the open stay ended; the new
    # entry; its phase columns (which read the entries); the version guard
    # with the audit entry and event; the payload's customer and stage
    # history; COMMIT
    assert typical(round_trips(counter, move)) == 9
