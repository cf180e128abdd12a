"""Benchmark: importing a 100,000-row CSV of customers, interactions or
contacts on SQLite and PostgreSQL.

    .venv/bin/python -m bench.import_csv                          # customers
    .venv/bin/python -m bench.import_csv --entity interactions
    .venv/bin/python -m bench.import_csv --entity contacts

1. Generates (seeded random, so every run is the same) a seed of 2,000
   customers of three kinds with typed attributes, imported first, and the
   file to measure:
   - customers: 1% bad rows (an invalid e-mail, a missing name, an unknown
     kind, a segment that is not one of the choices, a supplier rating out of
     range, a malformed number) and 5% repeating a party already known: half
     a seed customer, half an earlier row of the file, each with the e-mail in
     other case, the phone written another way or the tax id reformatted;
   - interactions of the seed customers, each naming its customer by e-mail,
     tax id or global ID (in other case or punctuation at times), with 1% bad
     rows (an unknown channel, a customer not in the database, a satisfaction
     out of range, a date that is none, no subject) and 5% repeating an
     earlier row (its time written in another offset);
   - contacts of the seed customers, with 1% bad rows (an invalid e-mail, no
     name, a customer not in the database, a birthday in the future) and 5%
     repeating an earlier contact's e-mail at the same customer.
2. Imports it with ``--on-duplicate skip`` into a fresh SQLite file and into a
   fresh PostgreSQL database ``import_bench`` (created and dropped here), and
   prints the rows per second and the counts, checked against the generated
   truth: exactly the bad rows rejected, exactly the repeats skipped, every
   other row created, and the database holding just those rows.

``--rows``, ``--commit batch``, ``--batch-size``, ``--engines sqlite`` and
``--profile`` (cProfile of the import, top functions) change the run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import datetime
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.scratch import scratch_database
from crmgraph.app import AppState, with_state
from crmgraph.schema.ids import encode_id
from crmgraph.settings import Settings
from crmgraph.testing import migrate_for
from crmgraph.transfer.entities import entity_for
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.report import ImportSummary
from crmgraph.transfer.source import CsvSource, text_stream

PG_DATABASE = "import_bench"
# a related row's customer columns naming no customer there is
NO_SUCH_CUSTOMER = {
    "customer": "",
    "customer.email": "nobody@nowhere.example",
    "customer.tax_id": "",
}
HEADER = ["name", "email", "phone", "kind", "segment", "industry", "tax_id", "rating"]
INTERACTION_HEADER = [
    "customer", "customer.email", "customer.tax_id", "channel", "direction", "occurred_at",
    "subject", "satisfaction", "amount",
]  # fmt: skip
CONTACT_HEADER = [
    "customer", "customer.email", "customer.tax_id", "name", "email", "phone", "birthday",
]  # fmt: skip
CHANNELS = ("EMAIL", "PHONE", "MEETING", "CHAT")
SUBJECTS = ("Order", "Complaint", "Follow-up", "Quote", "Visit", "Renewal", "Question")
TABLES = {"customers": "customer", "interactions": "interaction", "contacts": "contact"}
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


def spoiled(rng: random.Random, row: dict[str, str], *other_ways: dict[str, str]) -> dict[str, str]:
    """A bad row (and nothing it repeats), spoiled one of the ways a party's row
    goes wrong: its e-mail broken, its name blank, or the columns of one of
    ``other_ways`` overwritten."""
    how = rng.randrange(2 + len(other_ways))
    if how == 0:
        return {**row, "email": row["email"].replace("@", " at ")}
    if how == 1:
        return {**row, "name": ""}
    return {**row, **other_ways[how - 2]}


def spoil(rng: random.Random, row: dict[str, str]) -> dict[str, str]:
    return spoiled(
        rng,
        row,
        {"kind": "martian"},
        {"kind": "client", "segment": "HUGE", "tax_id": ""},
        {"kind": "supplier", "rating": "9", "segment": "", "tax_id": ""},
        {"kind": "supplier", "rating": "four", "segment": "", "tax_id": ""},
    )


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


def generate(path: Path, seed_path: Path, rows: int, seed: int, entity: str) -> Truth:
    rng = random.Random(seed)
    seeds = [party(rng, i) for i in range(SEED_CUSTOMERS)]
    write_csv(seed_path, seeds)
    if entity == "interactions":
        return generate_related(path, rows, rng, seeds, interaction, spoil_interaction,
                                repeat_interaction, INTERACTION_HEADER)  # fmt: skip
    if entity == "contacts":
        return generate_related(path, rows, rng, seeds, contact, spoil_contact,
                                repeat_contact, CONTACT_HEADER)  # fmt: skip
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


Maker = Callable[[random.Random, int, list[dict[str, str]]], dict[str, str]]
Changer = Callable[[random.Random, dict[str, str]], dict[str, str]]


def generate_related(
    path: Path,
    rows: int,
    rng: random.Random,
    seeds: list[dict[str, str]],
    make: Maker,
    spoil_row: Changer,
    repeat_row: Changer,
    header: list[str],
) -> Truth:
    """Rows about the seed customers: 1% bad, 5% repeating an earlier good row."""
    truth = Truth(rows=rows)
    written: list[dict[str, str]] = []
    good_in_file: list[dict[str, str]] = []
    for n in range(rows):
        draw = rng.random()
        if draw < 0.01:
            written.append(spoil_row(rng, make(rng, n, seeds)))
            truth.bad += 1
            truth.bad_rows.add(n + 2)
        elif draw < 0.06 and good_in_file:
            written.append(repeat_row(rng, rng.choice(good_in_file)))
            truth.repeats += 1
        else:
            row = make(rng, n, seeds)
            written.append(row)
            good_in_file.append(row)
            truth.created += 1
    write_csv(path, written, header)
    return truth


def customer_columns(rng: random.Random, seeds: list[dict[str, str]]) -> dict[str, str]:
    """A seed customer named by global ID, e-mail or tax id (written another way
    at times). A fresh database numbers the seed 1, 2, … in file order."""
    index = rng.randrange(len(seeds))
    customer = seeds[index]
    how = rng.randrange(4)
    if how == 0 or not customer["tax_id"]:
        email = customer["email"] if how != 1 else customer["email"].upper()
        return {"customer": "", "customer.email": email, "customer.tax_id": ""}
    if how == 1:
        return {"customer": encode_id("Customer", index + 1), "customer.email": "",
                "customer.tax_id": ""}  # fmt: skip
    tax_id = customer["tax_id"]
    if how == 2:
        tax_id = f"{tax_id[0]}-{tax_id[1:5]}.{tax_id[5:]}"
    return {"customer": "", "customer.email": "", "customer.tax_id": tax_id}


def interaction(rng: random.Random, n: int, seeds: list[dict[str, str]]) -> dict[str, str]:
    at = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(minutes=n)
    return {
        **customer_columns(rng, seeds),
        "channel": rng.choice(CHANNELS).lower() if n % 7 == 0 else rng.choice(CHANNELS),
        "direction": rng.choice(("INBOUND", "OUTBOUND")),
        "occurred_at": at.isoformat(),
        "subject": f"{rng.choice(SUBJECTS)} {n}",
        "satisfaction": str(rng.randint(1, 5)) if rng.random() < 0.5 else "",
        "amount": f"{rng.randint(1, 99999) / 100:.2f}" if rng.random() < 0.2 else "",
    }


def spoil_interaction(rng: random.Random, row: dict[str, str]) -> dict[str, str]:
    how = rng.randrange(5)
    row = dict(row)
    if how == 0:
        row["channel"] = "FAX"
    elif how == 1:
        row |= NO_SUCH_CUSTOMER
    elif how == 2:
        row["satisfaction"] = "9"
    elif how == 3:
        row["occurred_at"] = "last tuesday"
    else:
        row["subject"] = ""
    return row


def repeat_interaction(rng: random.Random, original: dict[str, str]) -> dict[str, str]:
    """The same interaction, its time written in another offset."""
    at = datetime.datetime.fromisoformat(original["occurred_at"])
    offset = datetime.timezone(datetime.timedelta(hours=rng.choice((-5, 1, 2))))
    return {**original, "occurred_at": at.astimezone(offset).isoformat()}


def contact(rng: random.Random, n: int, seeds: list[dict[str, str]]) -> dict[str, str]:
    return {
        **customer_columns(rng, seeds),
        "name": f"{rng.choice(FIRST)} {surname(rng)}",
        "email": f"c{n}@people{n % 40}.example",
        "phone": f"+34 6{n + 50_000_000:08d}" if rng.random() < 0.5 else "",
        "birthday": f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
    }


def spoil_contact(rng: random.Random, row: dict[str, str]) -> dict[str, str]:
    return spoiled(rng, row, NO_SUCH_CUSTOMER, {"birthday": "2999-01-01"})


def repeat_contact(rng: random.Random, original: dict[str, str]) -> dict[str, str]:
    """The same person at the same customer, another name spelling, e-mail in capitals."""
    return {**original, "name": original["name"].upper(), "email": original["email"].upper()}


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, header)
        writer.writeheader()
        writer.writerows(rows)


async def import_file(
    state: AppState, path: Path, options: ImportOptions, entity: str = "customers"
) -> ImportSummary:
    ctx = ImportContext(state.db, state.catalog, state.plugin_manager, None)
    with path.open("rb") as raw:
        source = CsvSource(text_stream(raw))
        summary, rejections = await run_import(
            state.db, entity_for(entity, ctx, options), source, options, keep_rejections=10**9
        )
    summary.rejected_rows = {r.row for r in rejections.first}  # type: ignore[attr-defined]
    return summary


async def bench_one(
    url: str, data: Path, seed_file: Path, options: ImportOptions, profile: bool, entity: str
) -> tuple[ImportSummary, int]:
    settings = Settings(database_url=url, load_entry_points=False)
    await migrate_for(settings)

    async def work(state: AppState) -> tuple[ImportSummary, int]:
        seeded = await import_file(state, seed_file, options)
        assert seeded.created == SEED_CUSTOMERS and not seeded.failure, seeded.lines()
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        summary = await import_file(state, data, options, entity)
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        rows = await state.db.fetch(f"SELECT COUNT(*) AS n FROM {TABLES[entity]}")
        return summary, int(rows[0]["n"]) - (SEED_CUSTOMERS if entity == "customers" else 0)

    return await with_state(settings, work)


def check(engine: str, summary: ImportSummary, in_db: int, truth: Truth, entity: str) -> bool:
    found = {
        "read": summary.read,
        "rejected": summary.rejected,
        "skipped as duplicate": summary.skipped_duplicates,
        "created": summary.created,
        f"{entity} in the database": in_db,
    }
    wanted = {
        "read": truth.rows,
        "rejected": truth.bad,
        "skipped as duplicate": truth.repeats,
        "created": truth.created,
        f"{entity} in the database": truth.created,
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
    parser.add_argument("--entity", choices=tuple(TABLES), default="customers")
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
        data, seed_file = Path(tmp) / f"{args.entity}.csv", Path(tmp) / "seed.csv"
        started = time.perf_counter()
        truth = generate(data, seed_file, args.rows, args.seed, args.entity)
        print(
            f"generated {truth.rows} {args.entity} rows ({truth.bad} bad, {truth.repeats} repeats) "
            f"in {time.perf_counter() - started:.1f} s; commit={args.commit}, "
            f"batch size {args.batch_size}"
        )
        for engine in args.engines.split(","):
            with scratch_database(engine, Path(tmp), PG_DATABASE) as url:
                summary, in_db = asyncio.run(
                    bench_one(url, data, seed_file, options, args.profile, args.entity)
                )
            ok = check(engine, summary, in_db, truth, args.entity) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
