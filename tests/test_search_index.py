"""``search`` and ``contactSearch`` through the trigram indexes of migration
crmgraph_0035 (crmgraph.db.search), on both engines, the compiled path and
the resolvers alike:

- each needle (accents, case, parts of e-mails, other scripts, needles of
  one, two and three or more characters, ``%``, ``_``, ``"``, ``'``, ``\\``,
  braces and ``$1`` taken literally: PostgreSQL's statement holds the
  pattern written in) finds exactly the customers whose folded name or e-mail holds
  the folded needle, as Python computes it: so both engines answer alike;
- keyset pages through a search's results (by name and by creation) list
  every match once, in order;
- the index follows each write in its transaction: a renamed customer is
  found under its new name and not its old one, a deleted contact no more;
- the statement uses the index: on PostgreSQL (20,000 customers inserted
  set-based, so the planner prefers it) a bitmap scan of the grams' GIN index
  (crmgraph_0046) for a needle of five characters or more, of pg_trgm's for
  one of three or four; on SQLite the FTS5 table for three or more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from crmgraph.app import AppState
from crmgraph.db import queries, search, text_keys
from crmgraph.db.engine import make_engine
from crmgraph.db.migrations import crmgraph_0060_search_lexemes as search_lexemes
from crmgraph.plugins.client import CLIENT
from crmgraph.testing import LiveServer, live_server, run_sql, settings_for
from tests.helpers import Recording, add_contact, create_customer
from tests.test_redundant_indexes import index_names, reversed_and_again
from tests.test_subscriptions import graphql_ws

PEOPLE = [
    ("Ana María Núñez", "ana.nunez@example.com"),
    ("ANA NUÑEZ", None),
    ("Anabel Ortiz", "anabel@ejemplo.es"),
    ("ПЕТРОВ Сергей", "petrov@example.ru"),
    ("Иван Петров", None),
    ("株式会社トヨタ", "info@toyota.example"),
    ("50% Off_Sale Ltd", "sales_team@off.example"),
    ('The "Quoted" Co', None),
    ("Zoë Ångström", "ZOE@EXAMPLE.COM"),
    ("Łukasz Nowak", None),
    ("Ab", None),
    ("O'Brien {Hub} \\ Co $1", None),
]
CONTACTS = {"Anabel Ortiz": ("Мария Łukasiewicz", "maria@example.com")}
NEEDLES = [
    "a", "Ñ", "ab", "ña", "ヨタ", "nun", "NÚÑEZ", "ana m", "ana.n", "@example", "EXAMPLE.COM",
    "петров", "ПЕТР", "トヨタ", "50%", "%", "_", "f_s", "es_t", '"quoted"', '"', "angstrom",
    "lukasz", "zzq", "no such name", "o'b", "'", "{hub}", "{}", "\\", "} \\ c", "$1",
    "ana maría núñez", "ría nú", "nunez ana", "a núñe", "angström", "zoë å", "ov@ex", "式会社トヨ",
    "株式会社トヨタ", "ab ab", "ltd sales",
    # tsquery's syntax, taken literally (PostgreSQL's query is written, crmgraph_0060)
    "ana:*", "!ana", "a & b", "ana | núñez", "(ab)", "núñez:A", "<->", "ana\\:*",
]  # fmt: skip
CONTACT_NEEDLES = [
    "мария", "LUKASIEWICZ", "ia@", "ab", "ñ", "zzq", "Мария Łuka", "aria@exa", "ortiz",
]  # fmt: skip
QUERY = """query($f: CustomerFilter) {
  customers(first: 50, filter: $f) { totalCount nodes { name } }
}"""
WALK = """query($after: String, $o: CustomerOrder, $f: CustomerFilter) {
  customers(first: 4, after: $after, orderBy: $o, filter: $f) {
    totalCount edges { node { name } } pageInfo { hasNextPage endCursor }
  }
}"""


def holds(text: str | None, needle: str) -> bool:
    return text is not None and text_keys.fold(needle) in text_keys.fold(text)


@dataclass
class Paths:
    """Two servers on one database: compiled reads on and off."""

    compiled: LiveServer
    resolved: LiveServer
    ids: dict[str, str] = field(default_factory=dict)  # name -> customer ID

    def both(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        compiled = self.compiled.gql(query, variables)
        assert compiled == self.resolved.gql(query, variables), variables
        return compiled

    def names(self, search: dict[str, str]) -> list[str]:
        found = self.both(QUERY, {"f": search})["customers"]
        assert found["totalCount"] == len(found["nodes"]), search
        return sorted(n["name"] for n in found["nodes"])


@pytest.fixture
def paths(database_url: str) -> Iterator[Paths]:
    with (
        live_server(settings_for(database_url, compiled_reads=True)) as compiled,
        live_server(settings_for(database_url, compiled_reads=False)) as resolved,
    ):
        found = Paths(compiled, resolved)
        for name, email in PEOPLE:
            extra = {"email": email} if email else {}
            found.ids[name] = create_customer(compiled, name=name, **extra)["id"]
        for owner, (name, email) in CONTACTS.items():
            add_contact(compiled, found.ids[owner], name=name, email=email)
        yield found


def test_every_needle_finds_what_python_finds(paths: Paths) -> None:
    for needle in NEEDLES:
        want = sorted(n for n, e in PEOPLE if holds(n, needle) or holds(e, needle))
        assert paths.names({"search": needle}) == want, needle
    for needle in CONTACT_NEEDLES:
        want = sorted(o for o, (n, e) in CONTACTS.items() if holds(n, needle) or holds(e, needle))
        assert paths.names({"contactSearch": needle}) == want, needle


def walk(paths: Paths, order: dict[str, str], search: str) -> list[str]:
    found: list[str] = []
    after = None
    for _ in range(20):
        variables = {"after": after, "o": order, "f": {"search": search}}
        page = paths.both(WALK, variables)["customers"]
        found += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            assert len(found) == page["totalCount"]
            return found
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("the walk did not end")


def test_pages_of_a_search_follow_their_cursors(paths: Paths) -> None:
    extra = [f"Serrano {letter}" for letter in "QWERTYUIOPASD"]
    for name in extra:
        create_customer(paths.compiled, name=name)
    create_customer(paths.compiled, name="Serran")  # not a match: one letter short
    by_name = walk(paths, {"field": "NAME", "direction": "ASC"}, "SERRANO")
    assert by_name == sorted(extra)
    newest_first = walk(paths, {"field": "CREATED_AT", "direction": "DESC"}, "serrano")
    assert newest_first == extra[::-1]


UPDATE = """mutation($input: UpdateCustomerInput!) {
  updateCustomer(input: $input) { userErrors { message } }
}"""


def test_the_index_follows_renames_and_deletions(paths: Paths) -> None:
    created = create_customer(paths.compiled, name="Bartholomew Quince")
    contact = add_contact(paths.compiled, created["id"], name="Hortensia Vidal")
    changes = {"id": created["id"], "expectedVersion": created["version"], "name": "Cordelia"}
    assert paths.compiled.gql(UPDATE, {"input": changes})["updateCustomer"]["userErrors"] == []
    assert paths.names({"search": "Cordelia"}) == ["Cordelia"]
    assert paths.names({"search": "bartholomew"}) == []
    assert paths.names({"search": "quince"}) == []
    assert paths.names({"contactSearch": "hortensia"}) == ["Cordelia"]
    pk = decode(contact["id"])

    async def delete(state: AppState) -> None:
        await state.db.fetch("DELETE FROM contact WHERE id = {}", pk)

    paths.compiled.run(delete)
    assert paths.names({"contactSearch": "hortensia"}) == []
    assert paths.names({"contactSearch": "vidal"}) == []


def decode(global_id: str) -> int:
    from crmgraph.schema.ids import decode_id

    return decode_id(global_id, "Contact")[1]


async def plan_of_search(state: AppState, needle: str) -> str:
    """The plan of a customers page's statement searching ``needle``."""
    recording = Recording(state.db.engine, state.db.tables)
    q = queries.CustomerQuery(search=needle)
    await queries.list_customers(recording, q, "CREATED_AT", True, 21, None)
    ((sql, args),) = recording.statements
    explain = "EXPLAIN QUERY PLAN " if state.db.is_sqlite else "EXPLAIN "
    rows = await state.db.fetch(explain + sql, *args)
    return "\n".join(str(row.get("QUERY PLAN") or row.get("detail")) for row in rows)


