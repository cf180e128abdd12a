"""Crowded identifier blocks (crmgraph.db.match_crowding): an e-mail or phone
held by more than ``BLOCK_LIMIT`` live customers pairs nobody through it, as
a common name does not. Found by an attack on our own server: 600 creates
with one e-mail stored 179,700 pairs, and each create cost 0.27 ms more per
holder. Here: past the limit a create's work (statements, rows, key rows
read) stays the same however many share the e-mail; blocks crossing the limit
up and down, through every kind of write and an import, keep the stored
pairs what a computation from scratch gives; writers of a crowded e-mail who
keep it do not wait for each other; migration 0057 drops the pairs stored
through crowded blocks (and, reversed, stores them again). Both engines."""

from __future__ import annotations

import asyncio
import functools
import importlib
import io
import itertools
from typing import Any

import asyncpg
import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db import match_crowding, match_keys, piccolo_conf
from crmgraph.db.engine import Database
from crmgraph.db.match_score import LIKELY, Normal, score
from crmgraph.dedupe.matching import Probe
from crmgraph.ids import decode_id
from crmgraph.testing import LiveServer, live_server, settings_for
from crmgraph.transfer.customers import CustomerImport
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.source import CsvSource, text_stream
from tests.test_crowded_blocks import second_edit_while_first_is_open
from tests.test_duplicates import (
    CREATE,
    DELETE,
    MERGE,
    RESTORE,
    UPDATE,
    StoredPairs,
    pairs_as_recomputed,
    stored_and_recomputed,
)
from tests.test_pairs_crowded import add, customer, keys_upkeep_counted

SHARED = "info@company.example"
MIGRATION = importlib.import_module("crmgraph.db.migrations.crmgraph_0057_crowded_identifiers")


