"""``dryRun: true`` (issue 25): on both engines, a dry run of each mutation
family leaves every table (outbox, audit and idempotency included) exactly as
it was, dumped whole before and after, and answers the payload the real call
then answers; a refusal lists the same userErrors; over HTTP and over the
WebSocket transport alike; no webhook delivery or subscription message
follows it; an Idempotency-Key stays unused; it costs what the real call costs.

Payloads are compared whole but for the time stamps in them (``updatedAt``,
an event's ``at``...: the real call runs later). Ids are compared as they are:
a rolled-back SQLite transaction leaves the next rowid where it was, and on
PostgreSQL the dry run gives the ids it took from the process's id blocks
back, so the real call that follows gets the same ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from crmgraph.app import AppState, with_state
from crmgraph.testing import LiveServer, live_server, settings_for
from tests.helpers import add_contact, api_keys, create_customer, poll
from tests.test_export_roundtrip import crmgraph_cli  # in process
from tests.test_import_export import csv_bytes, upload
from tests.test_subscriptions import graphql_ws
from tests.test_webhooks import CREATE_WEBHOOK, FAST, Receiver

ERRORS = "userErrors { field message code }"
PREVIEW = (
    "preview { auditEntries { action entityType entityId changes { field old new } } "
    "events { type customerId payload } }"
)
CUSTOMER = (
    "customer { id __typename name version stage updatedAt contacts { id name email } "
    "needs { id title } stageHistory { fromStage toStage reason } "
    "roles { kind primary stage } }"
)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def mutation(name: str, selection: str) -> str:
    input_type = name[0].upper() + name[1:] + "Input"
    return (
        f"mutation($input: {input_type}!) {{ {name}(input: $input) "
        f"{{ {selection} {PREVIEW} {ERRORS} }} }}"
    )


def without_times(value: Any) -> Any:
    """``value`` with every time stamp (a string that starts as one) masked."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    if isinstance(value, str) and TIMESTAMP.match(value):
        return "<time>"
    return value