BULK = (
    "INSERT INTO customer (kind, name, name_sort, name_folded, email, email_folded, "
    "attributes, version, created_at, updated_at) "
    "SELECT 'client', 'Bulk ' || h, 'bulk ' || h, 'bulk ' || h, h || '@bulk.example', "
    "h || '@bulk.example', {}, 1, now(), now() "
    "FROM (SELECT md5(g::text) AS h FROM generate_series(10001, 16000) g) s"
)
ROLES = (
    "INSERT INTO customer_role (customer, kind, stage, phase, entered_at) "
    "SELECT id, 'client', {}, {}, now() FROM customer WHERE name LIKE 'Bulk %'"
)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_postgres_searches_through_the_lexemes_index(paths: Paths) -> None:
    async def plans(state: AppState) -> tuple[str, str, str, str]:
        await state.db.fetch(BULK, "{}")  # no attributes
        await state.db.fetch(ROLES, CLIENT.lifecycle.initial, CLIENT.lifecycle.initial_phase)
        # VACUUM: the rows just written wait in the GIN index's pending list,
        # which the planner prices as scanned whole, until a vacuum merges it
        await state.db.fetch("VACUUM ANALYZE customer")
        return (
            await plan_of_search(state, "ccb0eea8a7"),
            await plan_of_search(state, "ccb0"),
            await plan_of_search(state, "cb0"),
            await plan_of_search(state, "q"),
        )

    *indexed, short = paths.compiled.run(plans)
    for plan in indexed:  # three characters or more: crmgraph_0060's lexemes, nothing else
        assert "Bitmap Index Scan on ix_customer_search_lexemes" in plan, plan
        assert "trgm" not in plan and "grams" not in plan, plan
    assert short  # a needle of one character still has a plan (a scan)
    assert paths.names({"search": "CCB0EEA8A7"}) == ["Bulk 827ccb0eea8a706c4c34a16891f84e7b"]


