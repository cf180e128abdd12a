"""A full export imports back: the demo data set exported (customers,
contacts, interactions, needs) and imported into an empty database on the
same engine gives the same parties, field by field (kind, stage and phase of
every role a party holds, further roles with their attributes, owner, typed
attributes, contacts, interactions,
needs), converted prospects and parties with no e-mail, phone or tax id
included; owners come back as keyless agents, every stage as a stage change
saying it was imported; the same files imported once more create nothing.
Both engines; the seed is small (100 customers) but holds every case."""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import subprocess
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.auth import Principal, create_user
from crmgraph.db import stays
from crmgraph.db.queries import load_json, read_timestamp
from crmgraph.demo import seed_demo
from crmgraph.schema.ids import decode_id, encode_id
from crmgraph.testing import settings_for
from crmgraph.transfer.entities import entity_for
from crmgraph.transfer.export import export
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.modes import ENTITIES
from crmgraph.transfer.references import known_origin
from crmgraph.transfer.report import ImportSummary
from crmgraph.transfer.source import CsvSource, text_stream
from tests.conftest import fresh_database
from tests.helpers import cli_in_process

CUSTOMERS, SEED = 100, 3
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
COUNTED = ("customer", "customer_role", "stage_change", "contact", "interaction", "need",
           "crm_user", "team", "api_key", "transfer_ref")  # fmt: skip


def run(database_url: str, work: Any) -> Any:
    return asyncio.run(with_state(settings_for(database_url), work))


async def import_all(state: AppState, folder: Path) -> dict[str, ImportSummary]:
    """Every file of a full export, in order, as ``crmgraph import`` runs them."""
    ctx = ImportContext(
        state.db, state.catalog, state.plugin_manager, state.settings.default_phone_region
    )
    summaries = {}
    for entity in ENTITIES:
        options = ImportOptions()
        with (folder / f"{entity}.csv").open("rb") as raw:
            source = CsvSource(text_stream(raw))
            summary, rejected = await run_import(
                state.db, entity_for(entity, ctx, options), source, options
            )
        assert summary.failure is None, summary.failure
        assert rejected.count == 0, [(r.row, r.reasons()) for r in rejected.first[:5]]
        summaries[entity] = summary
    return summaries


def money(value: Any) -> str | None:
    return None if value is None else str(Decimal(str(value)).quantize(Decimal("0.01")))


def day(value: Any) -> str | None:
    return None if value is None else str(value)[:10]


async def parties(state: AppState, keys: dict[int, str]) -> dict[str, dict[str, Any]]:
    """Every party as comparable values, keyed by ``keys`` (pk -> source global ID);
    ids and creation times left out, other records by their content."""
    db = state.db
    found: dict[str, dict[str, Any]] = {}
    customers = await db.fetch(
        "SELECT c.*, u.email AS owner_email, u.name AS owner_name, u.role AS owner_role, "
        "t.name AS team_name FROM customer c LEFT JOIN crm_user u ON u.id = c.owner "
        "LEFT JOIN team t ON t.id = c.team ORDER BY c.id"
    )
    for row in customers:
        found[keys[row["id"]]] = {
            "kind": row["kind"],
            "name": row["name"],
            "email": row["email"],
            "phone": row["phone"],
            "owner": (row["owner_email"], row["owner_name"]),
            "team": row["team_name"],
            "attributes": load_json(row["attributes"]),
            "roles": {},
            "held": {},  # further roles' attributes, by kind
            "contacts": [],
            "interactions": [],
            "needs": [],
        }
    by_pk = {row["id"]: found[keys[row["id"]]] for row in customers}
    for role in await db.fetch("SELECT * FROM customer_role"):
        party = by_pk[role["customer"]]
        entered = read_timestamp(role["entered_at"])
        held = role["added_at"] is not None and role["ended_at"] is None
        if held and role["kind"] != party["kind"]:
            party["held"][role["kind"]] = load_json(role["attributes"])
        # the entry time of the current kind and further roles travels with the
        # export; that of a type left behind by a conversion does not
        when = entered if role["kind"] == party["kind"] or held else None
        party["roles"][role["kind"]] = (role["stage"], role["phase"], when)
    contact_names = {}
    for contact in await db.fetch("SELECT * FROM contact ORDER BY id"):
        contact_names[contact["id"]] = contact["name"]
        by_pk[contact["customer"]]["contacts"].append(
            (contact["name"], contact["email"], contact["phone"], contact["job_title"],
             bool(contact["is_primary"]), contact["notes"], day(contact["birthday"]),
             contact["home_address"])
        )  # fmt: skip
    for ix in await db.fetch("SELECT * FROM interaction ORDER BY id"):
        by_pk[ix["customer"]]["interactions"].append(
            (ix["channel"], ix["direction"], ix["purpose"],
             read_timestamp(ix["occurred_at"]).isoformat(), ix["subject"], ix["notes"],
             ix["outcome"], ix["satisfaction"], money(ix["amount"]),
             contact_names.get(ix["contact"]))
        )  # fmt: skip
    for need in await db.fetch("SELECT * FROM need ORDER BY id"):
        by_pk[need["customer"]]["needs"].append(
            (need["title"], need["description"], need["category"], need["consumption_type"],
             need["volume"], need["unit"], need["priority"], need["status"],
             day(need["due_date"]))
        )  # fmt: skip
    for party in found.values():
        for records in ("contacts", "interactions", "needs"):
            party[records].sort(key=repr)
    return found


