"""A party's further roles (issue 24) in import, export, personal data and
the demo, on both engines over a real server: a customer export carries each
held role with its kind, stage, stage time and typed attributes (``roles``
and ``<kind>.<attribute>`` columns; a list of objects in JSON Lines) and
imports back into a fresh database as the same parties with the same roles;
an import adds a row's kind as a role of the existing party it repeats only
when asked (``add_roles``, ``--add-roles``, ``addRoles``), through addRole's
own operation (its refusals, audit entry and event); the personal data
export holds every role with its attributes and history, and erasure clears
the attributes of every role; the demo holds parties with two and three roles."""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import json
from pathlib import Path
from typing import Any

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db.queries import load_json, read_timestamp
from crmgraph.demo import seed_demo
from crmgraph.ids import decode_id
from crmgraph.testing import LiveServer, settings_for, user_key
from crmgraph.transfer.customers import CustomerImport
from crmgraph.transfer.export import export
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.report import ImportSummary, Rejections
from crmgraph.transfer.source import CsvSource, text_stream
from tests.conftest import fresh_database
from tests.helpers import create_customer
from tests.test_customer_roles import LINK, add, end, move
from tests.test_export_roundtrip import crmgraph_cli  # in process
from tests.test_import_export import csv_bytes, upload

ERASE = """mutation($input: ErasePersonalDataInput!) { erasePersonalData(input: $input) {
  userErrors { code } } }"""
EXPORT_DOC = "query($id: ID!) { personalDataExport(customerId: $id) { document } }"
ROLES = """query($id: ID!) { customer(id: $id) { version roles { kind stage
  ... on GuarantorRole { guaranteedAmount guaranteeType documentId }
  ... on ClientRole { segment taxId } ... on SupplierRole { rating category }
  ... on EmployeeRole { jobTitle } } } }"""


def run(url: str, work: Any) -> Any:
    return asyncio.run(with_state(settings_for(url), work))


async def import_customers(
    state: AppState, data: bytes, **options: Any
) -> tuple[ImportSummary, Rejections]:
    opts = ImportOptions(**options)
    ctx = ImportContext(state.db, state.catalog, state.plugin_manager, "ES")
    source = CsvSource(text_stream(io.BytesIO(data)))
    return await run_import(state.db, CustomerImport(ctx, opts), source, opts)


async def party_roles(state: AppState) -> dict[str, dict[str, Any]]:
    """Every party by e-mail: its kind, stage, attributes and every role row
    (stage, attributes, whether held, when it entered its stage)."""
    found: dict[str, dict[str, Any]] = {}
    by_pk: dict[int, dict[str, Any]] = {}
    for row in await state.db.fetch("SELECT * FROM customer ORDER BY id"):
        party = {"kind": row["kind"], "attributes": load_json(row["attributes"]), "roles": {}}
        found[row["email"]] = by_pk[row["id"]] = party
    for role in await state.db.fetch("SELECT * FROM customer_role ORDER BY id"):
        party = by_pk[role["customer"]]
        if role["kind"] == party["kind"]:
            party["stage"] = role["stage"]
            continue
        held = role["added_at"] is not None and role["ended_at"] is None
        entered = read_timestamp(role["entered_at"]) if held else None
        attributes = load_json(role["attributes"]) if held else {}
        party["roles"][role["kind"]] = (role["stage"], held, attributes, entered)
    return found


def three_parties(server: LiveServer) -> dict[str, str]:
    """A client who is also a verified guarantor (of a client) and a
    supplier; a supplier who is also a client; a client whose guarantor role
    ended."""
    ana = create_customer(
        server, name="Ana Three", email="ana@roles.example", client={"segment": "CONSUMER"}
    )["id"]
    guarantee = {"guaranteedAmount": "5000.00", "guaranteeType": "PERSONAL", "documentId": "D-7"}
    assert add(server, ana, "GUARANTOR", 1, guarantor=guarantee)["userErrors"] == []
    zed = create_customer(server, name="Zed Borrower", email="zed@roles.example")["id"]
    link = {"fromId": ana, "toId": zed, "kind": "guarantees"}
    assert server.gql(LINK, {"input": link})["linkCustomers"]["userErrors"] == []
    assert move(server, ana, "verified", 2, "GUARANTOR")["userErrors"] == []
    supplier = {"rating": 4, "category": "paper"}
    assert add(server, ana, "SUPPLIER", 3, supplier=supplier)["userErrors"] == []
    bo = create_customer(
        server, kind="SUPPLIER", name="Bo Supplies", email="bo@roles.example",
        supplier={"rating": 2, "taxId": "B-42"},
    )["id"]  # fmt: skip
    client = {"segment": "SMALL_BUSINESS", "taxId": "B-42"}
    assert add(server, bo, "CLIENT", 1, client=client)["userErrors"] == []
    cy = create_customer(server, name="Cy Ended", email="cy@roles.example")["id"]
    assert add(server, cy, "GUARANTOR", 1, guarantor={"documentId": "E-1"})["userErrors"] == []
    assert end(server, cy, "GUARANTOR", 2)["userErrors"] == []
    return {"ana": ana, "bo": bo, "cy": cy}


