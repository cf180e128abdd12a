"""Import and export (crmgraph.transfer) on SQLite and PostgreSQL: mapping,
every kind of bad row with every reason, nothing written for bad rows,
all-or-nothing and per-batch commits, duplicates in the database and in the
file, the export → import round trip, the command line, and the GraphQL
multipart upload with its permission and size limit."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from crmgraph.app import AppState, with_state
from crmgraph.settings import Settings
from crmgraph.testing import live_server, settings_for, user_key
from crmgraph.transfer.customers import CustomerImport
from crmgraph.transfer.export import export
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.mapping import MappingError
from crmgraph.transfer.report import ImportSummary, Rejections
from crmgraph.transfer.source import CsvSource, text_stream

T = TypeVar("T")
GUARD = "tests.plugins_for_tests.import_guard"


def settings(database_url: str, **overrides: Any) -> Settings:
    return settings_for(database_url, plugins=(GUARD,), **overrides)


def run(database_url: str, work: Callable[[AppState], Awaitable[T]], **overrides: Any) -> T:
    return asyncio.run(with_state(settings(database_url, **overrides), work))


def csv_bytes(rows: list[list[str]], delimiter: str = ",", bom: bool = False) -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()


async def do_import(
    state: AppState, data: bytes, rejects: Path | None = None, **options: Any
) -> tuple[ImportSummary, Rejections]:
    opts = ImportOptions(**options)
    ctx = ImportContext(state.db, state.catalog, state.plugin_manager, "ES")
    source = CsvSource(text_stream(io.BytesIO(data)))
    return await run_import(state.db, CustomerImport(ctx, opts), source, opts, rejects)


async def count(state: AppState, sql: str, *args: Any) -> int:
    return int((await state.db.fetch(f"SELECT COUNT(*) AS n FROM {sql}", *args))[0]["n"])


async def names(state: AppState) -> list[str]:
    return [r["name"] for r in await state.db.fetch("SELECT name FROM customer ORDER BY id")]


HEADER = ["Full name", "E-mail", "Telephone", "Type", "Segment", "tax_id", "rating", "Notes"]
MAP = {"Full name": "name", "Telephone": "phone", "Type": "kind"}


def test_mapping_bad_rows_and_what_a_create_leaves(database_url: str, tmp_path: Path) -> None:
    data = csv_bytes(
        [
            HEADER,
            [
                "Acme SL",
                "info@acme.example",
                "911 234 567",
                "client",
                "SMALL_BUSINESS",
                "B1",
                "",
                "x",
            ],
            ["", "not-an-email", "12", "client", "HUGE", "", "", ""],  # four reasons
            ["Nowhere", "", "", "martian", "", "", "", ""],
            ["Supplier One", "sup@one.example", "", "supplier", "", "A1", "9", ""],
            ["Supplier Two", "two@one.example", "", "supplier", "", "A2", "four", ""],
            ["Client Rated", "", "", "client", "", "", "3", ""],  # rating is a supplier's
            ["Refused Ltd", "", "", "prospect", "", "", "", ""],  # the plugin says no
            ["Short", "only", "two"],  # the wrong number of fields
            ["Beta SA", "", "+34 600 000 001", "SUPPLIER", "", "A3", "4", ""],
        ],
        bom=True,
    )
    rejects = tmp_path / "rejects.csv"

    async def work(state: AppState) -> dict[str, Any]:
        summary, rejected = await do_import(state, data, rejects, mapping=MAP, batch_size=3)
        return {
            "summary": summary,
            "names": await names(state),
            "reasons": {
                r.row: sorted((p.field, p.code) for p in r.problems) for r in rejected.first
            },
            "roles": await state.db.fetch(
                "SELECT c.name, r.stage, r.phase FROM customer_role r "
                "JOIN customer c ON c.id = r.customer ORDER BY c.id"
            ),
            "initial": [
                state.catalog.customer_type(k).lifecycle.initial for k in ("client", "supplier")
            ],
            "history": await count(state, "stage_change WHERE reason = 'imported'"),
            "events": await state.db.fetch("SELECT type, payload FROM event ORDER BY id"),
            "audit": await state.db.fetch("SELECT action, changes FROM audit_entry ORDER BY id"),
            "keys": await count(state, "customer_match_key WHERE key_type = 'TAX_ID'"),
            "acme": (await state.db.fetch("SELECT * FROM customer WHERE name = 'Acme SL'"))[0],
        }

    found = run(database_url, work)
    summary = found["summary"]
    assert (summary.read, summary.created, summary.rejected) == (9, 2, 7)
    assert summary.ignored_columns == ["Notes"]
    assert found["names"] == ["Acme SL", "Beta SA"]  # nothing of a bad row is written
    assert found["reasons"] == {
        3: [("client.segment", "INVALID_CHOICE"), ("email", "INVALID_EMAIL"),
            ("name", "REQUIRED"), ("phone", "INVALID_PHONE")],
        4: [("kind", "INVALID_CHOICE")],
        5: [("supplier.rating", "OUT_OF_RANGE")],
        6: [("supplier.rating", "INVALID")],
        7: [("client.rating", "INVALID")],
        8: [("name", "INVALID")],
        9: [(None, "INVALID")],
    }  # fmt: skip
    acme = found["acme"]
    assert acme["phone"] == "+34911234567"  # read in the default region, stored E.164
    assert json.loads(acme["attributes"]) == {"segment": "SMALL_BUSINESS", "tax_id": "B1"}
    assert [r["stage"] for r in found["roles"]] == found["initial"]
    assert found["history"] == 2
    assert [e["type"] for e in found["events"]] == ["customer.created"] * 2
    assert json.loads(found["events"][0]["payload"])["source"] == "import"
    assert [a["action"] for a in found["audit"]] == ["customer.created"] * 2
    assert json.loads(found["audit"][0]["changes"])["client.segment"] == [None, "SMALL_BUSINESS"]
    assert found["keys"] == 2  # match keys written with the rows

    with rejects.open(encoding="utf-8") as report:
        rows = list(csv.reader(report))
    assert rows[0] == ["row", *HEADER, "reasons"]
    assert [r[0] for r in rows[1:]] == ["3", "4", "5", "6", "7", "8", "9"]
    assert rows[1][1:9] == ["", "not-an-email", "12", "client", "HUGE", "", "", ""]
    assert rows[1][-1].count("[") == 4  # every reason, not the first


def test_mapping_problems_are_refused_before_reading(database_url: str) -> None:
    data = csv_bytes([["Who", "Sort"], ["Ana", "client"]])

    async def work(state: AppState) -> list[str]:
        messages = []
        for options in (
            {"mapping": {"Missing": "name"}},
            {"mapping": {"Who": "shoe_size", "Sort": "kind"}},
            {"mapping": {"Sort": "kind"}},  # nothing gives the name
            {"mapping": {"Who": "name"}},  # nor the kind
        ):
            with pytest.raises(MappingError) as refused:
                await do_import(state, data, **options)
            messages.append(str(refused.value))
        assert await count(state, "customer") == 0
        return messages

    missing, unknown, no_name, no_kind = run(database_url, work)
    assert "'Missing'" in missing and "not in the file" in missing
    assert "'shoe_size' is not a field" in unknown
    assert "no column gives name" in no_name
    assert "no column gives kind" in no_kind


def rows_of(count_: int, explode_at: int | None = None) -> bytes:
    rows = [["name", "email", "kind"]]
    for i in range(count_):
        name = "Explode" if i == explode_at else f"Person {i}"
        rows.append([name, f"person{i}@example.com", "prospect"])
    return csv_bytes(rows)


def test_all_or_nothing_writes_nothing_when_a_plugin_raises(database_url: str) -> None:
    async def work(state: AppState) -> tuple[ImportSummary, int, int, int]:
        summary, _ = await do_import(state, rows_of(7, explode_at=5), batch_size=2)
        return (
            summary,
            await count(state, "customer"),
            await count(state, "event"),
            await count(state, "customer_match_key"),
        )

    summary, customers, events, keys = run(database_url, work)
    assert "import guard exploded" in summary.failure and GUARD in summary.failure
    assert (summary.created, customers, events, keys) == (0, 0, 0, 0)  # two batches rolled back
    assert summary.read == 6  # the batch whose validation failed was read, not the one after
    assert "nothing was written" in "\n".join(summary.lines())


def test_batch_commit_keeps_earlier_batches_and_resumes(database_url: str) -> None:
    async def work(state: AppState) -> tuple[ImportSummary, ImportSummary, list[str]]:
        failed, _ = await do_import(state, rows_of(7, explode_at=5), commit="batch", batch_size=2)
        # the file mended, a re-run carries on after the last committed row
        resumed, _ = await do_import(
            state, rows_of(7), commit="batch", batch_size=2, resume_after=failed.committed_through
        )
        return failed, resumed, await names(state)

    failed, resumed, written = run(database_url, work)
    assert failed.failure and failed.created == 4 and failed.committed_through == 5
    # the rows of the batch whose validation failed count as read (rows 6 and 7)
    assert failed.read == 6
    assert "--resume-after 5" in "\n".join(failed.lines())
    assert resumed.read == 3 and resumed.created == 3 and resumed.failure is None
    assert written == [f"Person {i}" for i in range(7)]


DUPLICATES = [
    ["name", "email", "phone", "kind", "segment", "tax_id"],
    [
        "Known Party",
        "KNOWN@Example.com",
        "+34 600 111 222",
        "client",
        "ENTERPRISE",
        "",
    ],  # repeats the seed
    ["New One", "new@example.com", "", "client", "", "B-123.45"],
    ["New One again", "", "", "client", "CONSUMER", "b12345"],  # same tax id: repeats row 3
    ["Someone Else", "else@example.com", "", "client", "", ""],
    ["Known as prospect", "known@example.com", "", "prospect", "", ""],  # another kind
]


@pytest.mark.parametrize("mode", ["skip", "create", "merge"])
def test_duplicates_in_the_database_and_in_the_file(database_url: str, mode: str) -> None:
    seed = csv_bytes([["name", "email", "kind"], ["Known Party", "known@example.com", "client"]])

    async def work(state: AppState) -> dict[str, Any]:
        await do_import(state, seed)
        summary, rejected = await do_import(
            state, csv_bytes(DUPLICATES), on_duplicate=mode, batch_size=2
        )
        rows = await state.db.fetch("SELECT name, phone, attributes FROM customer ORDER BY id")
        return {
            "summary": summary,
            "rows": [(r["name"], r["phone"], json.loads(r["attributes"])) for r in rows],
            "rejected": [(r.row, r.problems[0].code) for r in rejected.first],
            "updated": await count(state, "event WHERE type = 'customer.updated'"),
        }

    found = run(database_url, work)
    summary = found["summary"]
    if mode == "skip":
        assert (summary.created, summary.skipped_duplicates, summary.merged) == (2, 3, 0)
        assert [r[0] for r in found["rows"]] == ["Known Party", "New One", "Someone Else"]
    elif mode == "create":
        assert (summary.created, summary.skipped_duplicates) == (5, 0)
        assert len(found["rows"]) == 6
    else:
        assert (summary.created, summary.merged, summary.rejected) == (2, 2, 1)
        assert found["rejected"] == [(6, "DUPLICATE")]  # merging never changes a kind
        known, new, _ = found["rows"]
        # the existing record keeps its values and takes the row's where it had none
        assert known == ("Known Party", "+34600111222", {"segment": "ENTERPRISE"})
        assert new == ("New One", None, {"tax_id": "B-123.45", "segment": "CONSUMER"})
        # the seed and row 3 (written by the batch before row 4's) took values
        assert found["updated"] == 2


def test_export_round_trip_and_json_lines(database_url: str, tmp_path: Path) -> None:
    data = csv_bytes(
        [
            ["name", "email", "phone", "kind", "segment", "annual_revenue", "rating", "hire_date"],
            ["Acme SL", "a@acme.example", "+34 911 234 567", "client", "ENTERPRISE", "1200.50", "", ""],
            ["Bolt, \"Quoted\" Inc", "", "", "supplier", "", "", "4", ""],
            ["Eva Díaz", "eva@example.com", "", "employee", "", "", "", "2020-02-03"],
        ]
    )  # fmt: skip

    async def first(state: AppState) -> tuple[str, str]:
        summary, _ = await do_import(state, data)
        assert summary.created == 3
        out, lines = io.StringIO(), io.StringIO()
        await export(state.db, state.catalog, "customers", "csv", out)
        await export(state.db, state.catalog, "customers", "jsonl", lines, kind="client")
        return out.getvalue(), lines.getvalue()

    exported, jsonl = run(database_url, first)
    (record,) = [json.loads(line) for line in jsonl.splitlines()]
    assert record["name"] == "Acme SL"
    assert record["attributes"] == {"segment": "ENTERPRISE", "annual_revenue": "1200.50"}

    async def again(state: AppState) -> str:
        await state.db.fetch("DELETE FROM customer_match_key")
        for table in ("audit_entry", "event", "stage_change", "customer_role", "customer"):
            await state.db.fetch(f"DELETE FROM {table}")
        summary, rejected = await do_import(state, exported.encode())
        assert (summary.created, summary.rejected) == (3, 0), rejected.first
        # stage is read (tests/test_export_roundtrip.py); what is derived or new there is not
        assert {"id", "phase", "created_at", "updated_at"} <= set(summary.ignored_columns)
        out = io.StringIO()
        await export(state.db, state.catalog, "customers", "csv", out)
        return out.getvalue()

    def stable(text: str) -> list[dict[str, str]]:
        skip = {"id", "ref", "created_at", "updated_at"}
        return [
            {k: v for k, v in row.items() if k not in skip}
            for row in csv.DictReader(io.StringIO(text))
        ]

    assert stable(run(database_url, again)) == stable(exported)


def crmgraph_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``crmgraph --database URL ARGS``, run by ``crmgraph.cli.main`` in this
    process (tests.test_auth.cli_in_process: the same parsing, output and exit
    code, without a process's 1.5 s of imports): these tests are about the
    commands' wiring and output, not the process."""
    from tests.helpers import cli_in_process, environment

    with environment(CRMGRAPH_DEFAULT_PHONE_REGION="ES"):
        return cli_in_process(database_url, "--database", database_url, *args)