def differences(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
) -> list[tuple[str, str, Any, Any]]:
    """(party, field, before, after) for every field that differs (a short list)."""
    found = [(key, "(party)", key in before, key in after) for key in before.keys() ^ after.keys()]
    for key in sorted(before.keys() & after.keys()):
        for name, value in before[key].items():
            if after[key][name] != value:
                found.append((key, name, value, after[key][name]))
    return found[:10]


async def counts(state: AppState) -> dict[str, int]:
    return {
        table: int((await state.db.fetch(f"SELECT COUNT(*) AS n FROM {table}"))[0]["n"])
        for table in COUNTED
    }


def test_full_export_imports_back_into_an_empty_database(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()

    async def source(state: AppState) -> tuple[str, dict[str, str], dict[str, dict[str, Any]]]:
        await seed_demo(state.db, state.catalog, customers=CUSTOMERS, seed=SEED, now=NOW)
        for entity in ENTITIES:
            with (folder / f"{entity}.csv").open("w", encoding="utf-8", newline="") as out:
                await export(state.db, state.catalog, entity, "csv", out)
        origin = await known_origin(state.db)
        assert origin is not None
        clients = io.StringIO()
        await export(state.db, state.catalog, "customers", "csv", clients, kind="client")
        rows = csv.DictReader(io.StringIO(clients.getvalue()))
        converted = [r for r in rows if r["former_roles"]]
        assert converted  # a client export keeps a converted prospect's attributes too
        for row in converted:
            stored = await state.db.fetch(
                "SELECT attributes FROM customer WHERE id = {}", decode_id(row["id"])[1]
            )
            names = load_json(stored[0]["attributes"]).keys()
            assert names <= row.keys() and all(row[name] for name in names)
        pks = await state.db.fetch("SELECT id FROM customer")
        keys = {row["id"]: encode_id("Customer", row["id"]) for row in pks}
        initial = {d.key: d.lifecycle.initial for d in state.catalog.customer_types}
        return origin, initial, await parties(state, keys)

    origin, initial, before = run(database_url, source)
    # the seed holds every case the round trip must carry
    kinds = Counter(p["kind"] for p in before.values())
    assert len(kinds) == 8, kinds
    converted = [p for p in before.values() if len(p["roles"]) > 1 + len(p["held"])]
    assert converted and all("prospect" in p["roles"] for p in converted)
    several = [p for p in before.values() if p["held"]]  # parties with further roles
    assert len(several) >= 4 and any(len(p["held"]) >= 2 for p in several)
    keyless = [
        p for p in before.values()
        if not p["email"] and not p["phone"] and not p["attributes"].get("tax_id")
    ]  # fmt: skip
    assert len(keyless) >= 2
    assert sum(p["owner"][0] is not None for p in before.values()) > 50
    assert sum(p["roles"][p["kind"]][0] != initial[p["kind"]] for p in before.values()) > 20

    engine = "sqlite" if database_url.startswith("sqlite") else "postgres"
    with fresh_database(engine, request, tmp_path / "target.sqlite") as target:

        async def first(state: AppState) -> dict[str, Any]:
            summaries = await import_all(state, folder)
            refs = await state.db.fetch(
                "SELECT ref, entity_id FROM transfer_ref WHERE entity_type = 'Customer'"
            )
            keys = {row["entity_id"]: row["ref"].removeprefix(f"{origin}/") for row in refs}
            # the funnel's stored stays and phases are what the history gives
            stored = "SELECT * FROM stage_change ORDER BY id"
            left = await state.db.fetch(stored)
            await stays.record_stays(state.db)
            assert await state.db.fetch(stored) == left
            return {
                "created": {e: s.created for e, s in summaries.items()},
                "parties": await parties(state, keys),
                "counts": await counts(state),
                "users": await state.db.fetch("SELECT email, role FROM crm_user"),
                "history": await state.db.fetch(
                    "SELECT kind, to_stage, from_stage, reason FROM stage_change"
                ),
                "events": Counter(
                    r["type"] for r in await state.db.fetch("SELECT type FROM event")
                ),
            }

        async def again(state: AppState) -> dict[str, Any]:
            summaries = await import_all(state, folder)
            return {
                "created": {e: s.created for e, s in summaries.items()},
                "skipped": {e: s.skipped_duplicates for e, s in summaries.items()},
                "counts": await counts(state),
            }

        after = run(target, first)
        second = run(target, again)

    assert after["created"]["customers"] == len(before)
    assert differences(before, after["parties"]) == []  # every party, field by field
    for party in after["parties"].values():  # the original's roles' entry times are left out
        assert party["roles"][party["kind"]][2] is not None
    # owners by e-mail: created as agents (never more), no key for anyone
    assert {u["role"] for u in after["users"]} == {"agent"}
    assert after["counts"]["api_key"] == 0
    # each role's stage is one stage change saying it was imported
    history = after["history"]
    assert len(history) == sum(len(p["roles"]) for p in before.values())
    assert {(h["from_stage"], h["reason"]) for h in history} == {(None, "imported")}
    # each record left what its mutation leaves: one event each
    assert after["events"]["customer.created"] == len(before)
    assert after["events"]["interaction.logged"] == after["created"]["interactions"]
    assert after["events"]["need.recorded"] == after["created"]["needs"]
    # the same files again: nothing new, every row recognised
    assert second["created"] == dict.fromkeys(ENTITIES, 0)
    assert second["skipped"] == after["created"]
    assert second["counts"] == after["counts"]


def test_rows_of_a_file_name_parties_by_ref_only(database_url: str, tmp_path: Path) -> None:
    """Two keyless parties of one name stay two, and a contact names the right
    one by its ref although the file's global IDs mean nothing here."""
    origin = "0123456789abcdef"
    ada, bea = f"{origin}/{encode_id('Customer', 901)}", f"{origin}/{encode_id('Customer', 902)}"
    (tmp_path / "customers.csv").write_text(
        f"ref,kind,name,stage\n{ada},client,Same Name,active\n{bea},client,Same Name,\n"
    )
    (tmp_path / "contacts.csv").write_text(
        "ref,customer,customer.ref,name\n"
        f"{origin}/{encode_id('Contact', 5)},{encode_id('Customer', 1)},{bea},Bea's contact\n"
    )

    async def work(state: AppState) -> tuple[list[int], list[dict[str, Any]]]:
        ctx = ImportContext(state.db, state.catalog, state.plugin_manager, "ES")
        created = []
        for _ in range(2):
            for entity in ("customers", "contacts"):
                options = ImportOptions()
                with (tmp_path / f"{entity}.csv").open("rb") as raw:
                    summary, rejected = await run_import(
                        state.db,
                        entity_for(entity, ctx, options),
                        CsvSource(text_stream(raw)),
                        options,
                    )
                assert rejected.count == 0, rejected.first
                created.append(summary.created)
        rows = await state.db.fetch(
            "SELECT c.id, r.stage, k.name AS contact FROM customer c "
            "JOIN customer_role r ON r.customer = c.id LEFT JOIN contact k ON k.customer = c.id "
            "ORDER BY c.id"
        )
        return created, rows

    created, rows = run(database_url, work)
    assert created == [2, 1, 0, 0]  # the second run finds both parties and the contact
    assert [(r["stage"], r["contact"]) for r in rows] == [
        ("active", None),
        ("interest", "Bea's contact"),
    ]


def crmgraph_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The command by ``crmgraph.cli.main`` in this process (the command's
    wiring is what is tested; a process of its own adds 1.5 s of imports)."""
    return cli_in_process(database_url, "--database", database_url, *args)


def test_export_all_and_import_all_on_the_command_line(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """``crmgraph export all`` writes a full export into a folder and
    ``crmgraph import all`` reads it back in order (SQLite: the command
    wiring; both engines' import is tested above)."""
    folder = tmp_path / "full"
    with (
        fresh_database("sqlite", request, tmp_path / "a.sqlite") as source,
        fresh_database("sqlite", request, tmp_path / "b.sqlite") as target,
    ):

        async def seed(state: AppState) -> dict[str, int]:
            await seed_demo(state.db, state.catalog, customers=20, seed=SEED, now=NOW)
            return await counts(state)

        seeded = run(source, seed)
        done = crmgraph_cli(source, "export", "all", "--output", str(folder))
        assert done.returncode == 0, done.stderr
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{e}.csv" for e in ENTITIES)
        done = crmgraph_cli(target, "import", "all", str(folder), "--quiet")
        assert done.returncode == 0, done.stderr
        for entity in ENTITIES:
            assert f"{entity}: read {seeded[entity_table(entity)]}, " in done.stdout
        assert "rejected 0" in done.stdout and "rejected rows" not in done.stdout
        imported = run(target, counts)
        for table in ("customer", "contact", "interaction", "need"):
            assert imported[table] == seeded[table], table
        refused = crmgraph_cli(target, "import", "all", str(folder), "--map", "a=name")
        assert refused.returncode == 2 and "no --map" in refused.stderr


def entity_table(entity: str) -> str:
    return {"customers": "customer", "contacts": "contact", "interactions": "interaction",
            "needs": "need"}[entity]  # fmt: skip


def test_a_known_ref_is_merged_into_under_merge(database_url: str, tmp_path: Path) -> None:
    """Under ``merge`` a row whose ref an import took in is folded into that
    customer (it takes the row's values where it has none) and nothing is created."""
    ref = f"0123456789abcdef/{encode_id('Customer', 7)}"
    first = tmp_path / "first.csv"
    first.write_text(f"ref,kind,name\n{ref},prospect,Keyless Lead\n")
    later = tmp_path / "later.csv"
    later.write_text(f"ref,kind,name,phone\n{ref},prospect,Keyless Lead,+34600123456\n")

    async def work(state: AppState) -> tuple[list[tuple[int, int]], list[dict[str, Any]]]:
        ctx = ImportContext(state.db, state.catalog, state.plugin_manager, "ES")
        outcomes = []
        for path, mode in ((first, "skip"), (later, "merge")):
            options = ImportOptions(on_duplicate=mode)
            with path.open("rb") as raw:
                summary, rejected = await run_import(
                    state.db, entity_for("customers", ctx, options), CsvSource(text_stream(raw)),
                    options,
                )  # fmt: skip
            assert rejected.count == 0, rejected.first
            outcomes.append((summary.created, summary.merged))
        return outcomes, await state.db.fetch("SELECT name, phone FROM customer")

    outcomes, rows = run(database_url, work)
    assert outcomes == [(1, 0), (0, 1)]
    assert [(r["name"], r["phone"]) for r in rows] == [("Keyless Lead", "+34600123456")]


def test_only_the_command_line_creates_owners(database_url: str, tmp_path: Path) -> None:
    """A caller importing over GraphQL (a manager: customer.import, no user
    management) gets NOT_FOUND for an owner the database lacks; the command
    line creates one as a keyless agent."""
    path = tmp_path / "customers.csv"
    path.write_text("kind,name,owner,owner.name\nclient,Owned SL,new.owner@example.com,New Owner\n")

    async def work(state: AppState) -> dict[str, Any]:
        manager = await create_user(state.db, "Manager", "manager@example.com", "manager")
        access = state.policy.access(Principal(manager, "Manager", "manager"))
        found = {}
        for who, ctx_access in (("graphql", access), ("cli", None)):
            ctx = ImportContext(state.db, state.catalog, state.plugin_manager, "ES")
            ctx.access, ctx.actor = ctx_access, manager if ctx_access else None
            options = ImportOptions()
            with path.open("rb") as raw:
                summary, rejected = await run_import(
                    state.db, entity_for("customers", ctx, options), CsvSource(text_stream(raw)),
                    options,
                )  # fmt: skip
            found[who] = (
                summary.created,
                [(p.field, p.code) for r in rejected.first for p in r.problems],
            )
        found["users"] = await state.db.fetch(
            "SELECT u.email, u.name, u.role, COUNT(k.id) AS keys FROM crm_user u "
            "LEFT JOIN api_key k ON k.holder = u.id GROUP BY u.email, u.name, u.role "
            "ORDER BY u.email"
        )
        return found

    found = run(database_url, work)
    assert found["graphql"] == (0, [("owner", "NOT_FOUND")])
    assert found["cli"] == (1, [])
    assert [(u["email"], u["name"], u["role"], u["keys"]) for u in found["users"]] == [
        ("manager@example.com", "Manager", "manager", 0),
        ("new.owner@example.com", "New Owner", "agent", 0),
    ]


def test_a_ref_of_a_customer_the_caller_cannot_see(database_url: str, tmp_path: Path) -> None:
    """An agent importing a row whose ref names another owner's customer is
    told nothing of it: the row is new to them (their own customer), the
    hidden one is not merged into, and the ref keeps naming it."""
    ref = f"0123456789abcdef/{encode_id('Customer', 3)}"
    path = tmp_path / "customers.csv"
    path.write_text(f"ref,kind,name,owner\n{ref},prospect,Hidden Lead,boss@example.com\n")
    mine = tmp_path / "mine.csv"  # no owner: an agent's rows are their own
    mine.write_text(f"ref,kind,name,email\n{ref},prospect,Hidden Lead,lead@example.com\n")

    async def work(state: AppState) -> dict[str, Any]:
        await create_user(state.db, "Boss", "boss@example.com", "manager")
        agent = await create_user(state.db, "Agent", "agent@example.com", "agent")
        found = {}
        agent_access = state.policy.access(Principal(agent, "Agent", "agent"))
        for who, access, file in (("cli", None, path), ("agent", agent_access, mine)):
            ctx = ImportContext(state.db, state.catalog, state.plugin_manager, "ES")
            ctx.access = access
            options = ImportOptions(on_duplicate="merge")
            with file.open("rb") as raw:
                summary, _ = await run_import(
                    state.db, entity_for("customers", ctx, options), CsvSource(text_stream(raw)),
                    options,
                )  # fmt: skip
            found[who] = (summary.created, summary.merged, summary.rejected)
        found["owners"] = await state.db.fetch(
            "SELECT u.email, c.email AS customer_email FROM customer c "
            "JOIN crm_user u ON u.id = c.owner ORDER BY c.id"
        )
        found["ref"] = await state.db.fetch(
            "SELECT u.email FROM transfer_ref r JOIN customer c ON c.id = r.entity_id "
            "JOIN crm_user u ON u.id = c.owner"
        )
        return found

    found = run(database_url, work)
    assert found["cli"] == (1, 0, 0)
    assert found["agent"] == (1, 0, 0)  # not merged into the boss's customer
    assert [(r["email"], r["customer_email"]) for r in found["owners"]] == [
        ("boss@example.com", None),
        ("agent@example.com", "lead@example.com"),
    ]
    assert [r["email"] for r in found["ref"]] == ["boss@example.com"]