def test_customers_export_with_their_roles_and_import_back(
    server: LiveServer, database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    three_parties(server)

    async def exported(state: AppState) -> tuple[str, str, dict[str, Any]]:
        out, lines = io.StringIO(), io.StringIO()
        await export(state.db, state.catalog, "customers", "csv", out)
        await export(state.db, state.catalog, "customers", "jsonl", lines)
        return out.getvalue(), lines.getvalue(), await party_roles(state)

    text, jsonl, before = server.run(exported)
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(text))}
    ana, bo, cy = (rows[f"{n}@roles.example"] for n in ("ana", "bo", "cy"))
    assert ana["roles"] == "guarantor:verified;supplier:evaluation"
    assert (ana["guarantor.guaranteed_amount"], ana["guarantor.document_id"]) == ("5000.00", "D-7")
    assert (ana["supplier.rating"], ana["supplier.category"]) == ("4", "paper")
    assert ana["guarantor.stage_entered_at"] and ana["former_roles"] == ""
    # the supplier's own tax id is a bare column, its client role's prefixed
    assert (bo["kind"], bo["tax_id"], bo["client.tax_id"]) == ("supplier", "B-42", "B-42")
    assert (bo["roles"], bo["client.segment"]) == ("client:interest", "SMALL_BUSINESS")
    assert (cy["roles"], cy["former_roles"], cy["guarantor.document_id"]) == (
        "", "guarantor:proposed", "",
    )  # fmt: skip
    assert "employee.job_title" not in text.splitlines()[0]  # only kinds held as roles
    records = {r["email"]: r for r in map(json.loads, jsonl.splitlines())}
    (guarantor, _) = records["ana@roles.example"]["roles"]
    assert (guarantor["kind"], guarantor["stage"], guarantor["phase"]) == (
        "guarantor", "verified", "ACQUISITION",
    )  # fmt: skip
    assert guarantor["attributes"]["document_id"] == "D-7" and guarantor["added_at"]
    assert records["cy@roles.example"]["former_roles"] == [
        {"kind": "guarantor", "stage": "proposed"}
    ]

    engine = "sqlite" if database_url.startswith("sqlite") else "postgres"
    with fresh_database(engine, request, tmp_path / "target.sqlite") as target:

        async def imported(state: AppState) -> dict[str, Any]:
            summary, rejected = await import_customers(state, text.encode())
            assert rejected.count == 0, [r.reasons() for r in rejected.first]
            again, _ = await import_customers(state, text.encode())
            events = await state.db.fetch("SELECT type, payload FROM event ORDER BY id")
            return {
                "created": (summary.created, again.created, again.skipped_duplicates),
                "parties": await party_roles(state),
                "added": [load_json(e["payload"]) for e in events if e["type"].endswith("added")],
            }

        after = run(target, imported)
    assert after["created"] == (4, 0, 4)
    assert after["parties"] == before  # kinds, stages, attributes, held or not, stage times
    assert sorted((e["kind"], e["stage"], e["source"]) for e in after["added"]) == [
        ("client", "interest", "import"),
        ("guarantor", "verified", "import"),
        ("supplier", "evaluation", "import"),
    ]


