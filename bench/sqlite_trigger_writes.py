"""What ``stage_flow``'s triggers (crmgraph.db.stage_flow) cost a single-row
write on SQLite, as a ratio to the same database with those triggers dropped,
measured in the same process, rounds alternating.

A migrated SQLite file is seeded with demo customers (crmgraph.demo, the
normal write path, triggers on) and copied: ``all`` keeps every trigger,
``baseline`` has the ``stage_flow`` ones dropped. Per statement it prints the
median and mean milliseconds (the mean carries the folds every 256 delta
rows) of:

- ``soft delete``: ``UPDATE customer SET deleted_at`` on a customer with
  stage entries, alternately set and cleared (tests/test_customer_tally's
  100 single-row writes);
- ``name``: an update of the name (no counted column: the floor);
- ``stage change``: the open entry closed, the next one inserted and the
  role's stage set, in one transaction;
- ``open``: a new connection's first statement (a ``COUNT(*)`` of the
  tally): SQLite parses the whole schema, trigger bodies included, on every
  connection, and piccolo opens one per statement outside a transaction.

``fresh`` runs each statement on a new connection as piccolo does (what the
app pays); ``kept`` on one open connection (the triggers' own work).

    .venv/bin/python -m bench.sqlite_trigger_writes --customers 3000 --rounds 3

Before and after a change to the triggers, on the same rows, in one
process: ``--keep FILE`` on a run of the older checkout, then ``--before
FILE`` on this one, which adds the way ``before`` (the file as the older
checkout made it) and makes ``all`` and ``baseline`` from a copy migrated
forward.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from crmgraph.db import customer_counts
from crmgraph.db.engine import Database, make_engine
from crmgraph.db.sqlite_connections import FunctionsConnection
from crmgraph.db.tables import CORE_TABLES
from crmgraph.demo.seed import seed_demo
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.testing.databases import migrate_for, settings_for

Write = Callable[[sqlite3.Connection, int, int], None]


async def seeded(path: Path, customers: int) -> None:
    settings = settings_for(f"sqlite:///{path}")
    await migrate_for(settings)
    catalog = Catalog.from_plugin_manager(make_plugin_manager(settings))
    db = Database(make_engine(settings), CORE_TABLES)
    await db.start(settings)
    try:
        await seed_demo(db, catalog, customers=customers)
    finally:
        await db.stop()


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, factory=FunctionsConnection, isolation_level=None)


def drop_stage_flow(path: Path) -> int:
    """The baseline: ``stage_flow``'s triggers and views dropped; how many."""
    conn = connect(path)
    found = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'view') "
        "AND name LIKE 'stage_flow%' ORDER BY type"  # triggers first: they read the view
    ).fetchall()
    for kind, name in found:
        conn.execute(f"DROP {kind.upper()} {name}")
    conn.close()
    return len(found)


def soft_delete(conn: sqlite3.Connection, customer: int, n: int) -> None:
    stamp = "CURRENT_TIMESTAMP" if n % 2 == 0 else "NULL"
    conn.execute(f"UPDATE customer SET deleted_at = {stamp} WHERE id = ?", (customer,))


RENAMES = itertools.count()


def rename(conn: sqlite3.Connection, customer: int, n: int) -> None:
    """A new name each time (the same one again changes nothing to index)."""
    conn.execute("UPDATE customer SET name = ? WHERE id = ?", (f"Bench {next(RENAMES)}", customer))


def stage_change(conn: sqlite3.Connection, customer: int, n: int) -> None:
    stage = f"bench{n % 2}"
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "UPDATE stage_change SET left_at = CURRENT_TIMESTAMP, next_stage = ? "
        "WHERE customer = ? AND left_at IS NULL AND kind = (SELECT kind FROM customer "
        "WHERE id = ?)",
        (stage, customer, customer),
    )
    conn.execute(
        "INSERT INTO stage_change (customer, kind, to_stage, at) SELECT id, kind, ?, "
        "CURRENT_TIMESTAMP FROM customer WHERE id = ?",
        (stage, customer),
    )
    conn.execute(
        "UPDATE customer_role SET stage = ? WHERE customer = ? AND kind = (SELECT kind "
        "FROM customer WHERE id = ?)",
        (stage, customer, customer),
    )
    conn.execute("COMMIT")


def open_count(conn: sqlite3.Connection, customer: int, n: int) -> None:
    conn.execute(f"SELECT COUNT(*) FROM {customer_counts.TABLE}").fetchone()


WRITES: dict[str, Write] = {
    "soft delete": soft_delete,
    "name": rename,
    "stage change": stage_change,
    "open": open_count,
}


