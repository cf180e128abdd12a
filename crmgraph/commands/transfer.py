"""``crmgraph import`` and ``crmgraph export``: argument parsing and output.

``all`` exports every entity into a folder (``customers.csv``,
``contacts.csv``, ``interactions.csv``, ``needs.csv``) and imports such a
folder in that order, each file naming records of the ones before it.

Heavy modules are imported inside the commands so ``crmgraph --help`` stays
fast. Exit status: 0 when the import ran (rejected rows included), 1 when it
failed (see the summary for what was kept), 2 for a bad file or mapping.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from crmgraph.commands.common import migrate_database, settings_from_args, with_app_state
from crmgraph.transfer.modes import (
    COMMIT_MODES,
    DEFAULT_BATCH_SIZE,
    DUPLICATE_MODES,
    ENTITIES,
    IMPORTABLE,
)

if TYPE_CHECKING:
    from crmgraph.commands.common import CommandState
    from crmgraph.transfer.importer import ImportOptions


ALL = "all"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser(
        "import", help="import customers, contacts, interactions or needs from CSV"
    )
    imp.add_argument("entity", choices=(*IMPORTABLE, ALL))
    imp.add_argument(
        "file",
        type=Path,
        help="a CSV file (UTF-8 unless --encoding); for all, the folder of a full export",
    )
    imp.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="COLUMN=FIELD",
        help="feed FIELD from COLUMN (repeatable); FIELD '-' ignores the column",
    )
    imp.add_argument("--mapping-file", type=Path, help="COLUMN=FIELD lines or a JSON object")
    imp.add_argument("--kind", help="customers: the kind of rows that give none")
    imp.add_argument(
        "--on-duplicate",
        choices=DUPLICATE_MODES,
        default="skip",
        help="merge: customers only",
    )
    imp.add_argument(
        "--add-roles",
        action="store_true",
        help="customers: a row repeating a party of another kind adds its kind as a role",
    )
    imp.add_argument("--commit", choices=COMMIT_MODES, default="all")
    imp.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    imp.add_argument(
        "--resume-after",
        type=int,
        default=1,
        metavar="ROW",
        help="skip rows up to ROW (the header is row 1): carry on after a failed --commit batch",
    )
    imp.add_argument(
        "--rejects", type=Path, help="where rejected rows go (default: FILE.rejected.csv)"
    )
    imp.add_argument("--encoding", default="utf-8")
    imp.add_argument("--delimiter", help="default: sniffed from the file among , ; tab |")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.add_argument(
        "--dry-run",
        action="store_true",
        help="run the whole import (every file of all) in one transaction that is rolled "
        "back: report what would be created, skipped and rejected, write nothing",
    )
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", help="export customers, contacts, interactions or needs")
    exp.add_argument("entity", choices=(*ENTITIES, ALL))
    exp.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    exp.add_argument(
        "--output", type=Path, help="default: standard output; for all, a folder (made if needed)"
    )
    exp.add_argument("--kind", help="customers of this kind only (and their contacts, …)")
    exp.set_defaults(func=cmd_export)


def cmd_import(args: argparse.Namespace) -> int:
    from crmgraph.transfer.importer import ImportOptions
    from crmgraph.transfer.mapping import MappingError, parse_pairs, read_mapping_file
    from crmgraph.transfer.source import SourceError

    if args.batch_size < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    if args.entity == ALL and (args.map or args.mapping_file or args.rejects):
        print("error: import all reads a full export as written: no --map, --mapping-file "
              "or --rejects", file=sys.stderr)  # fmt: skip
        return 2
    try:
        mapping = read_mapping_file(args.mapping_file) if args.mapping_file else {}
        mapping |= parse_pairs(args.map)
    except MappingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = ImportOptions(
        commit=args.commit,
        batch_size=args.batch_size,
        on_duplicate=args.on_duplicate,
        kind=args.kind.lower() if args.kind else None,
        resume_after=args.resume_after,
        mapping=mapping,
        add_roles=args.add_roles,
    )
    jobs = [(args.entity, args.file, options)]
    if args.entity == ALL:
        jobs = export_files(args.file, options)
        if not jobs:
            print(f"error: no {', '.join(IMPORTABLE)} .csv file in {args.file}", file=sys.stderr)
            return 2
    settings = settings_from_args(args)
    asyncio.run(migrate_database(settings))

    if args.dry_run:  # one transaction, rolled back: batches cannot commit
        jobs = [(entity, path, dataclasses.replace(o, commit="all")) for entity, path, o in jobs]

    async def run(state: CommandState) -> int:
        if not args.dry_run:
            return await imports(state)
        from crmgraph.db.dry_run import rolled_back

        async with rolled_back(state.db):
            status = await imports(state)
        print("dry run: nothing was written (the import ran in a transaction rolled back)")
        return status

    async def imports(state: CommandState) -> int:
        status = 0
        for entity, path, entity_options in jobs:
            rejects = args.rejects or path.with_name(path.name + ".rejected.csv")
            status = max(status, await _import(state, args, entity, path, entity_options, rejects))
            if status:
                break  # what follows names records this file failed to write
        return status

    try:
        return asyncio.run(with_app_state(settings, run))
    except (MappingError, SourceError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def export_files(folder: Path, options: ImportOptions) -> list[tuple[str, Path, ImportOptions]]:
    """The files of a full export in ``folder``, in import order, each with
    its options (a repeated contact, interaction or need is never merged)."""
    mode = "skip" if options.on_duplicate == "merge" else options.on_duplicate
    related = dataclasses.replace(options, kind=None, on_duplicate=mode)
    found = []
    for entity in IMPORTABLE:
        path = folder / f"{entity}.csv"
        if path.is_file():
            found.append((entity, path, options if entity == "customers" else related))
    return found


async def _import(
    state: CommandState,
    args: argparse.Namespace,
    entity_name: str,
    path: Path,
    options: ImportOptions,
    rejects: Path,
) -> int:
    from crmgraph.transfer.entities import entity_for
    from crmgraph.transfer.importer import ImportContext, run_import
    from crmgraph.transfer.progress import count_records, progress_bar
    from crmgraph.transfer.source import CsvSource, text_stream

    ctx = ImportContext(
        state.db, state.catalog, state.plugin_manager, state.settings.default_phone_region
    )
    entity = entity_for(entity_name, ctx, options)
    total = count_records(path)
    bar = progress_bar(f"importing {entity_name}", total, args.quiet)
    with path.open("rb") as raw, bar as tick:
        source = CsvSource(text_stream(raw, args.encoding), args.delimiter)
        summary, rejections = await run_import(
            state.db,
            entity,
            source,
            options,
            rejects,
            tick,  # type: ignore[arg-type]
        )
    for line in summary.lines():
        print(line)
    if rejections.count:
        print(f"rejected rows and their reasons: {rejects}")
    return 1 if summary.failure else 0


def cmd_export(args: argparse.Namespace) -> int:
    from crmgraph.transfer.export import export

    async def run(state: CommandState) -> int:
        if args.kind and state.catalog.customer_type(args.kind.lower()) is None:
            print(f"error: unknown kind {args.kind!r}", file=sys.stderr)
            return 2
        kind = args.kind.lower() if args.kind else None
        if args.entity == ALL and args.output is None:
            print("error: export all writes a folder: give --output FOLDER", file=sys.stderr)
            return 2
        if args.output is None:
            await export(state.db, state.catalog, args.entity, args.format, sys.stdout, kind)
            return 0
        targets = [(args.entity, args.output)]
        if args.entity == ALL:
            args.output.mkdir(parents=True, exist_ok=True)
            targets = [(e, args.output / f"{e}.{args.format}") for e in ENTITIES]
        for entity, path in targets:
            with path.open("w", encoding="utf-8", newline="") as out:
                count = await export(state.db, state.catalog, entity, args.format, out, kind)
            print(f"exported {count} {entity} to {path}", file=sys.stderr)
        return 0

    return asyncio.run(with_app_state(settings_from_args(args), run))
