"""Names ordered as people read them and searched in any script and case,
the same on SQLite and PostgreSQL, on the resolver path and the compiled
path alike (crmgraph.db.text_keys: folded copies written with every name).

- ``customers(orderBy: {field: NAME})`` walked 3 at a time, both directions,
  lists exactly the hand-written reading order (accents and case aside:
  "Asesoría Álvarez" before "Asesoría Torres"; Latin, then Greek, Cyrillic,
  Arabic and Japanese), each customer once, ties by id.
- ``search`` and ``contactSearch`` find "Петров" by "петров" and "ПЕТРОВ",
  "Straße" by "strasse", "Łukasz" by "lukasz", e-mails by unaccented text.
- Every way a name or e-mail is written keeps the folded copies current:
  create, update, contacts, a CSV import, a merge, an erasure, the demo seed;
  migration 0030 fills them for rows written before it, and rebuilds the
  name match keys (names in other scripts pair as duplicates).
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db import piccolo_conf, text_keys
from crmgraph.db.engine import Database, make_engine
from crmgraph.db.tables import CORE_TABLES
from crmgraph.demo import seed_demo
from crmgraph.plugins.client import CLIENT
from crmgraph.schema.pagination import encode_cursor
from crmgraph.testing import LiveServer, live_server, migrate_for, settings_for
from tests.helpers import RoleWorld, add_contact, create_customer

# The reading order (ascending). Equal folded names ("ANA", "Ana", "ana",
# "Ána") keep a fixed order by their spelling; two customers named "Luz" by id.
READING_ORDER = [
    "ANA",
    "Ana",
    "ana",
    "Ána",
    "Ana María",
    "Anabel",
    "Asesoría Álvarez",
    "asesoria alvarez",
    "ASESORÍA ÁLVAREZ S.L.",
    "Asesoría Torres",
    "Elena",
    "Émile Zola",
    "Eva",
    "Lucas",
    "Łukasz Nowak",
    "Luz",
    "Luz",
    "Ørsted",
    "Oscar",
    "Otto",
    "Strasse AG",
    "Straße GmbH",
    "Zoë",
    "Γιώργος Παπαδόπουλος",
    "Иван Петров",
    "петров и сыновья",
    "ПЕТРОВ Сергей",
    "محمد علي",
    "株式会社トヨタ",
]
EMAILS = {"Eva": "Eva.Ñúñez@example.com", "Otto": "otto@ÉXAMPLE.com"}
# created in this order (not the reading one), so ids do not give the answer
CREATION_ORDER = sorted(range(len(READING_ORDER)), key=lambda i: (i * 7) % len(READING_ORDER))

WALK = """query($after: String, $o: CustomerOrder, $f: CustomerFilter) {
  customers(first: 3, after: $after, orderBy: $o, filter: $f) {
    totalCount edges { cursor node { id name } } pageInfo { hasNextPage endCursor }
  }
}"""


@dataclass
class Paths:
    """Two servers on one database: compiled reads on and off."""

    compiled: LiveServer
    resolved: LiveServer
    ids: dict[int, str]  # position in READING_ORDER -> customer ID

    def both(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        compiled = self.compiled.gql(query, variables)
        assert compiled == self.resolved.gql(query, variables), variables
        return compiled


@pytest.fixture
def paths(database_url: str) -> Iterator[Paths]:
    with (
        live_server(settings_for(database_url, compiled_reads=True)) as compiled,
        live_server(settings_for(database_url, compiled_reads=False)) as resolved,
    ):
        ids = {}
        for position in CREATION_ORDER:
            name = READING_ORDER[position]
            extra = {"email": EMAILS[name]} if name in EMAILS else {}
            ids[position] = create_customer(compiled, name=name, **extra)["id"]
        otto = ids[READING_ORDER.index("Otto")]
        add_contact(compiled, otto, name="Мария Łukasiewicz", email="maria@example.com")
        yield Paths(compiled, resolved, ids)


def walk(paths: Paths, direction: str, search: str | None = None) -> list[tuple[str, str]]:
    """Every page, following the cursors; (id, name) in the order listed."""
    order = {"field": "NAME", "direction": direction}
    found: list[tuple[str, str]] = []
    after = None
    for _ in range(50):
        variables = {"after": after, "o": order, "f": {"search": search} if search else None}
        page = paths.both(WALK, variables)["customers"]
        assert len(page["edges"]) <= 3
        found += [(e["node"]["id"], e["node"]["name"]) for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            assert len(found) == page["totalCount"]
            return found
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("the walk did not end")


def expected(paths: Paths, direction: str, names: set[str] | None = None) -> list[tuple[str, str]]:
    """READING_ORDER (ties by id ascending), reversed whole for DESC."""
    rows = [(paths.ids[i], name) for i, name in enumerate(READING_ORDER)]
    luz = sorted((r for r in rows if r[1] == "Luz"), key=lambda r: int_id(r[0]))
    at = READING_ORDER.index("Luz")
    rows[at : at + 2] = luz
    if names is not None:
        rows = [r for r in rows if r[1] in names]
    return rows if direction == "ASC" else rows[::-1]


def int_id(global_id: str) -> int:
    from crmgraph.schema.ids import decode_id

    return decode_id(global_id, "Customer")[1]


def test_the_reading_order_is_the_stored_sort_key_order() -> None:
    keys = [text_keys.sort_key(name) for name in READING_ORDER]
    assert keys == sorted(keys)
    assert text_keys.fold("Asesoría ÁLVAREZ") == "asesoria alvarez"
    assert text_keys.fold("ПЕТРОВ") == text_keys.fold("петров") == "петров"
    assert text_keys.fold("Straße") == "strasse" and text_keys.fold("Łódź") == "lodz"
    assert text_keys.fold(" a\u00a0\tb\u00ad ") == "a b"  # spaces collapsed, soft hyphen out
    assert text_keys.search_pattern("\u200b") is None  # nothing searchable left
    assert text_keys.search_pattern("50%_o\\") == "%50\\%\\_o\\\\%"


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_names_are_walked_in_reading_order(paths: Paths, direction: str) -> None:
    listed = walk(paths, direction)
    assert len(listed) == len(set(listed)) == len(READING_ORDER)  # nothing skipped or repeated
    assert listed == expected(paths, direction)
    asesorias = {n for n in READING_ORDER if n.casefold().startswith("asesor")}
    assert walk(paths, direction, "ASESORIA") == expected(paths, direction, asesorias)


def test_a_name_cursor_from_before_the_sort_key_is_refused(paths: Paths) -> None:
    """Cursors made before migration 0030 hold the name itself: refused
    (INVALID_CURSOR) on both paths rather than read as a sort key."""
    old = encode_cursor("customers:NAME", "Asesoría Torres", int_id(paths.ids[9]))
    order = {"field": "NAME", "direction": "ASC"}
    for server in (paths.compiled, paths.resolved):
        body = server.post(WALK, {"after": old, "o": order})
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_CURSOR"]


SEARCHES = {
    "петров": {"Иван Петров", "петров и сыновья", "ПЕТРОВ Сергей"},
    "ПЕТРОВ": {"Иван Петров", "петров и сыновья", "ПЕТРОВ Сергей"},
    "Петров": {"Иван Петров", "петров и сыновья", "ПЕТРОВ Сергей"},
    "alvarez": {"Asesoría Álvarez", "asesoria alvarez", "ASESORÍA ÁLVAREZ S.L."},
    "ÁLVAREZ s.l": {"ASESORÍA ÁLVAREZ S.L."},
    "strasse": {"Strasse AG", "Straße GmbH"},
    "STRAẞE": {"Strasse AG", "Straße GmbH"},
    "lukasz": {"Łukasz Nowak"},
    "ørsted": {"Ørsted"},
    "ΓΙΩΡΓΟΣ": {"Γιώργος Παπαδόπουλος"},
    "مُحَمَّد": {"محمد علي"},
    "トヨタ": {"株式会社トヨタ"},
    "ñuñez@": {"Eva"},
    "nunez": {"Eva"},
    "@example.com": {"Eva", "Otto"},
    "otto@e": {"Otto"},
    "zoe": {"Zoë"},
    "%": set(),
    "_": set(),
}
CONTACT_SEARCHES = {
    "МАРИЯ": {"Otto"},
    "lukasiewicz": {"Otto"},
    "мария ł": {"Otto"},
    "MARIA@": {"Otto"},
    "иван": set(),
}
FOUND = """query($f: CustomerFilter) {
  customers(first: 50, filter: $f) { totalCount nodes { name } }
}"""


def test_search_matches_any_script_and_case(paths: Paths) -> None:
    for needle, names in SEARCHES.items():
        found = paths.both(FOUND, {"f": {"search": needle}})["customers"]
        assert sorted(n["name"] for n in found["nodes"]) == sorted(names), needle
        assert found["totalCount"] == len(names), needle
    for needle, names in CONTACT_SEARCHES.items():
        found = paths.both(FOUND, {"f": {"contactSearch": needle}})["customers"]
        assert sorted(n["name"] for n in found["nodes"]) == sorted(names), needle
    # nothing searchable in the needle: no condition, as for a blank one
    everyone = paths.both(FOUND, {"f": {"search": "\u200b\u00ad"}})["customers"]
    assert everyone["totalCount"] == len(READING_ORDER)


def test_contacts_are_listed_primary_first_then_as_read(paths: Paths) -> None:
    anabel = paths.ids[READING_ORDER.index("Anabel")]
    for name in ("Zoë", "álvaro", "Bea", "ÁLVARO", "Ívan"):
        add_contact(paths.compiled, anabel, name=name)
    add_contact(paths.compiled, anabel, name="Mario", isPrimary=True)
    query = "query($id: ID!) { customer(id: $id) { contacts { name isPrimary } } }"
    contacts = paths.both(query, {"id": anabel})["customer"]["contacts"]
    # equal folded names ("álvaro", "ÁLVARO") in the order they were added
    assert [c["name"] for c in contacts] == ["Mario", "álvaro", "ÁLVARO", "Bea", "Ívan", "Zoë"]
    listed = paths.both("{ customers(first: 50) { nodes { name contacts { name } } } }", {})
    (nodes,) = [n for n in listed["customers"]["nodes"] if n["name"] == "Anabel"]
    assert nodes["contacts"] == [{"name": c["name"]} for c in contacts]


# -- every write keeps the copies ------------------------------------------------------


async def stale_rows(db: Database) -> list[dict[str, Any]]:
    """Customers and contacts whose folded copies differ from what their name
    and e-mail give (``fold``, ``sort_key``)."""
    stale = []
    for table in ("customer", "contact"):
        copies = [c for columns in text_keys.DERIVED[table].values() for c, _ in columns]
        rows = await db.fetch(f"SELECT id, name, email, {', '.join(copies)} FROM {table}")
        for row in rows:
            want = text_keys.derived_values(table, {"name": row["name"], "email": row["email"]})
            if {column: row[column] for column in want} != want:
                stale.append({"table": table, **row})
    return stale


UPLOAD = """mutation($input: ImportCustomersInput!) {
  importCustomers(input: $input) { summary { created } userErrors { message } }
}"""


def import_csv(server: LiveServer, key: str, text: str) -> dict[str, Any]:
    operations = {"query": UPLOAD, "variables": {"input": {"file": None, "kind": "CLIENT"}}}
    response = server.http.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": '{"0": ["variables.input.file"]}'},
        files={"0": ("people.csv", text.encode(), "text/csv")},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["importCustomers"]


def test_every_write_keeps_the_folded_copies(database_url: str) -> None:
    with RoleWorld.serving(database_url, (), ("admin",), "keys.example") as world:
        survivor = world.create("Óscar Núñez", email="OSCAR@example.com")
        merged = world.create("ÓSCAR NÚÑEZ PÉREZ")
        renamed = world.create("Zoë")
        erased = world.create("Иван Петров", email="ivan@example.com")
        version = world.data(f'{{ customer(id: "{renamed}") {{ version }} }}')["customer"]
        world.ok(
            "updateCustomer",
            {"id": renamed, "expectedVersion": version["version"], "name": "Zoë Ångström",
             "email": "ZOE@EXAMPLE.COM"},
        )  # fmt: skip
        contact = world.ok(
            "addContact", {"customerId": survivor, "name": "Ólafur"}, "contact { id }"
        )["contact"]["id"]
        world.ok("updateContact", {"id": contact, "name": "Мария", "email": "m@example.com"})
        world.ok("addContact", {"customerId": erased, "name": "Пётр", "email": "p@example.com"})
        imported = import_csv(
            world.server, world.keys["admin"], "name,email\nAsesoría Álvarez,ÁLV@example.com\n"
        )
        assert imported["summary"] == {"created": 1}, imported
        merge = world.ok(
            "mergeCustomers",
            {"survivorId": survivor, "mergedId": merged, "reason": "same person",
             "fieldChoices": [{"field": "name", "source": "MERGED"},
                              {"field": "email", "source": "SURVIVOR"}]},
            "merge { id }",
        )["merge"]["id"]  # fmt: skip
        assert world.run(lambda state: stale_rows(state.db)) == []
        (merged_name,) = world.sql("SELECT name_folded FROM customer WHERE deleted_at IS NULL "
                                   "AND name_folded LIKE 'oscar%'")  # fmt: skip
        assert merged_name["name_folded"] == "oscar nunez perez"  # the survivor took its name
        world.ok("undoMerge", {"mergeId": merge})  # and gives it back
        world.ok("erasePersonalData", {"customerId": erased, "reason": "request 7"})

        stale = world.run(lambda state: stale_rows(state.db))
        assert stale == []
        names = {
            r["name"]: r["name_folded"]
            for r in world.sql("SELECT name, name_folded FROM customer WHERE deleted_at IS NULL")
        }
        assert names["Óscar Núñez"] == "oscar nunez"
        assert names["ÓSCAR NÚÑEZ PÉREZ"] == "oscar nunez perez"
        assert names["Zoë Ångström"] == "zoe angstrom"
        assert names["Asesoría Álvarez"] == "asesoria alvarez"
        assert "Иван Петров" not in names  # erased: its copies are the erased name's


def test_the_demo_seed_writes_the_folded_copies(database_url: str) -> None:
    async def seed_and_check(state: AppState) -> list[dict[str, Any]]:
        await seed_demo(state.db, state.catalog, customers=60, seed=5)
        rows = await state.db.fetch("SELECT COUNT(*) AS n FROM customer WHERE name_sort = ''")
        assert rows[0]["n"] == 0
        return await stale_rows(state.db)

    assert asyncio.run(with_state(settings_for(database_url), seed_and_check)) == []


FOLDED_NAMES = importlib.import_module("crmgraph.db.migrations.crmgraph_0030_folded_names")
SEARCH_INDEXES = importlib.import_module("crmgraph.db.migrations.crmgraph_0035_search_indexes")
OLD_ROWS = [("Иван Петров", "ivan@example.com"), ("ИВАН ПЕТРОВ", None), ("Asesoría Álvarez", None)]


async def before_the_migration(db: Database) -> None:
    """The schema as it was before migration 0030 (its backwards step) and
    rows an older release wrote: names with no folded copies, no name keys."""
    piccolo_conf.DB = db.engine  # the migration's steps find the engine there
    # newest first: 0035's search indexes and triggers read 0030's columns
    for migration in (SEARCH_INDEXES, FOLDED_NAMES):
        manager = await migration.forwards()
        for step in manager.raw_backwards:
            await step()
        await db.fetch("DELETE FROM migration WHERE name = {}", migration.ID)
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    stage, phase = CLIENT.lifecycle.initial, CLIENT.lifecycle.initial_phase
    for name, email in OLD_ROWS:
        pk = (
            await db.fetch(
                "INSERT INTO customer (kind, name, email, attributes, version, created_at, "
                "updated_at) VALUES ('client', {}, {}, {}, 1, {}, {}) RETURNING id",
                name,
                email,
                "{}",
                at,
                at,
            )
        )[0]["id"]
        await db.fetch(
            "INSERT INTO customer_role (customer, kind, stage, phase, entered_at) "
            "VALUES ({}, 'client', {}, {}, {})",
            pk,
            stage,
            phase,
            at,
        )
        await db.fetch(
            "INSERT INTO contact (customer, name, email, is_primary, created_at, updated_at) "
            "VALUES ({}, {}, {}, {}, {}, {})",
            pk,
            f"Контакт {name}",
            email,
            False,
            at,
            at,
        )


async def with_db(database_url: str, work: Any) -> Any:
    settings = settings_for(database_url)
    db = Database(make_engine(settings), CORE_TABLES)
    await db.start(settings)
    try:
        return await work(db)
    finally:
        await db.stop()


def test_the_migration_fills_rows_written_before_it(database_url: str) -> None:
    asyncio.run(with_db(database_url, before_the_migration))
    asyncio.run(migrate_for(settings_for(database_url)))  # migrations 0030 and 0035 again

    async def after(db: Database) -> tuple[list[Any], list[Any], list[Any]]:
        pairs = await db.fetch(
            "SELECT a.name AS a, b.name AS b FROM duplicate_pair p "
            "JOIN customer a ON a.id = p.customer_a JOIN customer b ON b.id = p.customer_b"
        )
        order = await db.fetch("SELECT name FROM customer ORDER BY name_sort, id")
        return await stale_rows(db), pairs, [row["name"] for row in order]

    stale, pairs, order = asyncio.run(with_db(database_url, after))
    assert stale == []
    assert [sorted((p["a"], p["b"])) for p in pairs] == [sorted(["Иван Петров", "ИВАН ПЕТРОВ"])]
    assert order == ["Asesoría Álvarez", "ИВАН ПЕТРОВ", "Иван Петров"]