def test_a_needle_asks_for_runs_at_even_or_at_odd_offsets() -> None:
    """At most three whole runs of each offset, four characters apart from the
    end; a prefix where an offset has no whole run; quotes and backslashes
    quoted."""
    assert search.needle_query("ana perez martin") == (
        "('martin' & 'rez ma' & 'a pere') | (' marti' & 'erez m' & 'na per')"
    )
    assert search.needle_query("contact 1 of ana perez martin") == (
        "(' marti' & 'erez m' & 'na per') | ('martin' & 'rez ma' & 'a pere')"
    )
    assert search.needle_query("sergio") == "('sergio') | ('ergio':*)"
    assert search.needle_query("ana") == "('ana':*) | ('na':*)"
    assert search.needle_query("o'b\\c") == r"('o''b\\c':*) | ('''b\\c':*)"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_postgres_runs_hold_every_needle_a_row_holds(paths: Paths) -> None:
    """crmgraph_0060's function cuts a row's folded texts into the runs
    crmgraph.db.search reckons with (code points, not bytes, in every
    script), and every substring of three characters or more of them is
    found by its query, whatever its position."""
    assert (search.RUN, search.STRIDE, search.LEXEMES_FUNCTION) == (
        search_lexemes.RUN,
        search_lexemes.STRIDE,
        search_lexemes.FUNCTION,
    )
    runs = f"{search.LEXEMES_FUNCTION}(c.name_folded, c.email_folded)"

    async def check(state: AppState) -> int:
        rows = await state.db.fetch(
            f"SELECT c.id, c.name_folded, c.email_folded, tsvector_to_array({runs}) AS runs "
            "FROM customer c"
        )
        assert len(rows) == len(PEOPLE)
        asked = 0
        for row in rows:
            texts = [t for t in (row["name_folded"], row["email_folded"]) if t]
            want = {t[i : i + search.RUN] for t in texts for i in range(0, len(t), search.STRIDE)}
            assert set(row["runs"]) == want, row
            queries = sorted({search.needle_query(needle) for needle in substrings(texts)})
            missed = await state.db.fetch(
                f"SELECT q FROM customer c, unnest({{}}::text[]) q "
                f"WHERE c.id = {{}} AND NOT {runs} @@ q::tsquery",
                queries,
                row["id"],
            )
            assert missed == [], (row, missed)
            asked += len(queries)
        return asked

    assert paths.compiled.run(check) > 1000


