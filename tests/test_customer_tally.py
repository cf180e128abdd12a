"""``customer_tally`` (crmgraph.db.customer_counts): a list's ``totalCount``
read from the maintained counts equals ``COUNT(*)`` of the same filter after
every kind of write, on both engines, over a real server: create, stage
moves, further roles added and ended, soft delete and restore, merge and its
undo, conversion to another kind, erasure, import, a bulk update of every
role's phase, a hard delete, compaction; and under concurrent writers. The
compiled path and the resolvers give the same counts, and a caller with a row
scope or a filter the tally cannot answer is still counted."""

from __future__ import annotations

import asyncio
import io
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from crmgraph.app import AppState
from crmgraph.db import customer_counts, queries
from crmgraph.demo import seed_demo
from crmgraph.testing import LiveServer, live_server, settings_for
from crmgraph.transfer.customers import CustomerImport
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.source import CsvSource, text_stream
from tests.helpers import CREATE, create_customer, log_interaction
from tests.test_customer_roles import add, end, move

DELETE = "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { userErrors { code } } }"
RESTORE = "mutation($id: ID!) { restoreCustomer(input: {id: $id}) { userErrors { code } } }"
MERGE = """mutation($input: MergeCustomersInput!) { mergeCustomers(input: $input) {
  merge { id } userErrors { code } } }"""
UNDO = "mutation($id: ID!) { undoMerge(input: {mergeId: $id}) { userErrors { code } } }"
ERASE = """mutation($input: ErasePersonalDataInput!) { erasePersonalData(input: $input) {
  userErrors { code } } }"""


def filters(kinds: list[str], stages: list[str], phases: list[str]) -> list[queries.CustomerQuery]:
    """Every combination the tally answers, over the kinds, stages and phases
    present (and one of none)."""
    kind_sets = [(), *((k,) for k in kinds), *itertools.combinations(kinds, 2), tuple(kinds)]
    found = []
    for deleted, kind_set, any_role, stage, phase in itertools.product(
        ("ACTIVE", "DELETED", "ALL"),
        kind_sets,
        (False, True),
        [(), *((s,) for s in stages[:3])],
        [(), *((p,) for p in phases[:2])],
    ):
        found.append(
            queries.CustomerQuery(
                kinds=kind_set, any_role=any_role, stages=stage, phases=phase, deleted=deleted
            )
        )
    return found


async def counted(state: AppState, q: queries.CustomerQuery) -> int:
    where = queries.customer_where(q, sqlite=state.db.is_sqlite)
    sql = f"SELECT COUNT(*) AS n FROM {queries.customer_count_from(q)} WHERE {where.sql()}"
    return int((await state.db.fetch(sql, *where.args))[0]["n"])


REFERENCES_PER_STATEMENT = 50  # <= 10 arguments each: under SQLite's 999


async def counted_many(state: AppState, every: list[queries.CustomerQuery]) -> list[int]:
    """:func:`counted` of each filter, the same ``COUNT(*)``, as scalar
    subqueries of one statement per 50 filters instead of a statement each
    (a round trip and a pool checkout apiece, half of :func:`check`'s time)."""
    found: list[int] = []
    for start in range(0, len(every), REFERENCES_PER_STATEMENT):
        counts, args = [], []
        for n, q in enumerate(every[start : start + REFERENCES_PER_STATEMENT]):
            where = queries.customer_where(q, sqlite=state.db.is_sqlite)
            counts.append(
                f"(SELECT COUNT(*) FROM {queries.customer_count_from(q)} "
                f"WHERE {where.sql()}) AS n{n}"
            )
            args += where.args
        row = (await state.db.fetch(f"SELECT {', '.join(counts)}", *args))[0]
        found += [int(row[f"n{n}"]) for n in range(len(counts))]
    return found


async def check(state: AppState) -> int:
    """The tally against COUNT(*) for every filter; the number checked."""
    values = await state.db.fetch(
        "SELECT DISTINCT kind, stage, phase FROM customer_role ORDER BY kind, stage, phase"
    )
    kinds = sorted({r["kind"] for r in values})
    stages = sorted({r["stage"] for r in values})
    phases = sorted({r["phase"] for r in values})
    every = filters(kinds, stages, phases)
    references = await counted_many(state, every)
    for q, reference in zip(every, references, strict=True):
        assert customer_counts.answers(q)
        tally = await queries.count_customers(state.db, q)
        assert tally == reference, q
    return len(every)


def assert_exact(server: LiveServer, step: str) -> None:
    try:
        assert server.run(check) > 100
    except AssertionError as error:
        raise AssertionError(f"after {step}: {error}") from None


def ok(payload: dict[str, Any], name: str) -> dict[str, Any]:
    assert payload[name]["userErrors"] == [], payload
    return payload[name]