def unique_name(n: int) -> str:
    """A two-word name no other ``n`` shares a name key with (letters only:
    digits are not name tokens)."""
    letters = "".join(chr(ord("a") + n // 26**k % 26) for k in range(3))
    return f"Zo{letters} Qa{letters}"


async def keyed(db: Database, rows: list[dict[str, Any]]) -> list[int]:
    """Customers written with their keys and pairs in one transaction, as an
    import batch writes them."""
    async with db.transaction():
        ids = await add(db, rows)
        await match_keys.insert_match_keys(
            db, {pk: Probe.from_row(row) for pk, row in zip(ids, rows, strict=True)}
        )
    return ids


async def create_counted(db: Database, fields: dict[str, Any]) -> tuple[int, int, int]:
    """A customer written as createCustomer writes it (the row, then its keys
    and pairs), committed: the statements and rows of the keys' and pairs'
    upkeep, and on PostgreSQL the key rows it fetched."""
    async with db.transaction():
        (pk,) = await add(db, [customer(fields)])
        return await keys_upkeep_counted(db, pk, fields)


async def pair_count(db: Database) -> int:
    (row,) = await db.fetch("SELECT COUNT(*) AS n FROM duplicate_pair")
    return int(row["n"])


def test_an_email_past_the_limit_pairs_nobody_and_a_create_costs_the_same(
    database_url: str,
) -> None:
    """100 holders of one e-mail pair with each other (4,950 pairs); the 101st
    takes the block over the limit and every pair through it goes; the next
    49 creates each read the same rows and run the same statements, and the
    key rows a create fetches stay under the cap of the e-mail's count, where
    reading the block took one per holder and more."""
    limit = match_crowding.BLOCK_LIMIT

    async def run(state: AppState) -> None:
        db = state.db
        await keyed(db, [customer({"name": unique_name(n), "email": SHARED}) for n in range(limit)])
        assert await pair_count(db) == limit * (limit - 1) // 2
        costs = [
            await create_counted(db, {"name": unique_name(n), "email": SHARED})
            for n in range(limit, limit + 50)
        ]
        assert await pair_count(db) == 0  # not 150 * 149 / 2 = 11,175
        # past the crossing, every create runs the same statements and gets the
        # same rows back (reading the block got one row per holder and key);
        # PostgreSQL fetches a few key rows, as many as the visibility map leaves
        # it (the e-mail's count stops at limit + 2 rows, the name keys are new)
        assert len({(statements, rows) for statements, rows, _ in costs[1:]}) == 1, costs
        assert costs[-1][1] < 10 and max(read for _, _, read in costs[1:]) <= limit + 10, costs
        stored, recomputed = await stored_and_recomputed(db)
        assert stored == recomputed == {}

    asyncio.run(with_state(settings_for(database_url), run))


def test_blocks_crossing_the_limit_keep_the_stored_pairs_from_scratch(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An e-mail and a phone block (limit 3) grow over the limit and shrink
    back, through creates, updates, a rename, a delete and restore and a
    merge: after each step the stored pairs are what a computation from
    scratch gives, and so is a rebuild. Namesakes sharing the crowded e-mail
    are still paired, through the name; createCustomer lists no duplicate
    through the crowded e-mail."""
    monkeypatch.setattr(match_crowding, "BLOCK_LIMIT", 3)
    settings = settings_for(database_url)

    check = functools.partial(pairs_as_recomputed, settings)

    with live_server(settings) as server:
        made: dict[str, tuple[str, int]] = {}

        def create(label: str, **fields: Any) -> list[dict[str, Any]]:
            answer = server.gql(CREATE, {"input": {"kind": "CLIENT", **fields}})["createCustomer"]
            assert answer["userErrors"] == []
            gid = answer["customer"]["id"]
            made[label] = (gid, decode_id(gid, "Customer")[1])
            return answer["duplicates"]

        def pk(*labels: str) -> tuple[int, ...]:
            return tuple(sorted(made[label][1] for label in labels))

        for label, name in (
            ("ana", "Ana Lopez"),
            ("bruno", "Bruno Diaz"),
            ("carla", "Carla Mendez"),
        ):
            create(label, name=name, email=SHARED)
        assert set(check("three share the e-mail")) == {pk("ana", "bruno"), pk("ana", "carla"),
                                                        pk("bruno", "carla")}  # fmt: skip
        assert len(create("dario", name="Dario Ruiz", email=SHARED.upper())) == 3  # before it
        assert check("a fourth: the e-mail block is crowded") == {}
        listed = create("twin", name="Ana López", email=SHARED)
        assert [d["customer"]["name"] for d in listed] == ["Ana Lopez"]  # through the name
        pairs = check("a namesake sharing the crowded e-mail")
        assert set(pairs) == {pk("ana", "twin")} and "EMAIL_EXACT" in pairs[pk("ana", "twin")][1]
        update(server, made["bruno"][0], email="bruno@elsewhere.example")
        check("an update leaves the crowded block, still crowded")
        update(server, made["dario"][0], name="Dario Ruiz Ortega")
        check("a rename keeps the crowded e-mail")
        update(server, made["dario"][0], email="dario@elsewhere.example")
        pairs = check("a second update takes it back under the limit")
        assert {pk("ana", "carla"), pk("carla", "twin"), pk("ana", "twin")} <= set(pairs)

        phone = ("+1 415 555 0199", "+14155550199", "+1 (415) 555-0199", "+1-415-555-0199")
        for n in range(2):
            create(f"p{n}", name=unique_name(40 + n), phone=phone[n])
        assert pk("p0", "p1") in check("two share a phone")
        for n in range(2, 4):
            create(f"p{n}", name=unique_name(40 + n), phone=phone[n])
        assert not {pair for pair in check("four: crowded") if made["p0"][1] in pair}
        assert server.gql(DELETE, {"id": made["p0"][0]})["deleteCustomer"]["userErrors"] == []
        assert pk("p1", "p2") in check("a delete takes the phone back under the limit")
        assert server.gql(RESTORE, {"id": made["p0"][0]})["restoreCustomer"]["userErrors"] == []
        assert pk("p1", "p2") not in check("a restore: crowded again")
        merged = server.gql(MERGE, {"input": {"survivorId": made["p0"][0],
                                              "mergedId": made["p1"][0]}})  # fmt: skip
        assert merged["mergeCustomers"]["userErrors"] == []
        stored = check("a merge takes the phone back under the limit")
        assert pk("p0", "p2") in stored

    async def rebuilt(state: AppState) -> StoredPairs:
        async with state.db.transaction():
            await match_keys.rebuild_duplicate_pairs(state.db)
        return (await stored_and_recomputed(state.db))[0]

    assert asyncio.run(with_state(settings, rebuilt)) == stored


def update(server: LiveServer, gid: str, **fields: Any) -> None:
    version = server.gql("query($id: ID!) { customer(id: $id) { version } }", {"id": gid})
    changed = server.gql(
        UPDATE,
        {"input": {"id": gid, "expectedVersion": version["customer"]["version"], **fields}},
    )
    assert changed["updateCustomer"]["userErrors"] == [], fields


async def import_csv(state: AppState, text: str, on_duplicate: str) -> Any:
    options = ImportOptions(on_duplicate=on_duplicate, kind="client")
    ctx = ImportContext(state.db, state.catalog, state.plugin_manager, "US")
    source = CsvSource(text_stream(io.BytesIO(text.encode())))
    summary, _ = await run_import(state.db, CustomerImport(ctx, options), source, options)
    return summary


def test_an_import_screens_and_pairs_nobody_through_a_crowded_email(database_url: str) -> None:
    """An import into a database where 120 customers hold an e-mail: its rows
    holding it are not repeats of them (``skip`` creates every one), and no
    pair is stored through it; an import that takes an e-mail block over the
    limit leaves none of the pairs stored before."""
    limit = match_crowding.BLOCK_LIMIT

    def rows(start: int, count: int, email: str) -> str:
        return "name,email\n" + "".join(
            f"{unique_name(n)},{email}\n" for n in range(start, start + count)
        )

    async def run(state: AppState) -> None:
        db = state.db
        await keyed(db, [customer({"name": unique_name(n), "email": SHARED}) for n in range(120)])
        summary = await import_csv(state, rows(1000, 30, SHARED), "skip")
        assert (summary.created, summary.skipped_duplicates) == (30, 0), summary.lines()
        assert await pair_count(db) == 0

        other = "sales@company.example"
        half = limit // 2
        await keyed(
            db,
            [customer({"name": unique_name(n), "email": other}) for n in range(2000, 2000 + half)],
        )
        assert await pair_count(db) == half * (half - 1) // 2
        summary = await import_csv(state, rows(3000, limit, other), "create")
        assert summary.created == limit, summary.lines()
        assert await pair_count(db) == 0
        stored, recomputed = await stored_and_recomputed(db)
        assert stored == recomputed == {}

    asyncio.run(with_state(settings_for(database_url), run))


# -- concurrent writers (PostgreSQL) ------------------------------------------------

RENAMES = ("Xavier Uno", "Yolanda Dos")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_renames_of_holders_of_a_crowded_email_do_not_wait_for_each_other(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two customers keeping a crowded e-mail (limit 3) are renamed at once:
    the e-mail block is locked shared, so the second rename goes through
    while the first holds its locks; two holders of a small block still wait."""
    monkeypatch.setattr(match_crowding, "BLOCK_LIMIT", 3)

    async def run(state: AppState) -> None:
        db = state.db
        crowd = await keyed(
            db, [customer({"name": unique_name(n), "email": SHARED}) for n in range(5)]
        )
        pair = await keyed(
            db, [customer({"name": unique_name(n), "email": "two@x.example"}) for n in (7, 8)]
        )
        await second_edit_while_first_is_open(db, crowd[0], crowd[1], "10s", "name", RENAMES)
        with pytest.raises(asyncpg.LockNotAvailableError):
            await second_edit_while_first_is_open(db, pair[0], pair[1], "200ms", "name", RENAMES)
        stored, recomputed = await stored_and_recomputed(db)
        assert stored == recomputed and len(stored) == 1

    asyncio.run(with_state(settings_for(database_url), run))


# -- migration 0057 -----------------------------------------------------------------


def crowded_pairs(rows: list[dict[str, Any]], ids: list[int]) -> set[tuple[int, int]]:
    """The pairs of two holders of one of the rows' e-mails or phones held
    more than the limit, scoring LIKELY or more: what the earlier rule stored."""
    normals = {pk: Normal.of(Probe.from_row(row)) for pk, row in zip(ids, rows, strict=True)}
    blocks: dict[tuple[str, str], list[int]] = {}
    for pk, normal in normals.items():
        for key in normal.blocking_keys():
            blocks.setdefault(key, []).append(pk)
    return {
        (a, b)
        for (key_type, _), holders in blocks.items()
        if key_type != "NAME" and match_crowding.crowded(len(holders))
        for a, b in itertools.combinations(sorted(holders), 2)
        if score(normals[a], normals[b], LIKELY)[0] >= LIKELY
    }


def test_the_migration_drops_pairs_through_crowded_blocks_and_reversed_stores_them(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reversed, 0057 stores the pairs of crowded e-mail and phone blocks (limit 3)
    as the earlier rule did, besides those of today's; forwards again, it drops
    them, and the stored pairs are what a computation from scratch gives."""
    monkeypatch.setattr(match_crowding, "BLOCK_LIMIT", 3)
    rows = [customer({"name": unique_name(n), "email": SHARED}) for n in range(5)]
    rows += [customer({"name": unique_name(0).upper(), "email": SHARED})]  # a namesake
    rows += [customer({"name": unique_name(n), "phone": "+14155550199"}) for n in range(10, 14)]
    rows += [customer({"name": unique_name(n), "email": "two@x.example"}) for n in (20, 21)]

    async def run(state: AppState) -> tuple[StoredPairs, ...]:
        ids = await keyed(state.db, rows)
        today, _ = await stored_and_recomputed(state.db)
        piccolo_conf.DB = state.db.engine  # the migration's steps find the engine there
        await (await MIGRATION.forwards()).run(backwards=True)
        earlier, _ = await stored_and_recomputed(state.db)
        await (await MIGRATION.forwards()).run()
        again, recomputed = await stored_and_recomputed(state.db)
        assert set(earlier) == set(today) | crowded_pairs(rows, ids)
        return today, earlier, again, recomputed

    today, earlier, again, recomputed = asyncio.run(with_state(settings_for(database_url), run))
    assert len(today) == 2  # the namesakes (through the name) and the pair of two@
    # every pair of the six holders of the e-mail and of the four of the phone
    assert len(earlier) == 1 + 15 + 6
    assert {k: v for k, v in earlier.items() if k in today} == today
    assert again == recomputed == today
