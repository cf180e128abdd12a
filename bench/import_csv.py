"""Benchmark: importing a 100,000-row customers CSV on SQLite and PostgreSQL.

    .venv/bin/python -m bench.import_csv

1. Generates (seeded random, so every run is the same) a file of customers
   of three kinds with typed attributes, in which 1% of the rows are bad (an
   invalid e-mail, a missing name, an unknown kind, a segment that is not one
   of the choices, a supplier rating out of range, a malformed number) and 5%
   repeat a party already known: half a customer already in the database (a
   seed of 2,000, imported first), half an earlier row of the same file, each
   with the e-mail in other case, the phone written another way or the tax id
   reformatted.
2. Imports it with ``--on-duplicate skip`` into a fresh SQLite file and into a
   fresh PostgreSQL database ``import_bench`` (created and dropped here), and
   prints the rows per second and the counts, checked against the generated
   truth: exactly the bad rows rejected, exactly the repeats skipped, every
   other row created, and the database holding just those customers.

``--rows``, ``--commit batch``, ``--batch-size``, ``--engines sqlite`` and
``--profile`` (cProfile of the import, top functions) change the run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import pstats
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from crmgraph.app import AppState, with_state
from crmgraph.settings import Settings
from crmgraph.testing import PG_SERVER, migrate_for, pg_admin
from crmgraph.transfer.customers import CustomerImport
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.report import ImportSummary
from crmgraph.transfer.source import CsvSource, text_stream

PG_DATABASE = "import_bench"
HEADER = ["name", "email", "phone", "kind", "segment", "industry", "tax_id", "rating"]
FIRST_NAMES = (
    "Ana Luis Marta Jorge Lucia Pablo Elena Diego Sara Javier Carmen Raul Laura Ivan Paula "
    "Hugo Irene Mario Nuria Oscar Alba Adrian Clara Sergio Rocio Victor Eva Daniel Julia "
    "Marcos Noelia Ruben Silvia Alvaro Teresa Hector Beatriz Tomas Olga Emilio"
)
FIRST = FIRST_NAMES.split()
SYLLABLE_TEXT = "ba be ca co da de fe ga go la lo ma me na no pa pe ra ro sa so ta te va vi za"
SYLLABLES = SYLLABLE_TEXT.split()
SEGMENTS = ("CONSUMER", "SMALL_BUSINESS", "MID_MARKET", "ENTERPRISE", "PUBLIC_SECTOR")
SEED_CUSTOMERS = 2000


@dataclass
class Truth:
    rows: int = 0
    bad: int = 0
    repeats: int = 0
    created: int = 0
    bad_rows: set[int] = field(default_factory=set)  # spreadsheet row numbers


def surname(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(3, 4))).title()


def party(rng: random.Random, index: int) -> dict[str, str]:
    kind = rng.choices(("client", "supplier", "prospect"), (6, 2, 2))[0]
    row = {
        "name": f"{rng.choice(FIRST)} {surname(rng)} {surname(rng)}",
        "email": f"p{index}.{rng.randrange(10**6)}@example{index % 50}.com",
        "phone": f"+34 6{index:08d}",
        "kind": kind,
        "segment": "",
        "industry": "",
        "tax_id": "",
        "rating": "",
    }
    if kind == "client":
        row |= {"segment": rng.choice(SEGMENTS), "industry": "retail", "tax_id": f"B{index:08d}"}
    elif kind == "supplier":
        row |= {"tax_id": f"A{index:08d}", "rating": str(rng.randint(1, 5))}
    return row


def spoil(rng: random.Random, row: dict[str, str]) -> dict[str, str]:
    """A bad row: one of the ways a row goes wrong (and nothing it repeats)."""
    how = rng.randrange(6)
    row = dict(row)
    if how == 0:
        row["email"] = row["email"].replace("@", " at ")
    elif how == 1:
        row["name"] = ""
    elif how == 2:
        row["kind"] = "martian"
    elif how == 3:
        row |= {"kind": "client", "segment": "HUGE", "tax_id": ""}
    elif how == 4:
        row |= {"kind": "supplier", "rating": "9", "segment": "", "tax_id": ""}
    else:
        row |= {"kind": "supplier", "rating": "four", "segment": "", "tax_id": ""}
    return row


def repeat(rng: random.Random, original: dict[str, str]) -> dict[str, str]:
    """The same party written another way."""
    row = dict(original)
    how = rng.randrange(3)
    if how == 0:
        row["email"] = row["email"].upper()
    elif how == 1:
        digits = row["phone"].replace("+34 ", "")
        row |= {"phone": f"+34 {digits[:3]} {digits[3:6]} {digits[6:]}", "email": ""}
    else:
        row |= {"email": "", "phone": ""}
        if not row["tax_id"]:  # a prospect has no tax id: keep its e-mail
            row["email"] = original["email"].upper()
        else:
            row["tax_id"] = f"{row['tax_id'][0]}-{row['tax_id'][1:5]}.{row['tax_id'][5:]}"
    return row


def generate(path: Path, seed_path: Path, rows: int, seed: int) -> Truth:
    rng = random.Random(seed)
    seeds = [party(rng, i) for i in range(SEED_CUSTOMERS)]
    write_csv(seed_path, seeds)
    truth = Truth(rows=rows)
    written: list[dict[str, str]] = []
    good_in_file: list[dict[str, str]] = []
    for n in range(rows):
        number = n + 2  # the header is row 1
        draw = rng.random()
        if draw < 0.01:
            written.append(spoil(rng, party(rng, SEED_CUSTOMERS + n)))
            truth.bad += 1
            truth.bad_rows.add(number)
        elif draw < 0.06 and good_in_file:
            source = seeds if rng.random() < 0.5 else good_in_file
            written.append(repeat(rng, rng.choice(source)))
            truth.repeats += 1
        else:
            row = party(rng, SEED_CUSTOMERS + n)
            written.append(row)
            good_in_file.append(row)
            truth.created += 1
    write_csv(path, written)
    return truth


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, HEADER)
        writer.writeheader()
        writer.writerows(rows)


async def import_file(state: AppState, path: Path, options: ImportOptions) -> ImportSummary:
    ctx = ImportContext(state.db, state.catalog, state.plugin_manager, None)
    with path.open("rb") as raw:
        source = CsvSource(text_stream(raw))
        summary, rejections = await run_import(
            state.db, CustomerImport(ctx, options), source, options, keep_rejections=10**9
        )
    summary.rejected_rows = {r.row for r in rejections.first}  # type: ignore[attr-defined]
    return summary


async def bench_one(
    url: str, data: Path, seed_file: Path, options: ImportOptions, profile: bool
) -> tuple[ImportSummary, int]:
    settings = Settings(database_url=url, load_entry_points=False)
    await migrate_for(settings)

    async def work(state: AppState) -> tuple[ImportSummary, int]:
        seeded = await import_file(state, seed_file, options)
        assert seeded.created == SEED_CUSTOMERS and not seeded.failure, seeded.lines()
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        summary = await import_file(state, data, options)
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        rows = await state.db.fetch("SELECT COUNT(*) AS n FROM customer")
        return summary, int(rows[0]["n"]) - SEED_CUSTOMERS

    return await with_state(settings, work)


def check(engine: str, summary: ImportSummary, in_db: int, truth: Truth) -> bool:
    found = {
        "read": summary.read,
        "rejected": summary.rejected,
        "skipped as duplicate": summary.skipped_duplicates,
        "created": summary.created,
        "customers in the database": in_db,
    }
    wanted = {
        "read": truth.rows,
        "rejected": truth.bad,
        "skipped as duplicate": truth.repeats,
        "created": truth.created,
        "customers in the database": truth.created,
    }
    ok = found == wanted and summary.rejected_rows == truth.bad_rows  # type: ignore[attr-defined]
    print(f"{engine:<10} {summary.rows_per_second:>8,.0f} rows/s  ({summary.seconds:.1f} s)")
    for name, value in found.items():
        mark = "ok" if value == wanted[name] else f"EXPECTED {wanted[name]}"
        print(f"           {name:<26} {value:>7}  {mark}")
    if summary.rejected_rows != truth.bad_rows:  # type: ignore[attr-defined]
        print("           the rejected rows are not exactly the bad rows")
    if summary.failure:
        print(f"           failed: {summary.failure}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--commit", choices=("all", "batch"), default="all")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    options = ImportOptions(commit=args.commit, batch_size=args.batch_size, on_duplicate="skip")
    ok = True
    with tempfile.TemporaryDirectory(prefix="import_bench_") as tmp:
        data, seed_file = Path(tmp) / "customers.csv", Path(tmp) / "seed.csv"
        started = time.perf_counter()
        truth = generate(data, seed_file, args.rows, args.seed)
        print(
            f"generated {truth.rows} rows ({truth.bad} bad, {truth.repeats} repeats) "
            f"in {time.perf_counter() - started:.1f} s; commit={args.commit}, "
            f"batch size {args.batch_size}"
        )
        for engine in args.engines.split(","):
            if engine == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
            else:
                pg_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
                pg_admin(f'CREATE DATABASE "{PG_DATABASE}"')
                url = f"{PG_SERVER}/{PG_DATABASE}"
            try:
                summary, in_db = asyncio.run(bench_one(url, data, seed_file, options, args.profile))
            finally:
                if engine != "sqlite":
                    pg_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
            ok = check(engine, summary, in_db, truth) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