async def dump_tables(state: AppState) -> dict[str, list[str]]:
    """Every row of every table, as text, sorted (rolled-back rows leave none),
    once the server's start-up work is done (the funnel's phases, recomputed
    beside the first requests, fill ``stage_phase``): it is no part of what is
    compared."""
    db = state.db
    await state.startup_work.finished()
    if db.is_sqlite:
        names = await db.fetch("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    else:
        names = await db.fetch(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
    tables = {}
    for row in names:
        rows = await db.fetch(f'SELECT * FROM "{row["name"]}"')
        tables[row["name"]] = sorted(repr(sorted(r.items())) for r in rows)
    return tables


PENDING = (
    "SELECT COUNT(*) AS n FROM event WHERE delivered_at IS NULL OR published_at IS NULL "
    "OR webhooks_claimed_at IS NULL"
)


def dump(server: LiveServer) -> dict[str, list[str]]:
    """The tables once the background loops are done with every event (they
    mark each one handled, published and claimed for webhooks)."""

    settle(server)
    return server.run(dump_tables)


def settle(server: LiveServer) -> None:
    def settled() -> bool:
        return server.run(lambda state: state.db.fetch(PENDING))[0]["n"] == 0

    poll("every event handled", settled)


@dataclass
class Case:
    """One mutation family: ``prepare`` makes what it writes to and returns its input."""

    name: str
    selection: str
    prepare: Callable[[LiveServer], dict[str, Any]]


def version(server: LiveServer, customer_id: str) -> int:
    query = "query($id: ID!) { customer(id: $id) { version } }"
    return server.gql(query, {"id": customer_id})["customer"]["version"]


def client(server: LiveServer, name: str = "Acme") -> str:
    domain = name.lower().replace(" ", "-")
    made = create_customer(server, name=name, email=f"office@{domain}.example")["id"]
    add_contact(server, made, email=f"ana@{domain}.example")
    return made


def with_version(server: LiveServer, **values: Any) -> dict[str, Any]:
    customer = values.get("id") or values["customerId"]
    return {**values, "expectedVersion": version(server, customer)}


def stages(server: LiveServer, customer_id: str, allowed: bool) -> list[str]:
    query = "query($id: ID!) { customer(id: $id) { allowedTransitions { toStage allowed } } }"
    options = server.gql(query, {"id": customer_id})["customer"]["allowedTransitions"]
    return [o["toStage"] for o in options if o["allowed"] is allowed]


def transition(server: LiveServer, allowed: bool) -> dict[str, Any]:
    """A move the client's lifecycle allows now, or one a guard refuses (the
    client walked on along allowed moves until one is refused)."""
    made = client(server)
    for _ in range(10):
        if allowed or stages(server, made, False):
            to = stages(server, made, allowed)[0]
            return with_version(server, id=made, toStage=to, reason="dry run test")
        walk = with_version(server, id=made, toStage=stages(server, made, True)[0])
        moved = server.gql(mutation("transitionCustomer", "customer { id }"), {"input": walk})
        assert moved["transitionCustomer"]["userErrors"] == []
    raise AssertionError("no refused move found")


def merge(server: LiveServer) -> dict[str, Any]:
    survivor, merged = client(server, "Acme"), client(server, "Acme Ltd")
    return {"survivorId": survivor, "mergedId": merged}


def contact_id(server: LiveServer) -> str:
    made = client(server)
    query = "query($id: ID!) { customer(id: $id) { contacts { id } } }"
    return server.gql(query, {"id": made})["customer"]["contacts"][0]["id"]


CASES = [
    Case("createCustomer", CUSTOMER, lambda s: {"kind": "CLIENT", "name": "New Co"}),
    Case("updateCustomer", CUSTOMER, lambda s: with_version(s, id=client(s), name="Renamed")),
    Case(
        "transitionCustomer",
        f"{CUSTOMER} stageChange {{ fromStage toStage reason }}",
        lambda s: transition(s, True),
    ),
    Case("deleteCustomer", CUSTOMER, lambda s: with_version(s, id=client(s))),
    Case(
        "addContact",
        "contact { id name email isPrimary }",
        lambda s: {"customerId": client(s), "name": "Luis", "email": "luis@example.com"},
    ),
    Case(
        "updateContact",
        "contact { id name email }",
        lambda s: {"id": contact_id(s), "name": "Ana María"},
    ),
    Case(
        "logInteraction",
        "interaction { id channel direction subject }",
        lambda s: {
            "customerId": client(s),
            "channel": "EMAIL",
            "direction": "INBOUND",
            "subject": "hello",
        },
    ),
    Case(
        "recordNeed",
        "need { id title status priority }",
        lambda s: {"customerId": client(s), "title": "Quarterly supply"},
    ),
    Case(
        "mergeCustomers", "customer { id name version contacts { id email } } merge { id }", merge
    ),
    Case("addRole", CUSTOMER, lambda s: with_version(s, customerId=client(s), kind="SUPPLIER")),
    # a plugin's mutation (teamwork's notes)
    Case("addNote", "note { id body }", lambda s: {"customerId": client(s), "body": "call back"}),
]


def run_case(server: LiveServer, case: Case, values: dict[str, Any]) -> dict[str, Any]:
    query = mutation(case.name, case.selection)
    before = dump(server)
    dry = server.gql(query, {"input": {**values, "dryRun": True}})[case.name]
    assert dump(server) == before, f"{case.name}: a dry run changed the tables"
    real = server.gql(query, {"input": values})[case.name]
    assert real["preview"] is None
    return {"dry": dry, "real": real}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_dry_run_changes_nothing_and_answers_what_the_real_call_answers(
    server: LiveServer, case: Case
) -> None:
    values = case.prepare(server)
    answers = run_case(server, case, values)
    dry, real = answers["dry"], answers["real"]
    assert dry["userErrors"] == [] == real["userErrors"]
    preview = dry.pop("preview")
    real.pop("preview")
    assert without_times(dry) == without_times(real)
    # the preview is what the real call wrote: its audit entries and events
    audit = server.run(lambda state: state.db.fetch(
        "SELECT action, entity_type FROM audit_entry ORDER BY id"))  # fmt: skip
    events = server.run(lambda state: state.db.fetch("SELECT type FROM event ORDER BY id"))
    written = len(preview["auditEntries"])
    assert written > 0 and preview["events"]
    assert [(a["action"], a["entityType"]) for a in preview["auditEntries"]] == [
        (row["action"], row["entity_type"]) for row in audit[-written:]
    ]
    assert [e["type"] for e in preview["events"]] == [
        row["type"] for row in events[-len(preview["events"]) :]
    ]


def test_a_refused_dry_run_lists_the_reasons_the_real_call_lists(server: LiveServer) -> None:
    case = Case("transitionCustomer", "customer { id } stageChange { toStage }", lambda s: {})
    values = transition(server, False)
    answers = run_case(server, case, values)
    dry, real = answers["dry"], answers["real"]
    assert real["userErrors"] and [e["code"] for e in real["userErrors"]] == [
        "TRANSITION_REFUSED"
    ] * len(real["userErrors"])
    assert dry["userErrors"] == real["userErrors"]
    assert dry["preview"] == {"auditEntries": [], "events": []}
    # a stale version: refused alike
    stale = {**with_version(server, id=client(server, "Stale Co"), name="x")}
    stale["expectedVersion"] -= 1
    update = Case("updateCustomer", "customer { id }", lambda s: {})
    answers = run_case(server, update, stale)
    assert answers["dry"]["userErrors"] == answers["real"]["userErrors"] != []


def test_a_dry_run_then_a_real_one_in_one_request(server: LiveServer) -> None:
    """The dry run's rows are forgotten with its transaction: the real call
    after it in the same document reads the database as committed."""
    made = client(server)
    query = (
        "mutation($dry: UpdateCustomerInput!, $real: AddContactInput!) { "
        f"a: updateCustomer(input: $dry) {{ customer {{ name contacts {{ name }} }} {ERRORS} }} "
        f"b: addContact(input: $real) {{ contact {{ name }} {ERRORS} }} }}"
    )
    dry = {**with_version(server, id=made, name="Dry name"), "dryRun": True}
    data = server.gql(query, {"dry": dry, "real": {"customerId": made, "name": "Luis"}})
    assert data["a"]["customer"]["name"] == "Dry name"
    after = server.gql("query($id: ID!) { customer(id: $id) { name } }", {"id": made})
    assert after["customer"]["name"] == "Acme"


def test_over_the_websocket_transport(server: LiveServer) -> None:
    made = client(server)
    values = with_version(server, id=made, name="Renamed")
    query = mutation("updateCustomer", CUSTOMER)
    before = dump(server)
    with graphql_ws(server.url) as ws:
        ws.acknowledged()
        ws.send(
            {
                "id": "dry",
                "type": "subscribe",
                "payload": {"query": query, "variables": {"input": {**values, "dryRun": True}}},
            }
        )
        message = ws.receive()
        assert message["type"] == "next", message
        assert ws.receive() == {"id": "dry", "type": "complete"}
    dry = message["payload"]["data"]["updateCustomer"]
    assert dump(server) == before
    real = server.gql(query, {"input": values})["updateCustomer"]
    assert [e["type"] for e in dry.pop("preview")["events"]] == ["customer.updated"]
    assert real.pop("preview") is None
    assert without_times(dry) == without_times(real)


EVENTS = "subscription { customerEvents { type customerId } }"


def test_no_subscription_message_follows_a_dry_run(server: LiveServer) -> None:
    made = client(server)
    settle(server)  # its events are out: the subscription hears only what follows
    with graphql_ws(server.url) as ws:
        ws.acknowledged()
        ws.send({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}})
        poll("an open subscription", lambda: open_subscriptions(server) == 1 or None)
        dry_log = {"customerId": made, "channel": "EMAIL", "direction": "INBOUND",
                   "subject": "dry", "dryRun": True}  # fmt: skip
        logged = server.gql(mutation("logInteraction", "interaction { id }"), {"input": dry_log})
        assert logged["logInteraction"]["userErrors"] == []
        server.gql(mutation("updateCustomer", "customer { id }"),
                   {"input": with_version(server, id=made, name="Real")})  # fmt: skip
        # the first message is the real call's: the dry run's event never was
        message = ws.receive()
        assert message["payload"]["data"]["customerEvents"] == {
            "type": "customer.updated",
            "customerId": made,
        }


def open_subscriptions(server: LiveServer) -> int:
    return httpx.get(f"{server.url}/readyz", timeout=5).json().get("subscriptions")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with contextlib.closing(Receiver()) as running:
        yield running


def test_no_webhook_delivery_follows_a_dry_run(database_url: str, receiver: Receiver) -> None:
    with live_server(settings_for(database_url, **FAST)) as server:
        made = client(server)
        hook = server.gql(CREATE_WEBHOOK, {"input": {"url": receiver.url, "eventTypes": ["*"]}})
        assert hook["createWebhook"]["userErrors"] == []
        dry = {"customerId": made, "title": "dry", "dryRun": True}
        server.gql(mutation("recordNeed", "need { id }"), {"input": dry})
        server.gql(mutation("updateCustomer", "customer { id }"),
                   {"input": with_version(server, id=made, name="Real")})  # fmt: skip
        delivered = poll("the real call's delivery", lambda: receiver.delivered() or None)
        assert [r.payload["type"] for r in delivered] == ["customer.updated"]
        assert not any(r.payload["type"] == "need.recorded" for r in receiver.snapshot())


def test_an_idempotency_key_stays_unused_and_the_cost_is_a_reads(server: LiveServer) -> None:
    made = client(server)
    values = with_version(server, id=made, name="Renamed")
    body = {"query": mutation("updateCustomer", CUSTOMER), "variables": {"input": values}}
    dry_body = {**body, "variables": {"input": {**values, "dryRun": True}}}
    headers = {"Idempotency-Key": "dry-then-real"}
    before = dump(server)
    dry = server.http.post("/graphql", json=dry_body, headers=headers)
    assert dry.status_code == 200 and "idempotent-replay" not in dry.headers
    assert dump(server) == before
    # the same key with another body: not refused as reused, it runs
    real = server.http.post("/graphql", json=body, headers=headers)
    assert real.status_code == 200, real.text
    assert real.json()["data"]["updateCustomer"]["userErrors"] == []
    assert dry.json()["extensions"]["cost"] == real.json()["extensions"]["cost"]
    again = server.http.post("/graphql", json=body, headers=headers)  # now it is used
    assert again.headers.get("idempotent-replay") == "true"


def test_import_dry_run_reports_what_the_import_then_does(
    database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    rows = [["Nombre", "Correo", "Tipo"], ["Ana", "ana@example.com", "prospect"],
            ["Luis", "luis@", "prospect"], ["Ana", "ANA@example.com", "prospect"],
            ["Bea", "bea@example.com", "client"]]  # fmt: skip
    source.write_text("\n".join(",".join(row) for row in rows) + "\n")
    args = ["import", "customers", str(source), "--quiet",
            "--map", "Nombre=name", "--map", "Correo=email", "--map", "Tipo=kind"]  # fmt: skip
    settings = settings_for(database_url)
    before = asyncio.run(with_state(settings, dump_tables))
    dry = crmgraph_cli(database_url, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert asyncio.run(with_state(settings, dump_tables)) == before
    assert dry.stdout.splitlines()[-1] == (
        "dry run: nothing was written (the import ran in a transaction rolled back)"
    )
    real = crmgraph_cli(database_url, *args)
    assert real.returncode == 0, real.stderr
    summary = "read 4, created 2, merged 0, skipped as duplicate 1, rejected 1"
    assert summary in dry.stdout and summary in real.stdout
    customers = asyncio.run(with_state(settings, lambda state: state.db.fetch(
        "SELECT name FROM customer ORDER BY id")))  # fmt: skip
    assert [row["name"] for row in customers] == ["Ana", "Bea"]


def test_an_upload_import_dry_run_reports_what_the_import_then_does(server: LiveServer) -> None:
    """``importCustomers`` (a multipart upload, batches each in a transaction
    of their own when real) takes dryRun like any mutation."""
    data = csv_bytes(
        [["Nombre", "email", "kind"], ["Ana", "ana@example.com", "prospect"],
         ["Luis", "luis@", "prospect"], ["Ana again", "ANA@example.com", ""]]
    )  # fmt: skip
    fields = {"mapping": [{"column": "Nombre", "field": "name"}], "kind": "PROSPECT",
              "onDuplicate": "SKIP", "commit": "BATCH"}  # fmt: skip
    query = mutation("importCustomers", "summary { read created rejected skippedDuplicates }")
    preflight = {"Apollo-Require-Preflight": "true"}
    before = dump(server)
    dry = upload(server.url, data, preflight, query=query, **fields, dryRun=True)
    assert dry.status_code == 200, dry.text
    assert dump(server) == before
    real = upload(server.url, data, preflight, query=query, **fields)
    dry_payload = dry.json()["data"]["importCustomers"]
    real_payload = real.json()["data"]["importCustomers"]
    assert dry_payload["summary"] == real_payload["summary"] == {
        "read": 3, "created": 1, "rejected": 1, "skippedDuplicates": 1
    }  # fmt: skip
    assert [e["type"] for e in dry_payload["preview"]["events"]] == ["customer.created"]


def test_a_dry_run_is_refused_what_the_caller_may_not_do(database_url: str) -> None:
    """Permissions and row scope apply to a dry run as to the real call: a
    viewer may not create, an agent may not touch another agent's customer."""
    keys = api_keys(database_url, {"vera": "viewer", "ana": "agent", "bea": "agent"}, "dry.example")
    with live_server(settings_for(database_url, anonymous=False)) as server:
        create = mutation("createCustomer", "customer { id }")
        made = server.gql(create, {"input": {"kind": "CLIENT", "name": "Ana's"}}, key=keys["ana"])
        anas = made["createCustomer"]["customer"]["id"]
        refusals = [
            (create, {"kind": "CLIENT", "name": "Vera's"}, keys["vera"]),
            (mutation("updateCustomer", "customer { id }"),
             {"id": anas, "expectedVersion": 1, "name": "Bea's now"}, keys["bea"]),
        ]  # fmt: skip
        for query, values, key in refusals:
            before = dump(server)
            dry = server.gql(query, {"input": {**values, "dryRun": True}}, key=key)
            assert dump(server) == before
            real = server.gql(query, {"input": values}, key=key)
            (name,) = real
            assert dry[name]["userErrors"] == real[name]["userErrors"] != []
            assert dry[name]["preview"] == {"auditEntries": [], "events": []}