def test_command_line(database_url: str, tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_bytes(
        csv_bytes(
            [["Nombre", "Correo", "Tipo"], ["Ana", "ana@example.com", "prospect"],
             ["Luis", "luis@", "prospect"], ["Ana", "ANA@example.com", "prospect"]],
            delimiter=";",
        )
    )  # fmt: skip
    done = crmgraph_cli(
        database_url, "import", "customers", str(source), "--quiet",
        "--map", "Nombre=name", "--map", "Correo=email", "--map", "Tipo=kind",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "read 3, created 1, merged 0, skipped as duplicate 1, rejected 1" in done.stdout
    rejects = tmp_path / "people.csv.rejected.csv"
    assert f"rejected rows and their reasons: {rejects}" in done.stdout
    assert list(csv.reader(rejects.open()))[1][:4] == ["3", "Luis", "luis@", "prospect"]

    out = tmp_path / "out.jsonl"
    exported = crmgraph_cli(
        database_url, "export", "customers", "--format", "jsonl", "--output", str(out)
    )
    assert exported.returncode == 0, exported.stderr
    assert [json.loads(line)["email"] for line in out.read_text().splitlines()] == [
        "ana@example.com"
    ]

    bad = crmgraph_cli(database_url, "import", "customers", str(source), "--map", "Nombre=name")
    assert bad.returncode == 2 and "no column gives kind" in bad.stderr


UPLOAD = """mutation($input: ImportCustomersInput!) {
  importCustomers(input: $input) {
    summary { read created rejected skippedDuplicates failure }
    rejectedRows { row values { column value } reasons { field code } }
    userErrors { field message code }
  }
}"""


def upload(
    url: str, data: bytes, headers: dict[str, str], query: str = UPLOAD, **fields: Any
) -> httpx.Response:
    """A GraphQL multipart request (the spec's operations, map and file parts)."""
    operations = {"query": query, "variables": {"input": {"file": None, **fields}}}
    return httpx.post(
        f"{url}/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("people.csv", data, "text/csv")},
        headers=headers,
        timeout=120,
    )


def test_graphql_multipart_upload(database_url: str) -> None:
    config = settings(database_url, import_max_bytes=4096)
    manager = asyncio.run(user_key(config, "manager"))
    agent = asyncio.run(user_key(config, "agent"))
    data = csv_bytes(
        [["Nombre", "email", "kind"], ["Ana", "ana@example.com", "prospect"],
         ["Luis", "luis@", "prospect"], ["Ana again", "ANA@example.com", ""]]
    )  # fmt: skip
    mapping = [{"column": "Nombre", "field": "name"}]
    with live_server(config) as server:
        # uploads over a real socket (server.url): multipart bodies as a browser sends them
        # a plain form post could come from any web page: refused
        forged = upload(server.url, data, {}, mapping=mapping, kind="PROSPECT")
        assert forged.status_code == 400 and "Apollo-Require-Preflight" in forged.text

        as_agent = upload(server.url, data, {"Authorization": f"Bearer {agent}"}, mapping=mapping)
        assert as_agent.status_code == 200, as_agent.text
        refused = as_agent.json()["data"]["importCustomers"]
        assert refused["summary"] is None
        assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
        assert "customer.import" in refused["userErrors"][0]["message"]

        done = upload(
            server.url, data, {"Authorization": f"Bearer {manager}"},
            mapping=mapping, kind="PROSPECT", onDuplicate="SKIP", commit="BATCH",
        )  # fmt: skip
        assert done.status_code == 200, done.text
        payload = done.json()["data"]["importCustomers"]
        assert payload["userErrors"] == []
        assert payload["summary"] == {
            "read": 3, "created": 1, "rejected": 1, "skippedDuplicates": 1, "failure": None
        }  # fmt: skip
        (row,) = payload["rejectedRows"]
        assert row["row"] == 3 and row["reasons"] == [{"field": "email", "code": "INVALID_EMAIL"}]
        assert {"column": "email", "value": "luis@"} in row["values"]

        bad_map = upload(
            server.url, data, {"Apollo-Require-Preflight": "true"},
            mapping=[{"column": "Nope", "field": "name"}],
        )  # fmt: skip
        assert bad_map.json()["data"]["importCustomers"]["userErrors"][0]["field"] == "file"

        as_json = server.post(UPLOAD, {"input": {"file": "name,kind\nAna,client"}})
        assert as_json["data"]["importCustomers"]["userErrors"][0]["field"] == "file"

        too_big = upload(server.url, data * 100, {"Apollo-Require-Preflight": "true"})
        assert too_big.status_code == 413

        names = server.gql("{ customers { nodes { name } } }")["customers"]["nodes"]
        assert [n["name"] for n in names] == ["Ana"]  # the agent's attempt wrote nothing