def substrings(texts: list[str]) -> set[str]:
    """Every substring of three to nine characters, at every position."""
    return {
        text[start:stop]
        for text in texts
        for start in range(len(text))
        for stop in range(start + 3, min(len(text), start + 9) + 1)
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_searches_through_the_fts5_table(paths: Paths) -> None:
    found = paths.compiled.run(lambda state: plan_of_search(state, "nunez"))
    assert "VIRTUAL TABLE" in found and "customer_search" in found, found
    short = paths.compiled.run(lambda state: plan_of_search(state, "nu"))
    assert "customer_search" not in short, short


ERASE = """mutation($input: ErasePersonalDataInput!) {
  erasePersonalData(input: $input) { userErrors { code } } }"""


def test_an_erased_name_leaves_no_trigram_in_the_sqlite_file(
    request: pytest.FixtureRequest, database_url: str
) -> None:
    """FTS5 keeps a deleted row's terms in older segments until they are
    merged; erasure merges them, so the name is gone from the file too."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's index entries go with VACUUM, as every index's")
    name = "Qwzxjv Erasable"
    trigrams = {text_keys.fold(name)[i : i + 3].encode() for i in range(4)}

    def stored() -> set[bytes]:
        rows = run_sql(settings_for(database_url), "SELECT block FROM customer_search_data")
        blobs = b"".join(bytes(r["block"]) for r in rows if r["block"] is not None)
        return {t for t in trigrams if t in blobs}

    with live_server(settings_for(database_url)) as server:
        customer = create_customer(server, name=name)
        assert stored(), "the test reads the FTS5 segments"
        answer = server.gql(ERASE, {"input": {"customerId": customer["id"], "reason": "r"}})
        assert answer["erasePersonalData"]["userErrors"] == []
    assert stored() == set()


def test_the_lexemes_replace_the_trigrams_and_grams_and_give_them_back(database_url: str) -> None:
    """crmgraph_0060 reversed builds pg_trgm's and the grams' indexes again
    (and their function); run again, it leaves its own two only. SQLite's
    FTS5 tables are not touched."""

    async def run() -> tuple[set[str], set[str], set[str], list[str]]:
        engine = make_engine(settings_for(database_url))
        migrated = await index_names(engine)
        reversed_, forward = await reversed_and_again(engine, search_lexemes)
        functions = await engine.run_ddl(
            "SELECT proname FROM pg_proc WHERE proname LIKE 'crmgraph_search_%' ORDER BY proname"
            if engine.engine_type == "postgres"
            else "SELECT name AS proname FROM sqlite_master WHERE name = 'customer_search'"
        )
        if engine.engine_type == "postgres":  # set on each index's column before ANALYZE
            targets = await engine.run_ddl(
                "SELECT attstattarget FROM pg_attribute WHERE attrelid IN "
                "('ix_customer_search_lexemes'::regclass, 'ix_contact_search_lexemes'::regclass)"
            )
            assert [row["attstattarget"] for row in targets] == [search_lexemes.STATISTICS] * 2
        return migrated, reversed_, forward, [row["proname"] for row in functions]

    migrated, reversed_, forward, functions = asyncio.run(run())
    assert forward == migrated
    if "postgres" not in database_url:
        assert reversed_ == migrated and functions == ["customer_search"]
        return
    replaced = {index.name for index in search_lexemes.REPLACED}
    lexemes = {index.name for index in search_lexemes.INDEXES}
    assert lexemes <= migrated and not replaced & migrated
    assert reversed_ == (migrated - lexemes) | replaced
    assert functions == [search_lexemes.FUNCTION]  # the grams' index needed its function


def test_searches_over_a_websocket_find_what_http_finds(paths: Paths) -> None:
    """The same predicate whatever the way in: a query over graphql-transport-ws
    answers each needle (three characters, a full name, tsquery's syntax, one
    character) as HTTP does, and as Python computes it."""
    needles = ["nun", "ana maría núñez", "ana:*", "a & b", "o'b", "Ñ", "ov@ex"]
    with graphql_ws(paths.compiled.url) as ws:
        ws.acknowledged()
        for number, needle in enumerate(needles):
            variables = {"f": {"search": needle}}
            ws.send(
                {
                    "id": f"search-{number}",
                    "type": "subscribe",
                    "payload": {"query": QUERY, "variables": variables},
                }
            )
            message = ws.receive()
            assert message["type"] == "next", message
            assert ws.receive() == {"id": f"search-{number}", "type": "complete"}
            over_ws = message["payload"]["data"]["customers"]
            assert over_ws == paths.both(QUERY, variables)["customers"], needle
            want = sorted(n for n, e in PEOPLE if holds(n, needle) or holds(e, needle))
            assert sorted(node["name"] for node in over_ws["nodes"]) == want, needle
