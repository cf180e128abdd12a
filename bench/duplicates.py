"""Benchmark: duplicate detection on 20,000 to 100,000+ customers, SQLite and PostgreSQL.

    .venv/bin/python -m bench.duplicates --customers 20000

1. Generates customers by stacking copies of the labelled set the tests use
   (``tests.test_duplicates.labelled``, one seed and one block of e-mails,
   phones and tax ids per copy): in each 227 customers, 40 are a known party
   entered again (e-mail case, gmail dots and tags, phone formats, typos in
   names, word order, tax id formats) and 25 are namesakes, look-alike
   companies or same-named parties of another kind. Every person's name is
   one of 360 common first-and-last-name pairs, so at 100,000 customers each
   name is held by about 200 customers: the name blocks a real CRM gets from
   its "John Smith"s and "María García"s.
2. Writes them (multi-row INSERTs and ``matching.refresh_match_keys``, as the
   demo seed does) into a fresh SQLite file and a fresh PostgreSQL database
   ``dup_bench`` (created and dropped here), owned by 10 users; ANALYZE.
3. Times, warm, ``--runs`` runs each (median and max in ms, and the median as
   a ratio to a baseline timed in the same process, ``SELECT COUNT(*) FROM
   customer``, because the machine is noisy): ``duplicateCandidates`` of one
   customer, the first page of 20 ``duplicates``, the 10th page, a page with
   ``kind: PROSPECT`` (whose pairs are rare: the whole list is searched), a
   page as an agent who sees a tenth of the customers, and the refresh of one
   customer's keys as an update makes it.
4. ``--quality`` lists every pair at the default ``minScore`` and prints
   precision and recall against the generated truth.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.scratch import scratch_database
from crmgraph.app import AppState, with_state
from crmgraph.db.bulk import insert_rows
from crmgraph.db.normalize import normalize_phone
from crmgraph.db.queries import CustomerScope
from crmgraph.dedupe import matching
from crmgraph.settings import Settings
from crmgraph.testing import migrate_for
from tests.test_duplicates import labelled

PG_DATABASE = "dup_bench"
SET_SIZE = 227  # customers of one labelled set
USERS = 10
PAGE = 20
LATER_PAGE = 10
SLOW_MS = 20_000  # an operation this slow is not repeated


@dataclass
class Generated:
    rows: list[dict[str, Any]] = field(default_factory=list)
    same: list[tuple[int, int]] = field(default_factory=list)  # positions in rows


def generate(customers: int, seed: int) -> Generated:
    out = Generated()
    now = datetime.datetime.now(datetime.UTC)
    for block in range(max(1, round(customers / SET_SIZE))):
        data = labelled(seed + block, block)
        offset = len(out.rows)
        for position, fields in enumerate(data.inputs):
            tax_id = (fields.get("client") or {}).get("taxId")
            out.rows.append(
                {
                    "kind": fields["kind"].lower(),
                    "name": fields["name"],
                    "email": fields.get("email"),
                    # stored as createCustomer stores it: E.164, national numbers read in the US
                    "phone": normalize_phone(fields.get("phone"), "US"),
                    "attributes": json.dumps({"tax_id": tax_id} if tax_id else {}),
                    "owner": (offset + position) % USERS,  # an index into the users, resolved later
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        out.same += [(offset + a, offset + b) for a, b in data.same]
    return out


async def seed(state: AppState, data: Generated) -> tuple[list[int], list[int], float]:
    db = state.db
    started = time.perf_counter()
    async with db.transaction():
        agents = [
            {"name": f"Agent {i}", "email": f"agent{i}@bench.example", "role": "agent"}
            for i in range(USERS)
        ]
        users = await insert_rows(db, "crm_user", agents)
        rows = [{**row, "owner": users[row["owner"]]} for row in data.rows]
        ids = await insert_rows(db, "customer", rows)
        await matching.refresh_match_keys(db, ids)
    seconds = time.perf_counter() - started
    await db.fetch("ANALYZE")
    return users, ids, seconds


@dataclass
class Timing:
    name: str
    runs: list[float]  # ms

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


async def timed(name: str, runs: int, work: Callable[[int], Awaitable[Any]]) -> Timing:
    await work(0)  # warm
    found = []
    for run in range(runs):
        started = time.perf_counter()
        await work(run)
        found.append((time.perf_counter() - started) * 1000)
        if found[-1] > SLOW_MS:
            break
    return Timing(name, found)


def cursor_after(page: matching.PairPage) -> Any:
    return page.pairs[-1].position


async def measure(state: AppState, users: list[int], ids: list[int], runs: int) -> list[Timing]:
    db = state.db
    probes = [ids[i] for i in range(0, len(ids), max(1, len(ids) // (runs + 1)))]
    rows = {
        row["id"]: row
        for row in await db.fetch(
            f"SELECT {matching.CANDIDATE_COLUMNS} FROM customer c WHERE c.id IN "
            f"({', '.join('{}' for _ in probes)})",
            *probes,
        )
    }
    # the later page: LATER_PAGE pages in, or the last one a small dataset has
    after = None
    for _ in range(LATER_PAGE - 1):
        page = await matching.duplicate_pairs(db, limit=PAGE, after=after)
        if not page.pairs:
            break
        after = cursor_after(page)
    agent = CustomerScope(owner=users[3], teams=frozenset())

    async def baseline(_: int) -> Any:
        return await db.fetch("SELECT COUNT(*) AS n FROM customer")

    async def candidates(run: int) -> Any:
        return await matching.find_candidates(
            db, matching.Probe.from_row(rows[probes[run % len(probes)]]), limit=10
        )

    async def first_page(_: int) -> Any:
        return await matching.duplicate_pairs(db, limit=PAGE)

    async def later_page(_: int) -> Any:
        return await matching.duplicate_pairs(db, limit=PAGE, after=after)

    async def rare_kind(_: int) -> Any:
        return await matching.duplicate_pairs(db, limit=PAGE, kinds=("prospect",))

    async def scoped(_: int) -> Any:
        return await matching.duplicate_pairs(db, limit=PAGE, scope=agent)

    async def refresh_one(run: int) -> Any:
        async with db.transaction():
            await matching.refresh_match_keys(db, [probes[run % len(probes)]])

    return [
        await timed("baseline: SELECT COUNT(*) FROM customer", runs, baseline),
        await timed("duplicateCandidates of one customer", runs, candidates),
        await timed(f"duplicates, first page of {PAGE}", runs, first_page),
        await timed(f"duplicates, page {LATER_PAGE}", runs, later_page),
        await timed("duplicates, kind PROSPECT (rare)", runs, rare_kind),
        await timed("duplicates as an agent (a tenth)", runs, scoped),
        await timed("keys refreshed after one update", runs, refresh_one),
    ]


async def quality(state: AppState, ids: list[int], data: Generated) -> str:
    truth = {(ids[a], ids[b]) if ids[a] < ids[b] else (ids[b], ids[a]) for a, b in data.same}
    found: set[tuple[int, int]] = set()
    after = None
    while True:
        page = await matching.duplicate_pairs(state.db, limit=100, after=after)
        found |= {(p.left_id, p.right_id) for p in page.pairs}
        if not page.has_more:
            break
        after = cursor_after(page)
    hits = len(found & truth)
    return (
        f"{len(found)} pairs listed at minScore {matching.LIKELY}, {hits} of {len(truth)} "
        f"true ones: precision {hits / max(1, len(found)):.3f}, recall {hits / len(truth):.3f}"
    )


async def bench_one(url: str, data: Generated, runs: int, check: bool) -> None:
    settings = Settings(database_url=url, load_entry_points=False)
    await migrate_for(settings)

    async def work(state: AppState) -> None:
        users, ids, seconds = await seed(state, data)
        print(f"  seeded {len(ids):,} customers with their keys in {seconds:.1f} s")
        timings = await measure(state, users, ids, runs)
        base = timings[0].median
        for t in timings:
            print(
                f"  {t.name:<42} median {t.median:>9.1f} ms  max {max(t.runs):>9.1f} ms  "
                f"{t.median / base:>8.1f} x baseline  ({len(t.runs)} runs)"
            )
        if check:
            started = time.perf_counter()
            print(f"  {await quality(state, ids, data)} ({time.perf_counter() - started:.1f} s)")

    await with_state(settings, work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--pg-database", default=PG_DATABASE)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = generate(args.customers, args.seed)
    print(
        f"generated {len(data.rows):,} customers, {len(data.same):,} known duplicate pairs, "
        f"in {time.perf_counter() - started:.1f} s"
    )
    with tempfile.TemporaryDirectory(prefix="dup_bench_") as tmp:
        for engine in args.engines.split(","):
            print(engine)
            with scratch_database(engine, Path(tmp), args.pg_database) as url:
                asyncio.run(bench_one(url, data, args.runs, args.quality))
    return 0


if __name__ == "__main__":
    sys.exit(main())