def test_bad_roles_in_a_file_are_rejected_with_every_reason(database_url: str) -> None:
    data = csv_bytes([
        ["name", "email", "kind", "roles", "guarantor.guaranteed_amount", "supplier.rating"],
        ["Dee", "dee@x.example", "client", "competitor:identified;agenda:active", "", ""],
        ["Eli", "eli@x.example", "client", "guarantor:proposed", "-5", "3"],
        ["Fay", "fay@x.example", "client", "guarantor:released", "10", ""],
    ])  # fmt: skip

    async def work(state: AppState) -> tuple[ImportSummary, list[list[tuple[Any, str]]]]:
        summary, rejected = await import_customers(state, data)
        return summary, [[(p.field, p.code) for p in r.problems] for r in rejected.first]

    summary, reasons = run(database_url, work)
    assert (summary.created, summary.rejected) == (1, 2)
    assert reasons == [
        [("roles", "NOT_COMBINABLE"), ("roles", "NOT_COMBINABLE")],
        [("supplier", "INVALID"), ("guarantor.guaranteedAmount", "OUT_OF_RANGE")],
    ]


def test_an_import_adds_a_role_to_an_existing_party_only_when_asked(
    server: LiveServer, database_url: str, tmp_path: Path
) -> None:
    ana = create_customer(server, name="Ana Client", email="ana@add.example")["id"]
    header = ["name", "email", "kind", "guaranteed_amount", "document_id", "stage"]
    rows = [
        ["Ana Client", "ANA@add.example", "guarantor", "750", "P-1", ""],  # the same party
        ["New Guy", "new@add.example", "guarantor", "", "", ""],
        ["Ana Client", "ana@add.example", "competitor", "", "", ""],  # not with a client
        [
            "Ana Client",
            "ana@add.example",
            "employee",
            "",
            "",
            "active",
        ],  # a role starts at its start
    ]
    data = csv_bytes([header, *rows])

    def outcome(state_summary: tuple[ImportSummary, Rejections]) -> tuple[int, ...]:
        summary, _ = state_summary
        return (summary.created, summary.skipped_duplicates, summary.roles_added, summary.rejected)

    async def without(state: AppState) -> tuple[int, ...]:
        return outcome(await import_customers(state, data))

    assert server.run(without) == (1, 3, 0, 0)  # as before: repeats of another kind skipped
    read = server.gql(ROLES, {"id": ana})["customer"]
    assert [r["kind"] for r in read["roles"]] == ["CLIENT"]

    async def asked(state: AppState) -> tuple[tuple[int, ...], list[Any]]:
        summary = await import_customers(state, data, add_roles=True)
        return outcome(summary), [[(p.field, p.code) for p in r.problems] for r in summary[1].first]

    counts, reasons = server.run(asked)
    assert counts == (0, 1, 1, 2)  # the new guy's ref-less repeat is skipped as before
    assert reasons == [[("kind", "NOT_COMBINABLE")], [("stage", "INVALID")]]
    read = server.gql(ROLES, {"id": ana})["customer"]
    assert read["version"] == 2  # addRole's write: one version
    guarantor = read["roles"][1]
    assert (guarantor["kind"], guarantor["stage"], guarantor["guaranteedAmount"]) == (
        "GUARANTOR", "proposed", "750",
    )  # fmt: skip
    assert guarantor["documentId"] == "P-1"

    async def trail(state: AppState) -> list[Any]:
        rows = await state.db.fetch(
            "SELECT a.action, a.changes, e.payload FROM audit_entry a JOIN event e "
            "ON e.customer = a.customer AND e.type = a.action "
            "WHERE a.customer = {} AND a.action = 'customer.role_added'",
            decode_id(ana)[1],
        )
        return [(load_json(r["changes"]), load_json(r["payload"])) for r in rows]

    ((changes, payload),) = server.run(trail)
    assert changes["roles.guarantor.stage"] == [None, "proposed"]
    assert changes["guarantor.documentId"] == [None, "P-1"]
    assert (payload["kind"], payload["stage"], payload["source"]) == (
        "guarantor", "proposed", "import",
    )  # fmt: skip

    # the same file again: the role is held already, nothing more is written
    assert server.run(asked)[0] == (0, 2, 0, 2)

    # the command line's --add-roles and GraphQL's addRoles ask the same
    bo = create_customer(server, name="Bo Client", email="bo@add.example")["id"]
    source = tmp_path / "suppliers.csv"
    source.write_bytes(
        csv_bytes([["name", "email", "kind"], ["Bo Client", "bo@add.example", "supplier"]])
    )
    done = crmgraph_cli(database_url, "import", "customers", str(source), "--quiet", "--add-roles")
    assert done.returncode == 0, done.stderr
    assert "roles added to existing parties: 1" in done.stdout
    assert [r["kind"] for r in server.gql(ROLES, {"id": bo})["customer"]["roles"]] == [
        "CLIENT", "SUPPLIER",
    ]  # fmt: skip
    # (row ids come from each process's own block: the order of two roles
    # added by two processes is not the order they were added in)
    manager = asyncio.run(user_key(settings_for(database_url), "manager"))
    employees = csv_bytes([["name", "email", "kind", "job_title"],
                           ["Bo Client", "bo@add.example", "employee", "Clerk"]])  # fmt: skip
    query = """mutation($input: ImportCustomersInput!) { importCustomers(input: $input) {
      summary { created rolesAdded skippedDuplicates } userErrors { code } } }"""
    auth = {"Authorization": f"Bearer {manager}"}
    plain = upload(server.url, employees, auth, query).json()["data"]["importCustomers"]
    assert plain["summary"] == {"created": 0, "rolesAdded": 0, "skippedDuplicates": 1}
    sent = upload(server.url, employees, auth, query, addRoles=True).json()
    assert sent["data"]["importCustomers"]["summary"]["rolesAdded"] == 1
    roles = {r["kind"]: r for r in server.gql(ROLES, {"id": bo})["customer"]["roles"]}
    assert roles["EMPLOYEE"] == {"kind": "EMPLOYEE", "stage": "candidate", "jobTitle": "Clerk"}


