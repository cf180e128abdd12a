"""An import checks a batch while the one before it is written
(crmgraph.transfer.importer.pipeline) and keeps the planner's statistics of
the match keys fresh without counting them (match_statistics.fresh_statistics):
on SQLite and PostgreSQL, the rows of a later batch that repeat a row of an
earlier one are still found (screening sees every batch written before), bad
rows are rejected in file order, and each customer written has its audit
entry, event and match keys, in both commit modes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db.bulk import without_jit
from crmgraph.db.engine import StatementCounter, current_counter
from crmgraph.testing import settings_for
from tests.test_import_export import count, csv_bytes, do_import

ROWS = 40
BATCH = 6


def data() -> tuple[bytes, set[int], set[int]]:
    """ROWS rows; every seventh repeats a row two batches up (its name and
    e-mail in capitals),
    every eleventh has a bad e-mail: the file, the repeating rows' and the bad
    rows' numbers (row 2 is the first after the header)."""
    rows = [["name", "email", "kind"]]
    repeats, bad = set(), set()
    for i in range(ROWS):
        name, email = f"Person {i}", f"person{i}@example.com"
        if i % 7 == 6 and i >= 2 * BATCH:
            name, email = f"PERSON {i - 2 * BATCH}", f"PERSON{i - 2 * BATCH}@Example.com"
            repeats.add(i + 2)
        elif i % 11 == 10:
            email, _ = "not-an-email", bad.add(i + 2)
        rows.append([name, email, "prospect"])
    return csv_bytes(rows), repeats, bad


@pytest.mark.parametrize("commit", ["all", "batch"])
def test_later_batches_see_the_earlier_ones(database_url: str, commit: str) -> None:
    file, repeats, bad = data()

    async def work(state: AppState) -> tuple[Any, ...]:
        summary, rejections = await do_import(state, file, commit=commit, batch_size=BATCH)
        return (
            summary,
            [r.row for r in rejections.first],
            await count(state, "customer"),
            await count(state, "audit_entry WHERE action = 'customer.created'"),
            await count(state, "event WHERE type = 'customer.created'"),
            await count(state, "(SELECT DISTINCT customer FROM customer_match_key) k"),
        )

    summary, rejected, customers, audits, events, keyed = asyncio.run(
        with_state(settings_for(database_url), work)
    )
    created = ROWS - len(repeats) - len(bad)
    assert summary.failure is None, summary.lines()
    assert (summary.read, summary.skipped_duplicates, summary.rejected) == (
        ROWS,
        len(repeats),
        len(bad),
    )
    assert rejected == sorted(bad)
    assert (summary.created, customers, audits, events, keyed) == (created,) * 5


def test_an_import_analyzes_the_keys_it_doubles(database_url: str) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("SQLite keeps no statistics unless asked (ANALYZE)")
    rows = [["name", "email", "kind"]]
    rows += [[f"Client {i} Zed", f"c{i}@example.com", "prospect"] for i in range(800)]

    async def work(state: AppState) -> tuple[float, float, int]:
        query = "SELECT reltuples FROM pg_class WHERE relname = 'customer_match_key'"
        before = float((await state.db.fetch(query))[0]["reltuples"])
        summary, _ = await do_import(state, csv_bytes(rows), batch_size=1000)
        assert summary.created == 800, summary.lines()
        after = float((await state.db.fetch(query))[0]["reltuples"])
        return before, after, await count(state, "customer_match_key")

    before, after, keys = asyncio.run(with_state(settings_for(database_url), work))
    # 800 customers hold over 2,000 keys: more than twice what the planner knew
    assert before <= 0 and keys > 2000
    assert after == keys  # counted by the ANALYZE run in the import's transaction


async def known_types(state: AppState) -> set[str]:
    """The key types among the planner's most common values of customer_match_key."""
    rows = await state.db.fetch(
        "SELECT unnest(most_common_vals::text::text[]) AS key_type FROM pg_stats "
        "WHERE schemaname = current_schema() AND tablename = 'customer_match_key' "
        "AND attname = 'key_type'"
    )
    return {row["key_type"] for row in rows}


