"""Importing contacts and interactions (crmgraph.transfer.contacts,
.interactions, .refs) on SQLite and PostgreSQL: the export → import round
trip into another database holding the same customers, every reason a row
is rejected, duplicates, all-or-nothing and per-batch commits on a database
failure, the command line, and the GraphQL uploads with their permission."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from crmgraph.access import Access
from crmgraph.app import AppState
from crmgraph.schema.ids import encode_id
from crmgraph.transfer.entities import entity_for
from crmgraph.transfer.export import export
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.report import ImportSummary, Rejections
from crmgraph.transfer.source import CsvSource, text_stream
from tests.conftest import fresh_database
from tests.test_import_export import csv_bytes, run

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
    moving = {"id", "customer", "contact", "created_at"}
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
