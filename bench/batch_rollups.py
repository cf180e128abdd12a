"""Benchmark: an import batch's rollups catch-up (``crmgraph_rollups_of_new``,
crmgraph.db.batch_rollups) with its ``stage_flow`` INSERT planned by the
planner (as migration 0056 left it) and as written (migration 0058,
crmgraph.db.trigger_sql.AS_WRITTEN), on a ``bench.scale`` database.

    .venv/bin/python -m bench.batch_rollups --size 1000000 --rounds 6

In one transaction, rolled back at the end: ``--customers`` seeded customers
are written again under new ids with their roles and their open stage entry
(what an import batch writes: one entry each), with the rollups deferred as
an import's COPYs have them; then both forms of the function, made under
names of their own, bring them up to date in turn, each inside a savepoint
rolled back after it, ``--rounds`` times each, alternating. Prints each
form's median milliseconds and the ratio, measured on the same rows in the
same process (the machine is noisy: read the ratio). Needs the size's
database (``python -m bench.scale --sizes SIZE --seed-only``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from crmgraph.app import AppState, with_state
from crmgraph.db.batch_rollups import FUNCTION, rollups_function
from crmgraph.db.engine import Database
from crmgraph.testing import PG_SERVER, settings_for

FORMS = {"planner": False, "as written": True}
NEW_IDS = 100_000_000  # added to a seeded id: no customer, role or entry has it


class Discarded(Exception):
    """Raised to roll the transaction back, with what was timed in it."""

    def __init__(self, times: dict[str, list[float]]) -> None:
        super().__init__("rolled back")
        self.times = times


def form_name(form: str) -> str:
    return "bench_rollups_" + form.replace(" ", "_")


async def written_again(db: Database, first: int, count: int) -> list[int]:
    """Customers ``first`` .. ``first + count - 1`` written again under new ids,
    with their roles and their open entries, the rollups deferred; the new ids."""
    await db.fetch("SET LOCAL crmgraph.rollups = 'deferred'")
    last, shift = first + count - 1, NEW_IDS
    for table, column, condition in (
        ("customer", "id", ""),
        ("customer_role", "customer", ""),
        ("stage_change", "customer", " AND left_at IS NULL"),
    ):
        copy = f"bench_{table}"
        await db.fetch(
            f"CREATE TEMP TABLE {copy} ON COMMIT DROP AS SELECT * FROM {table} "
            f"WHERE {column} BETWEEN {first} AND {last}{condition}"
        )
        moved = (
            "id = id + {0}" if table == "customer" else "id = id + {0}, customer = customer + {0}"
        )
        await db.fetch(f"UPDATE {copy} SET {moved.format(shift)}")
        await db.fetch(f"INSERT INTO {table} SELECT * FROM {copy}")
    await db.fetch("SET LOCAL crmgraph.rollups = ''")
    return [pk + shift for pk in range(first, last + 1)]


async def timed_forms(state: AppState, customers: int, rounds: int) -> None:
    """Time both forms (:data:`FORMS`) and raise :class:`Discarded` with the times."""
    db = state.db
    times: dict[str, list[float]] = {form: [] for form in FORMS}
    async with db.transaction():
        for form, planned in FORMS.items():
            made = rollups_function(planned=planned).replace(f"{FUNCTION}(", f"{form_name(form)}(")
            await db.fetch(made)
        (row,) = await db.fetch("SELECT MIN(id) AS low, MAX(id) AS high FROM customer")
        ids = await written_again(db, (row["low"] + row["high"]) // 2, customers)
        for _ in range(rounds):
            for form in FORMS:
                await db.fetch("SAVEPOINT bench")
                started = time.perf_counter()
                await db.fetch(f"SELECT {form_name(form)}({{}}) AS done", ids)
                times[form].append((time.perf_counter() - started) * 1000)
                await db.fetch("ROLLBACK TO SAVEPOINT bench")
        raise Discarded(times)  # nothing of it stays


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch_rollups", description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="the bench.scale database")
    parser.add_argument("--customers", type=int, default=1000, help="customers of the batch")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    url = f"{PG_SERVER}/crmgraph_bench_scale_{args.size}"
    found: dict[str, list[float]] = {}

    async def work(state: AppState) -> None:
        try:
            await timed_forms(state, args.customers, args.rounds)
        except Discarded as discarded:
            found.update(discarded.times)

    asyncio.run(with_state(settings_for(url), work))
    medians = {form: statistics.median(times) for form, times in found.items()}
    print(f"{args.customers:,} new customers into {args.size:,}, {args.rounds} rounds each:")
    for form, times in found.items():
        listed = ", ".join(f"{t:.0f}" for t in times)
        print(f"  {form:>10}: median {medians[form]:7.1f} ms  ({listed})")
    print(f"  as written / planner: {medians['as written'] / medians['planner']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