def convert(server: LiveServer, prospect: str, version: int) -> None:
    for stage, amount in (("contacted", None), ("qualified", None), ("converted", "9.90")):
        log_interaction(server, prospect, **({"amount": amount} if amount else {}))
        moved = move(server, prospect, stage, version)
        assert moved["userErrors"] == [], stage
        version = moved["customer"]["version"]


async def import_rows(state: AppState) -> None:
    options = ImportOptions(on_duplicate="create", kind="client")
    ctx = ImportContext(state.db, state.catalog, state.plugin_manager, "US")
    rows = "name,email\n" + "".join(f"Imported {i},imp{i}@t.example\n" for i in range(7))
    source = CsvSource(text_stream(io.BytesIO(rows.encode())))
    summary, _ = await run_import(state.db, CustomerImport(ctx, options), source, options)
    assert summary.created == 7, summary.lines()


def test_the_tally_follows_every_write(database_url: str) -> None:
    with live_server(settings_for(database_url)) as server:
        ana = create_customer(server, name="Ana Tally", client={"segment": "CONSUMER"})["id"]
        bo = create_customer(server, name="Bo Tally")["id"]
        lead = server.gql(CREATE, {"input": {"kind": "PROSPECT", "name": "Cy Tally"}})
        cy = lead["createCustomer"]["customer"]["id"]
        assert_exact(server, "three creates")
        assert (
            add(server, ana, "GUARANTOR", 1, guarantor={"guaranteedAmount": "50"})["userErrors"]
            == []
        )
        assert add(server, cy, "GUARANTOR", 1, guarantor={})["userErrors"] == []
        assert_exact(server, "further roles added")
        assert move(server, ana, "engaged", 2)["userErrors"] == []
        assert_exact(server, "the primary stage moved")
        assert end(server, cy, "GUARANTOR", 2)["userErrors"] == []
        assert_exact(server, "a role ended")
        assert end(server, ana, "GUARANTOR", 3)["userErrors"] == []
        assert add(server, ana, "GUARANTOR", 4, guarantor={})["userErrors"] == []
        assert_exact(server, "a role ended and taken up again")
        ok(server.gql(DELETE, {"id": bo}), "deleteCustomer")
        assert_exact(server, "a soft delete")
        ok(server.gql(RESTORE, {"id": bo}), "restoreCustomer")
        assert_exact(server, "a restore")
        merged = ok(
            server.gql(MERGE, {"input": {"survivorId": bo, "mergedId": ana}}), "mergeCustomers"
        )
        assert_exact(server, "a merge")
        ok(server.gql(UNDO, {"id": merged["merge"]["id"]}), "undoMerge")
        assert_exact(server, "a merge undone")
        convert(server, cy, 3)
        assert_exact(server, "a conversion")
        ok(
            server.gql(ERASE, {"input": {"customerId": bo, "reason": "request"}}),
            "erasePersonalData",
        )
        assert_exact(server, "an erasure")
        server.run(import_rows)
        assert_exact(server, "an import")
        server.run(lambda state: state.db.fetch("UPDATE customer_role SET phase = 'ENGAGEMENT'"))
        assert_exact(server, "every role's phase rewritten in one statement")
        server.run(lambda state: state.db.fetch("DELETE FROM customer WHERE name = 'Imported 3'"))
        assert_exact(server, "a hard delete (its roles by the cascade)")
        server.run(lambda state: seed_demo(state.db, state.catalog, customers=120))
        assert_exact(server, "the demo seed")

        async def folded(state: AppState) -> tuple[int, int]:
            found = await state.db.fetch(
                f"SELECT COUNT(*) AS n, MAX(id) AS top FROM {customer_counts.TABLE}"
            )
            return int(found[0]["n"]), int(found[0]["top"])

        async def toggle(state: AppState) -> None:
            for n in range(100):  # 2 delta rows each: past COMPACT_EVERY
                stamp = "CURRENT_TIMESTAMP" if n % 2 == 0 else "NULL"
                await state.db.fetch(
                    f"UPDATE customer SET deleted_at = {stamp} WHERE name = 'Cy Tally'"
                )

        server.run(toggle)
        assert_exact(server, "100 single-row writes")
        rows, top = server.run(folded)
        # the writes above inserted more than COMPACT_EVERY delta rows: folded
        assert top > customer_counts.COMPACT_EVERY and rows < top / 2, (rows, top)


def refused_or_done(payload: dict[str, Any]) -> bool:
    """Done, or refused whole as VERSION_CONFLICT: a deadlock between other
    writes (not the tally's, which never waits) retried past its attempts.
    The cohort counts' no longer (delta rows since migration 0048,
    tests/test_cohort_concurrency); still seen on PostgreSQL: createCustomer
    holds its match keys' advisory locks and inserts a duplicate_pair whose
    foreign key share-locks a similar customer that a deleteCustomer has
    locked, which then waits for those match keys (1 run in 5 past 4 tries)."""
    codes = [e["code"] for e in payload["userErrors"]]
    assert codes == [], payload
    return not codes