def timed(
    paths: dict[str, Path], write: Write, customers: list[int], fresh: bool
) -> dict[str, list[float]]:
    """Milliseconds per write, one per customer on each way, the ways taking
    turns write by write (which goes first alternates): a busy machine's
    drift falls on both."""
    kept = {way: connect(path) for way, path in paths.items()} if not fresh else {}
    times: dict[str, list[float]] = {way: [] for way in paths}
    for n, customer in enumerate(customers):
        order = list(paths) if n % 2 == 0 else list(reversed(paths))
        for way in order:
            started = time.perf_counter()
            conn = kept.get(way) or connect(paths[way])
            write(conn, customer, n)
            if fresh:
                conn.close()
            times[way].append((time.perf_counter() - started) * 1000)
    for conn in kept.values():
        conn.close()
    return times


def prepared(args: argparse.Namespace, directory: Path) -> dict[str, Path]:
    """The databases of the ways, the same rows in each: ``all`` (this
    checkout's triggers), ``baseline`` (``stage_flow``'s dropped) and,
    with ``--before``, ``before`` (a file an older checkout seeded, as it is)."""
    seed = directory / "seed.sqlite"
    started = time.perf_counter()
    if args.before:
        shutil.copy(args.before, seed)  # the same rows, migrated to this checkout
        asyncio.run(migrate_for(settings_for(f"sqlite:///{seed}")))
        print(f"{args.before} copied and migrated in {time.perf_counter() - started:.0f} s")
    else:
        asyncio.run(seeded(seed, args.customers))
        print(f"seeded {args.customers} customers in {time.perf_counter() - started:.0f} s")
        if args.keep:
            shutil.copy(seed, args.keep)
    ways = {"all": directory / "all.sqlite", "baseline": directory / "base.sqlite"}
    for target in ways.values():
        shutil.copy(seed, target)
    print(f"baseline: {drop_stage_flow(ways['baseline'])} stage_flow triggers and views dropped")
    if args.before:
        ways["before"] = directory / "before.sqlite"
        shutil.copy(args.before, ways["before"])
    for way, path in ways.items():
        conn = connect(path)
        sizes = conn.execute(
            "SELECT (SELECT COUNT(*) FROM stage_flow), (SELECT SUM(length(sql)) FROM "
            "sqlite_master), (SELECT SUM(length(sql)) FROM sqlite_master WHERE name LIKE "
            "'stage_flow%' AND type <> 'table')"
        ).fetchone()
        conn.close()
        print(
            f"{way}: {sizes[0]} stage_flow rows; schema {sizes[1]} bytes, stage_flow's {sizes[2]}"
        )
    return ways


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        ways = prepared(args, Path(directory))
        conn = connect(ways["all"])
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM customer WHERE deleted_at IS NULL AND id IN "
                "(SELECT customer FROM stage_change) ORDER BY id LIMIT ?",
                (args.writes,),
            )
        ]
        conn.close()
        report(measure(ways, ids, args.rounds), list(ways))


def measure(
    ways: dict[str, Path], ids: list[int], rounds: int
) -> dict[tuple[str, str, str], list[float]]:
    found: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(rounds):
        for name, write in WRITES.items():
            for connection in ("fresh", "kept"):
                times = timed(ways, write, ids, connection == "fresh")
                for way, taken in times.items():
                    found.setdefault((name, connection, way), []).extend(taken)
    return found


def report(found: dict[tuple[str, str, str], list[float]], ways: list[str]) -> None:
    """Median / mean ms per way, and each way's mean over the baseline's."""
    heads = "".join(f"{w + ' ms':>16}" for w in ways)
    ratios = "".join(f"{w + '/base':>13}" for w in ways if w != "baseline")
    print(f"{'statement':<14}{'connection':<11}{heads}{ratios}")
    print(f"{'':<25}" + "".join(f"{'median / mean':>16}" for _ in ways))
    for name in WRITES:
        for connection in ("fresh", "kept"):
            times = {w: found[(name, connection, w)] for w in ways}
            means = {w: statistics.mean(t) for w, t in times.items()}
            cells = "".join(f"{statistics.median(times[w]):>8.2f} / {means[w]:>5.2f}" for w in ways)
            shares = "".join(
                f"{means[w] / means['baseline']:>13.2f}" for w in ways if w != "baseline"
            )
            print(f"{name:<14}{connection:<11}{cells}{shares}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--writes", type=int, default=100, help="per statement and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--before", type=Path, help="a file an older checkout seeded (--keep): measured as it is"
    )
    parser.add_argument("--keep", type=Path, help="where to copy the seeded file")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