def test_an_import_analyzes_key_types_the_statistics_lack(database_url: str) -> None:
    """Tax ids in a database whose statistics know none: the import analyzes
    the keys once its first batch wrote some (match_statistics.fresh_statistics),
    or each lookup by tax id would read every tax-id key."""
    if not database_url.startswith("postgres"):
        pytest.skip("SQLite keeps no statistics unless asked (ANALYZE)")
    first = [["name", "email", "kind"]]
    first += [[f"Client {i} Zed", f"c{i}@example.com", "client"] for i in range(200)]
    taxed = [["name", "email", "kind", "tax_id"]]
    taxed += [[f"Taxed {i} Quux", f"t{i}@example.com", "client", f"B{i:08d}"] for i in range(120)]

    async def work(state: AppState) -> tuple[set[str], Any, set[str]]:
        summary, _ = await do_import(state, csv_bytes(first))
        assert summary.created == 200, summary.lines()
        await state.db.fetch("ANALYZE customer_match_key")
        before = await known_types(state)
        summary, _ = await do_import(state, csv_bytes(taxed), batch_size=50)
        return before, summary, await known_types(state)

    before, summary, after = asyncio.run(with_state(settings_for(database_url), work))
    assert summary.created == 120 and summary.failure is None, summary.lines()
    assert "EMAIL" in before and "TAX_ID" not in before
    assert {"EMAIL", "NAME", "TAX_ID"} <= after


@pytest.mark.parametrize("commit", ["all", "batch"])
def test_an_import_runs_without_jit(database_url: str, commit: str) -> None:
    """Every transaction of an import turns JIT off first (bulk.without_jit):
    its batch statements cost enough for LLVM to compile them, which took
    longer than running them."""
    if not database_url.startswith("postgres"):
        pytest.skip("SQLite compiles nothing")
    file, _, _ = data()

    async def work(state: AppState) -> tuple[list[str], str]:
        counter = StatementCounter()
        token = current_counter.set(counter)
        try:
            summary, _ = await do_import(state, file, commit=commit, batch_size=BATCH)
        finally:
            current_counter.reset(token)
        assert summary.failure is None, summary.lines()
        async with state.db.transaction():
            await without_jit(state.db)
            inside = (await state.db.fetch("SHOW jit"))[0]["jit"]
        return counter.statements, inside

    statements, inside = asyncio.run(with_state(settings_for(database_url), work))
    offs = [n for n, sql in enumerate(statements) if sql == "SET LOCAL jit = off"]
    assert len(offs) == (1 if commit == "all" else -(-ROWS // BATCH))  # once per transaction
    writes = [n for n, sql in enumerate(statements) if sql.startswith(("COPY", "INSERT"))]
    assert offs[0] < writes[0]  # before the import's first write
    assert inside == "off"


def test_a_part_of_a_batch_pairs_as_the_batch_does() -> None:
    """The import finds the pairs among a batch's rows while the batch before
    is written, and screens only the rows whose ref it did not know: the
    pairs among that part are the batch's pairs between two of its rows (no
    name block is read at the import's score), checked on the labelled set."""
    from crmgraph.transfer.duplicates import pairs_within
    from tests.test_duplicates import labelled, probe_of

    probes = [probe_of(row) for row in labelled().inputs]
    whole = pairs_within(probes, "US", None)
    assert len(whole) >= 20
    kept = [i for i in range(len(probes)) if i % 3 != 1]  # a part, in the batch's order
    position = {index: n for n, index in enumerate(kept)}
    restricted = [
        (position[i], position[j], value, reasons)
        for i, j, value, reasons in whole
        if i in position and j in position
    ]
    assert restricted  # some pairs are left to compare
    assert pairs_within([probes[i] for i in kept], "US", None) == restricted