def test_concurrent_writers_keep_it_exact(database_url: str) -> None:
    """8 clients create, delete and add roles at once: every delta row is
    counted once, through the compactions their rows set off."""
    with live_server(settings_for(database_url)) as server:

        def work(n: int) -> int:
            made = 0
            for i in range(25):
                data = {"input": {"kind": "CLIENT", "name": f"Racer {n}-{i}"}}
                created = server.gql(CREATE, data)["createCustomer"]
                if not refused_or_done(created):
                    continue
                made += 1
                cid = created["customer"]["id"]
                if i % 5 == 0:
                    refused_or_done(server.gql(DELETE, {"id": cid})["deleteCustomer"])
                elif i % 7 == 0:
                    refused_or_done(add(server, cid, "GUARANTOR", 1, guarantor={}))
            return made

        with ThreadPoolExecutor(8) as pool:
            made = sum(pool.map(work, range(8)))
        assert made > 100
        assert_exact(server, "8 concurrent writers")
        total = queries.CustomerQuery(deleted="ALL")
        assert server.run(lambda state: queries.count_customers(state.db, total)) == made


LIST = """query($filter: CustomerFilter) { customers(first: 2, filter: $filter) {
  totalCount nodes { id } } }"""


def test_compiled_and_resolvers_count_alike(database_url: str) -> None:
    """The same totals from the compiled path and the resolvers, for filters
    the tally answers and one it does not (a search), and for an agent who
    sees only their own customers (a row scope: counted, not tallied)."""
    from crmgraph.testing import user_key

    common = settings_for(database_url)
    asyncio.run(_seed(common))
    agent = asyncio.run(user_key(common, "agent"))
    compiled = settings_for(database_url, compiled_reads=True)
    resolved = settings_for(database_url, compiled_reads=False)
    cases: list[dict[str, Any]] = [
        {},
        {"kinds": ["CLIENT"]},
        {"kinds": ["CLIENT"], "primaryKindOnly": True},
        {"kinds": ["GUARANTOR", "PROSPECT"]},
        {"kinds": ["CLIENT"], "phases": ["ENGAGEMENT"], "deleted": "ALL"},
        {"deleted": "DELETED"},
        {"search": "a"},
    ]
    with live_server(compiled) as on, live_server(resolved) as off:
        for case in cases:
            answers = [
                s.post(LIST, {"filter": case}, key=key)["data"]["customers"]["totalCount"]
                for s in (on, off)
                for key in (None, agent)
            ]
            assert answers[0] == answers[2] and answers[1] == answers[3], (case, answers)
            q = on.run(lambda state, c=case: _query(state, c))
            assert answers[0] == on.run(lambda state, q=q: counted(state, q)), case
            assert answers[1] < answers[0] or answers[0] == 0, case
        # a row planted in the tally shows which totals read it: the kinds filter's
        # do on both paths; a search's and an agent's (row scope) count the customers
        before = [
            s.post(LIST, {"filter": f}, key=key)["data"]["customers"]["totalCount"]
            for s in (on, off)
            for f, key in (({"kinds": ["CLIENT"]}, None), ({"search": "a"}, None), ({}, agent))
        ]
        on.run(lambda state: state.db.fetch(PLANT))
        after = [
            s.post(LIST, {"filter": f}, key=key)["data"]["customers"]["totalCount"]
            for s in (on, off)
            for f, key in (({"kinds": ["CLIENT"]}, None), ({"search": "a"}, None), ({}, agent))
        ]
        assert [a - b for a, b in zip(after, before, strict=True)] == [1000, 0, 0] * 2


PLANT = (
    f"INSERT INTO {customer_counts.TABLE} (deleted, kind, stage, phase, further, n) "
    "VALUES (0, 'client', '', '', '', 1000)"
)


async def _seed(settings: Any) -> None:
    from crmgraph.app import with_state

    await with_state(settings, lambda state: seed_demo(state.db, state.catalog, customers=150))


async def _query(state: AppState, case: dict[str, Any]) -> queries.CustomerQuery:
    every = tuple(t.key for t in state.catalog.customer_types)
    kinds = tuple(k.lower() for k in case.get("kinds", ())) or every
    return queries.CustomerQuery(
        kinds=kinds,
        any_role="kinds" in case and not case.get("primaryKindOnly", False),
        phases=tuple(case.get("phases", ())),
        deleted=case.get("deleted", "ACTIVE"),
        search=case.get("search"),
    )
