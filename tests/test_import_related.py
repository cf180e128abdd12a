"""Importing contacts and interactions (crmgraph.transfer.contacts,
.interactions, .refs) on SQLite and PostgreSQL: the export → import round
trip into another database holding the same customers, every reason a row
is rejected, duplicates, all-or-nothing and per-batch commits on a database
failure, the command line, and the GraphQL uploads with their permission."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from crmgraph.access import Access
from crmgraph.app import AppState, with_state
from crmgraph.auth import Principal, create_user
from crmgraph.db import writes
from crmgraph.dedupe.merge import Caller, MergeRequest, merge_customers
from crmgraph.schema.ids import decode_id, encode_id
from crmgraph.testing import live_server, user_key
from crmgraph.transfer.entities import entity_for
from crmgraph.transfer.export import export
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.mapping import MappingError
from crmgraph.transfer.report import ImportSummary, Rejections
from crmgraph.transfer.source import CsvSource, text_stream
from tests.conftest import fresh_database
from tests.test_import_export import count, crmgraph_cli, csv_bytes, run, settings, upload

CUSTOMERS = csv_bytes(
    [
        ["name", "email", "kind", "tax_id"],
        ["Acme SL", "info@acme.example", "client", "B11111111"],
        ["Tax Only SA", "", "client", "B22222222"],
        ["Mail Only", "Mail.Only@Example.com", "prospect", ""],
    ]
)
# the same customers, written in another order after two others, so that
# every customer's id here names another customer there
CUSTOMERS_ELSEWHERE = csv_bytes(
    [
        ["name", "email", "kind", "tax_id"],
        ["Other One", "one@other.example", "prospect", ""],
        ["Other Two", "two@other.example", "prospect", ""],
        ["Mail Only", "Mail.Only@Example.com", "prospect", ""],
        ["Tax Only SA", "", "client", "B22222222"],
        ["Acme SL", "info@acme.example", "client", "B11111111"],
    ]
)


async def do_import(
    state: AppState,
    entity: str,
    data: bytes,
    rejects: Path | None = None,
    access: Access | None = None,
    **options: Any,
) -> tuple[ImportSummary, Rejections]:
    opts = ImportOptions(**options)
    ctx = ImportContext(state.db, state.catalog, state.plugin_manager, "ES", access=access)
    source = CsvSource(text_stream(io.BytesIO(data)))
    return await run_import(state.db, entity_for(entity, ctx, opts), source, opts, rejects)


async def exported(state: AppState, entity: str) -> str:
    out = io.StringIO()
    await export(state.db, state.catalog, entity, "csv", out)
    return out.getvalue()


async def ids_by_name(state: AppState) -> dict[str, str]:
    rows = await state.db.fetch("SELECT id, name FROM customer")
    return {r["name"]: encode_id("Customer", r["id"]) for r in rows}


def stable(text: str) -> list[dict[str, str]]:
    """Rows without what differs between databases (ids, when written)."""
    moving = {"id", "ref", "customer", "customer.ref", "contact", "contact.ref", "created_at"}
    return [
        {k: v for k, v in row.items() if k not in moving}
        for row in csv.DictReader(io.StringIO(text))
    ]


CONTACTS = [
    ["Customer", "name", "email", "phone", "job_title", "is_primary", "birthday"],
    ["info@acme.example", "Ana Buyer", "ana@acme.example", "600 111 222", "Buyer", "yes", ""],
    ["info@acme.example", "Bea Boss", "bea@acme.example", "", "CEO", "", "1970-05-06"],
    ["MAIL.ONLY@example.com", "Carl", "carl@example.com", "", "", "true", ""],
]
CONTACT_MAP = {"Customer": "customer.email"}


def interactions_for(ids: dict[str, str]) -> bytes:
    return csv_bytes(
        [
            ["customer", "customer.tax_id", "contact.email", "channel", "direction",
             "occurred_at", "subject", "satisfaction", "amount"],
            [ids["Acme SL"], "", "ana@acme.example", "email", "inbound",
             "2025-03-01T10:00:00+01:00", "Order", "5", "120.50"],
            ["", "B 22222222", "", "PHONE", "OUTBOUND", "2025-03-02", "Follow-up", "", ""],
            [ids["Mail Only"], "", "", "MEETING", "INBOUND", "2025-03-03T09:30:00Z",
             "Demo", "4", ""],
        ]
    )  # fmt: skip


def test_round_trip_into_another_database(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    async def source(state: AppState) -> tuple[str, str, dict[str, Any]]:
        await do_import(state, "customers", CUSTOMERS)
        contacts, rejected = await do_import(
            state, "contacts", csv_bytes(CONTACTS), mapping=CONTACT_MAP
        )
        assert (contacts.created, contacts.rejected) == (3, 0), rejected.first
        ids = await ids_by_name(state)
        logged, rejected = await do_import(state, "interactions", interactions_for(ids))
        assert (logged.created, logged.rejected) == (3, 0), rejected.first
        traces = {
            "events": await state.db.fetch("SELECT type, payload FROM event ORDER BY id"),
            "audit": await state.db.fetch(
                "SELECT action, entity_type, changes FROM audit_entry "
                "WHERE entity_type <> 'Customer' ORDER BY id"
            ),
            "primary": await state.db.fetch(
                "SELECT name FROM contact WHERE is_primary ORDER BY id"
            ),
            "linked": await state.db.fetch(
                "SELECT i.subject, k.name FROM interaction i "
                "LEFT JOIN contact k ON k.id = i.contact ORDER BY i.id"
            ),
        }
        return await exported(state, "contacts"), await exported(state, "interactions"), traces

    contacts_csv, interactions_csv, traces = run(database_url, source)
    events = [e["type"] for e in traces["events"] if e["type"] != "customer.created"]
    assert events == ["contact.added"] * 3 + ["interaction.logged"] * 3
    payload = json.loads(traces["events"][-3]["payload"])
    assert payload["source"] == "import" and payload["channel"] == "EMAIL"
    assert payload["amount"] == "120.50"
    audit = traces["audit"]
    assert [(a["action"], a["entity_type"]) for a in audit] == [
        ("contact.added", "Contact")] * 3 + [("interaction.logged", "Interaction")] * 3  # fmt: skip
    assert json.loads(audit[0]["changes"])["jobTitle"] == [None, "Buyer"]
    assert [r["name"] for r in traces["primary"]] == ["Ana Buyer", "Carl"]
    assert [(r["subject"], r["name"]) for r in traces["linked"]] == [
        ("Order", "Ana Buyer"), ("Follow-up", None), ("Demo", None)]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(interactions_csv)))
    assert rows[0]["occurred_at"] == "2025-03-01T09:00:00+00:00"
    assert rows[0]["contact.email"] == "ana@acme.example"

    engine = "sqlite" if database_url.startswith("sqlite") else "postgres"
    with fresh_database(engine, request, tmp_path / "elsewhere.sqlite") as elsewhere:

        async def target(state: AppState) -> tuple[str, str, list[ImportSummary]]:
            await do_import(state, "customers", CUSTOMERS_ELSEWHERE)
            summaries = []
            for entity, text in (("contacts", contacts_csv), ("interactions", interactions_csv)):
                summary, rejected = await do_import(state, entity, text.encode())
                assert (summary.created, summary.rejected) == (3, 0), rejected.first
                again, _ = await do_import(state, entity, text.encode())  # the file once more
                summaries.append(again)
            return (
                await exported(state, "contacts"),
                await exported(state, "interactions"),
                summaries,
            )

        contacts_there, interactions_there, again = run(elsewhere, target)
    assert stable(contacts_there) == stable(contacts_csv)
    assert stable(interactions_there) == stable(interactions_csv)
    # a second run finds every row already there
    assert [(s.created, s.skipped_duplicates) for s in again] == [(0, 3), (0, 3)]


AGENT = "agent@test.example"
PARTIES = csv_bytes(
    [
        ["name", "email", "kind", "tax_id", "owner"],
        ["Acme SL", "info@acme.example", "client", "B11111111", AGENT],
        ["Twin One", "twin@example.com", "prospect", "", AGENT],
        ["Twin Two", "TWIN@example.com", "prospect", "", AGENT],
        ["Gone", "gone@example.com", "prospect", "", AGENT],
        ["Away", "away@example.com", "client", "", AGENT],
        ["Keeper", "keeper@example.com", "client", "B33333333", AGENT],
        ["Hidden", "hidden@example.com", "prospect", "", ""],
    ]
)


async def parties(state: AppState) -> tuple[dict[str, str], Access]:
    """The customers above, as an agent who owns all but Hidden sees them:
    Gone deleted, Away merged into Keeper."""
    agent = await create_user(state.db, "Agent", AGENT, "agent")
    await do_import(state, "customers", PARTIES, on_duplicate="create")
    ids = await ids_by_name(state)
    pks = {name: decode_id(gid)[1] for name, gid in ids.items()}
    async with state.db.transaction():
        await writes.set_deleted(state.db, pks["Gone"], True, None)
        await merge_customers(
            state.db, state.plugin_manager, state.catalog,
            MergeRequest(survivor=pks["Keeper"], merged=pks["Away"]),
            Caller(sees=lambda row: True, may_assign=True, user_id=None),
        )  # fmt: skip
    return ids, state.policy.access(Principal(agent, "Agent", "agent"))


def reasons(rejected: Rejections) -> dict[int, list[tuple[str | None, str]]]:
    return {r.row: sorted((p.field or "", p.code) for p in r.problems) for r in rejected.first}


async def outcome(
    state: AppState, entity: str, rows: list[list[str]], written: str, *args: Any, **options: Any
) -> dict[str, Any]:
    """Import ``rows`` (a CSV's, the header first): the summary, each
    rejected row's reasons and messages, and the rows the SQL ``written``
    then reads, as tuples."""
    summary, rejected = await do_import(state, entity, csv_bytes(rows), *args, **options)
    return {
        "summary": summary,
        "reasons": reasons(rejected),
        "messages": {r.row: [p.message for p in r.problems] for r in rejected.first},
        "written": [tuple(row.values()) for row in await state.db.fetch(written)],
    }


def test_every_reason_a_contact_is_rejected(database_url: str, tmp_path: Path) -> None:
    async def work(state: AppState) -> dict[str, Any]:
        ids, agent = await parties(state)
        header = ["customer", "customer.email", "customer.tax_id", "name", "email", "birthday"]
        rows = [
            header,
            ["", "info@acme.example", "", "Ok Person", "ok@acme.example", ""],  # 2
            ["", "twin@example.com", "", "Which twin", "", ""],  # 3: two customers have it
            [ids["Twin One"], "twin@example.com", "", "Picked", "", ""],  # 4: the ID picks
            [ids["Gone"], "", "", "Too late", "", ""],  # 5
            ["", "away@example.com", "", "Via merged", "", ""],  # 6: to Keeper
            [ids["Away"], "", "", "Via merged ID", "", ""],  # 7: to Keeper
            ["", "hidden@example.com", "", "Hidden by e-mail", "", ""],  # 8
            [ids["Hidden"], "", "", "Hidden by ID", "", ""],  # 9
            ["", "nobody@example.com", "", "Nobody", "", ""],  # 10
            ["", "info@acme.example", "B33333333", "Two keys", "", ""],  # 11: Acme, Keeper
            ["Q3VzdG9tZXI6eA==", "", "", "Bad ID", "", ""],  # 12
            ["", "", "", "No customer", "", ""],  # 13
            ["", "INFO@acme.example", "", "", "bad-email", "2999-01-01"],  # 14
            ["", "info@acme.example", "", "Again", "OK@acme.example", ""],  # 15: repeats 2
        ]
        rejects = tmp_path / "contacts.rejected.csv"
        written = (
            "SELECT k.name, c.name AS customer FROM contact k "
            "JOIN customer c ON c.id = k.customer ORDER BY k.id"
        )
        found = await outcome(state, "contacts", rows, written, rejects, access=agent, batch_size=4)
        return {
            **found,
            "report": list(csv.reader(rejects.open(encoding="utf-8"))),
            "ids": ids,
        }

    found = run(database_url, work)
    summary = found["summary"]
    assert (summary.read, summary.created, summary.skipped_duplicates) == (14, 4, 1)
    assert summary.rejected == 9
    assert found["written"] == [
        ("Ok Person", "Acme SL"), ("Picked", "Twin One"),
        ("Via merged", "Keeper"), ("Via merged ID", "Keeper"),
    ]  # fmt: skip
    assert found["reasons"] == {
        3: [("customer.email", "AMBIGUOUS")],
        5: [("customer", "DELETED")],
        8: [("customer.email", "NOT_FOUND")],
        9: [("customer", "NOT_FOUND")],  # not visible: as if it did not exist
        10: [("customer.email", "NOT_FOUND")],
        11: [("customer.email", "NOT_FOUND")],
        12: [("customer", "INVALID_ID")],
        13: [("customer", "REQUIRED")],
        14: [("birthday", "FORBIDDEN"), ("birthday", "OUT_OF_RANGE"),
             ("email", "INVALID_EMAIL"), ("name", "REQUIRED")],
    }  # fmt: skip
    messages = found["messages"]
    ids = found["ids"]
    assert ids["Twin One"] in messages[3][0] and ids["Twin Two"] in messages[3][0]
    assert messages[11] == ["no customer has e-mail 'info@acme.example' and tax id 'B33333333'"]
    assert ids["Hidden"] not in " ".join(messages[8] + messages[9])
    report = found["report"]
    assert report[0] == ["row", "customer", "customer.email", "customer.tax_id", "name",
                         "email", "birthday", "reasons"]  # fmt: skip
    assert [r[0] for r in report[1:]] == ["3", "5", "8", "9", "10", "11", "12", "13", "14"]
    assert report[-1][-1].count("[") == 4


def test_every_reason_an_interaction_is_rejected(database_url: str) -> None:
    async def work(state: AppState) -> dict[str, Any]:
        ids, _ = await parties(state)
        contacts = csv_bytes(
            [["customer", "name", "email"], [ids["Acme SL"], "Ana", "ana@acme.example"],
             [ids["Twin One"], "Tom", "tom@example.com"]]
        )  # fmt: skip
        await do_import(state, "contacts", contacts)
        tom = await state.db.fetch("SELECT id FROM contact WHERE name = 'Tom'")
        acme, twin_contact = ids["Acme SL"], encode_id("Contact", tom[0]["id"])
        header = ["customer", "contact", "contact.email", "channel", "direction",
                  "occurred_at", "subject", "satisfaction", "amount"]  # fmt: skip
        rows = [
            header,
            [acme, "", "ANA@acme.example", "email", "inbound", "2025-01-02T03:04:05Z", "Hi", "3",
             "10"],  # 2
            [acme, "", "nobody@acme.example", "EMAIL", "INBOUND", "", "Who", "", ""],  # 3
            [acme, twin_contact, "", "EMAIL", "INBOUND", "", "Wrong contact", "", ""],  # 4
            [acme, "", "", "FAX", "SIDEWAYS", "yesterday", "", "9", "-5"],  # 5
            [acme, "", "", "EMAIL", "INBOUND", "2999-01-01", "Future", "", ""],  # 6
            [acme, "", "ana@acme.example", "EMAIL", "INBOUND", "2025-01-02T04:04:05+01:00",
             "Hi", "", ""],  # 7: repeats 2 (the same time, written another way)
            [acme, "", "", "EMAIL", "OUTBOUND", "2025-01-02T03:04:05Z", "Hi", "", ""],  # 8
            [acme, "", "", "EMAIL", "OUTBOUND", "2025-01-03", "Promo", "", "", "marketing"],  # 9
            [acme, "", "", "EMAIL", "OUTBOUND", "2025-01-03", "Promo", "", "", "spam"],  # 10
        ]  # fmt: skip
        rows = [[*row, *([] if len(row) > 9 else [""])] for row in rows]
        rows[0][-1] = "purpose"
        written = (
            "SELECT i.subject, i.direction, k.name FROM interaction i "
            "LEFT JOIN contact k ON k.id = i.contact ORDER BY i.id"
        )
        return await outcome(state, "interactions", rows, written)

    found = run(database_url, work)
    summary = found["summary"]
    assert (summary.created, summary.skipped_duplicates, summary.rejected) == (2, 1, 6)
    assert found["written"] == [("Hi", "INBOUND", "Ana"), ("Hi", "OUTBOUND", None)]
    assert found["reasons"] == {
        3: [("contact.email", "NOT_FOUND")],
        4: [("contact", "INVALID")],  # as logInteraction: the contact is another customer's
        5: [("amount", "OUT_OF_RANGE"), ("channel", "INVALID_CHOICE"),
            ("direction", "INVALID_CHOICE"), ("occurredAt", "INVALID"),
            ("satisfaction", "OUT_OF_RANGE"), ("subject", "REQUIRED")],
        6: [("occurredAt", "OUT_OF_RANGE")],
        9: [("purpose", "NO_CONSENT")],  # as logInteraction: outbound marketing needs consent
        10: [("purpose", "INVALID_CHOICE")],
    }  # fmt: skip


def test_refused_before_reading(database_url: str) -> None:
    async def work(state: AppState) -> list[str]:
        messages = []
        for entity, data, options in (
            ("contacts", csv_bytes([["customer.email", "name"]]), {"on_duplicate": "merge"}),
            ("contacts", csv_bytes([["name", "email"]]), {}),
            ("interactions", csv_bytes([["customer", "channel", "subject"]]), {}),
        ):
            with pytest.raises(MappingError) as refused:
                await do_import(state, entity, data, **options)
            messages.append(str(refused.value))
        return messages

    merge, no_customer, no_direction = run(database_url, work)
    assert "merge is for customers" in merge
    assert "no column names the customer" in no_customer
    assert "no column gives direction" in no_direction


def exploding(database_url: str) -> list[str]:
    """A trigger that makes the database refuse an interaction titled
    'Explode': a failure no row check foresees."""
    if database_url.startswith("sqlite"):
        return [
            "CREATE TRIGGER explode BEFORE INSERT ON interaction WHEN NEW.subject = 'Explode' "
            "BEGIN SELECT RAISE(ABORT, 'interaction exploded'); END"
        ]
    return [
        "CREATE FUNCTION explode() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.subject = 'Explode' THEN RAISE EXCEPTION 'interaction exploded'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER explode BEFORE INSERT ON interaction FOR EACH ROW "
        "EXECUTE FUNCTION explode()",
    ]


def logged(count_: int, explode_at: int | None = None, bad_at: int | None = None) -> bytes:
    rows = [["customer.email", "channel", "direction", "occurred_at", "subject"]]
    for i in range(count_):
        subject = "Explode" if i == explode_at else f"Call {i}"
        channel = "FAX" if i == bad_at else "PHONE"
        at = f"2025-01-01T00:00:{i:02d}Z"
        rows.append(["info@acme.example", channel, "OUTBOUND", at, subject])
    return csv_bytes(rows)


async def subjects(state: AppState) -> list[str]:
    rows = await state.db.fetch("SELECT subject FROM interaction ORDER BY id")
    return [r["subject"] for r in rows]


def test_all_or_nothing_and_per_batch_on_a_database_failure(database_url: str) -> None:
    async def work(state: AppState) -> dict[str, Any]:
        await do_import(state, "customers", CUSTOMERS)
        for statement in exploding(database_url):
            await state.db.fetch(statement)
        everything, rejected = await do_import(
            state, "interactions", logged(7, explode_at=5, bad_at=1), batch_size=2
        )
        after_all = (
            await count(state, "interaction"),
            await count(state, "event WHERE type = 'interaction.logged'"),
        )
        failed, _ = await do_import(
            state, "interactions", logged(7, explode_at=5, bad_at=1), commit="batch", batch_size=2
        )
        kept = await subjects(state)
        resumed, _ = await do_import(
            state, "interactions", logged(7, bad_at=1), commit="batch", batch_size=2,
            resume_after=failed.committed_through,
        )  # fmt: skip
        final = await subjects(state)
        return {
            "all": everything, "all_rejected": [r.row for r in rejected.first],
            "after_all": after_all, "failed": failed, "kept": kept,
            "resumed": resumed, "final": final,
            "audit": await count(state, "audit_entry WHERE action = 'interaction.logged'"),
        }  # fmt: skip

    found = run(database_url, work)
    everything = found["all"]
    assert "interaction exploded" in everything.failure
    assert everything.created == 0 and found["after_all"] == (0, 0)  # nothing written
    assert found["all_rejected"] == [3]  # the bad row is still reported
    failed = found["failed"]
    assert failed.committed_through == 5 and failed.created == 3  # rows 2-5, row 3 rejected
    assert found["kept"] == ["Call 0", "Call 2", "Call 3"]
    resumed = found["resumed"]
    assert (resumed.read, resumed.created, resumed.failure) == (3, 3, None)
    assert found["final"] == ["Call 0", "Call 2", "Call 3", "Call 4", "Call 5", "Call 6"]
    assert found["audit"] == 6  # one per interaction written, none for the rolled back


def test_command_line(database_url: str, tmp_path: Path) -> None:
    customers, contacts = tmp_path / "customers.csv", tmp_path / "contacts.csv"
    customers.write_bytes(CUSTOMERS)
    contacts.write_bytes(csv_bytes([*CONTACTS, ["nobody@example.com", "Lost", "", "", "", "", ""]]))
    done = crmgraph_cli(database_url, "import", "customers", str(customers), "--quiet")
    assert done.returncode == 0, done.stderr
    done = crmgraph_cli(
        database_url,
        "import",
        "contacts",
        str(contacts),
        "--quiet",
        "--map",
        "Customer=customer.email",
    )
    assert done.returncode == 0, done.stderr
    assert (
        "contacts: read 4, created 3, merged 0, skipped as duplicate 0, rejected 1" in done.stdout
    )
    report = list(csv.reader((tmp_path / "contacts.csv.rejected.csv").open()))
    assert report[1][0] == "5" and "[NOT_FOUND]" in report[1][-1]

    out = tmp_path / "interactions.jsonl"
    exported_ = crmgraph_cli(
        database_url, "export", "contacts", "--format", "jsonl", "--output", str(out)
    )
    assert exported_.returncode == 0, exported_.stderr
    assert [json.loads(line)["name"] for line in out.read_text().splitlines()] == [
        "Ana Buyer", "Bea Boss", "Carl"]  # fmt: skip

    merge = crmgraph_cli(
        database_url, "import", "contacts", str(contacts), "--on-duplicate", "merge"
    )
    assert merge.returncode == 2 and "merge is for customers" in merge.stderr


IMPORT_INTERACTIONS = """mutation($input: ImportInteractionsInput!) {
  importInteractions(input: $input) {
    summary { read created rejected skippedDuplicates failure }
    rejectedRows { row reasons { field code } }
    userErrors { field message code }
  }
}"""
IMPORT_CONTACTS = IMPORT_INTERACTIONS.replace("Interactions", "Contacts")


def test_graphql_uploads(database_url: str) -> None:
    config = settings(database_url, default_phone_region="ES")
    asyncio.run(with_state(config, lambda state: do_import(state, "customers", CUSTOMERS)))
    manager = {"Authorization": f"Bearer {asyncio.run(user_key(config, 'manager'))}"}
    agent = {"Authorization": f"Bearer {asyncio.run(user_key(config, 'agent'))}"}
    contacts = csv_bytes([*CONTACTS, ["nobody@example.com", "Lost", "", "", "", "", ""]])
    mapping = [{"column": "Customer", "field": "customer.email"}]
    with live_server(config) as server:
        # uploads over a real socket (server.url): multipart bodies as a browser sends them
        refused = upload(server.url, contacts, agent, IMPORT_CONTACTS, mapping=mapping)
        payload = refused.json()["data"]["importContacts"]
        assert payload["summary"] is None
        assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
        assert "customer.import" in payload["userErrors"][0]["message"]

        done = upload(server.url, contacts, manager, IMPORT_CONTACTS, mapping=mapping)
        payload = done.json()["data"]["importContacts"]
        assert payload["userErrors"] == []
        assert payload["summary"] == {
            "read": 4, "created": 3, "rejected": 1, "skippedDuplicates": 0, "failure": None
        }  # fmt: skip
        assert payload["rejectedRows"] == [
            {"row": 5, "reasons": [{"field": "customer.email", "code": "NOT_FOUND"}]}
        ]

        ids = asyncio.run(with_state(config, ids_by_name))
        data = interactions_for(ids)
        done = upload(server.url, data, manager, IMPORT_INTERACTIONS, commit="BATCH", batchSize=2)
        payload = done.json()["data"]["importInteractions"]
        assert payload["summary"]["created"] == 3, payload
        again = upload(server.url, data, manager, IMPORT_INTERACTIONS, onDuplicate="SKIP")
        assert again.json()["data"]["importInteractions"]["summary"]["skippedDuplicates"] == 3

        merge = upload(server.url, data, manager, IMPORT_INTERACTIONS, onDuplicate="MERGE")
        assert "MERGE" in merge.json()["errors"][0]["message"]  # not in OnDuplicateRecord

        node = server.gql(
            "query($id: ID!) { customer(id: $id) { contacts { id name } "
            "interactions { nodes { subject contactId } } } }",
            {"id": ids["Acme SL"]},
        )["customer"]
        ana = next(c["id"] for c in node["contacts"] if c["name"] == "Ana Buyer")
        assert node["interactions"]["nodes"] == [{"subject": "Order", "contactId": ana}]