def test_personal_data_export_and_erasure_cover_every_role(server: LiveServer) -> None:
    ids = three_parties(server)
    ana = ids["ana"]
    document = server.gql(EXPORT_DOC, {"id": ana})["personalDataExport"]["document"]
    roles = {r["kind"]: r for r in document["roles"]}
    assert set(roles) == {"client", "guarantor", "supplier"}
    assert roles["guarantor"]["attributes"] == {
        "guaranteed_amount": "5000.00", "guarantee_type": "PERSONAL", "document_id": "D-7",
    }  # fmt: skip
    assert roles["guarantor"]["stage"] == "verified" and roles["guarantor"]["added_at"]
    assert roles["supplier"]["attributes"] == {"rating": 4, "category": "paper"}
    history = [(h["kind"], h["to_stage"]) for h in document["stageHistory"]]
    assert history == [
        ("client", "interest"), ("guarantor", "proposed"), ("guarantor", "verified"),
        ("supplier", "evaluation"),
    ]  # fmt: skip

    erased = server.gql(ERASE, {"input": {"customerId": ana, "reason": "request 9"}})
    assert erased["erasePersonalData"]["userErrors"] == []
    after = server.gql(ROLES, {"id": ana})["customer"]["roles"]
    assert [(r["kind"], r["stage"]) for r in after] == [
        ("CLIENT", "interest"), ("GUARANTOR", "verified"), ("SUPPLIER", "evaluation"),
    ]  # fmt: skip
    assert after[1] == {"kind": "GUARANTOR", "stage": "verified", "guaranteedAmount": None,
                        "guaranteeType": None, "documentId": None}  # fmt: skip
    assert after[2] == {"kind": "SUPPLIER", "stage": "evaluation", "rating": None, "category": None}
    document = server.gql(EXPORT_DOC, {"id": ana})["personalDataExport"]["document"]
    assert all(r["attributes"] == {} for r in document["roles"])
    text = json.dumps(document)
    assert "D-7" not in text and "paper" not in text  # nor in the audit trail or events


def test_the_demo_holds_parties_with_several_roles(database_url: str) -> None:
    now = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)

    async def work(state: AppState) -> list[tuple[str, list[str]]]:
        await seed_demo(state.db, state.catalog, customers=120, seed=7, now=now)
        rows = await state.db.fetch(
            "SELECT c.id, c.kind, r.kind AS role FROM customer c JOIN customer_role r "
            "ON r.customer = c.id AND r.kind <> c.kind AND r.added_at IS NOT NULL "
            "AND r.ended_at IS NULL ORDER BY c.id, r.id"
        )
        found: dict[int, tuple[str, list[str]]] = {}
        for row in rows:
            found.setdefault(row["id"], (row["kind"], []))[1].append(row["role"])
        return list(found.values())

    parties = run(database_url, work)
    assert len(parties) >= 4
    assert any(len(roles) >= 2 for _, roles in parties)  # three roles in all
    assert ("guarantor", ["client"]) in parties and ("employee", ["beneficiary"]) in parties
    assert ("supplier", ["client", "guarantor"]) in parties  # a supplier also a client
