"""Running an import: batches, transactions, rejected rows, the summary.

``commit="all"``: every batch runs in one transaction; rows found bad are
rejected before their batch is written and never written, and any
unexpected failure (a plugin that raises, a database error) rolls the whole
file back: nothing is written. ``commit="batch"``: each batch is its own
transaction; a failure keeps the batches committed before it, and the
summary names the last committed row so a re-run with ``resume_after``
(``--resume-after ROW``) carries on after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pluggy

from crmgraph.access import Access
from crmgraph.db.engine import Database
from crmgraph.registry import Catalog
from crmgraph.transfer.mapping import ColumnMap, Fields, resolve
from crmgraph.transfer.modes import DEFAULT_BATCH_SIZE
from crmgraph.transfer.report import ImportSummary, Rejection, Rejections
from crmgraph.transfer.source import CsvSource, SourceRow
from crmgraph.validation import Problem


@dataclass(frozen=True)
class ImportOptions:
    commit: str = "all"
    batch_size: int = DEFAULT_BATCH_SIZE
    on_duplicate: str = "skip"
    kind: str | None = None  # the kind of rows whose kind cell is empty
    resume_after: int = 1  # rows up to this one are skipped (1: the header)
    mapping: dict[str, str] = field(default_factory=dict)
    # customers: a row repeating a party of another kind adds its kind as a role
    add_roles: bool = False


@dataclass
class ImportContext:
    """Where and for whom an import writes. ``access`` is None on the command
    line: it acts for no user and may write every field."""

    db: Database
    catalog: Catalog
    plugin_manager: pluggy.PluginManager
    phone_region: str | None = None
    actor: int | None = None
    access: Access | None = None


@dataclass
class BatchOutcome:
    created: int = 0
    merged: int = 0
    skipped_duplicates: int = 0
    roles_added: int = 0


Reject = Callable[[Rejection], None]


class Entity(Protocol):
    """What is imported (customers, contacts, interactions)."""

    name: str

    def fields(self) -> Fields: ...

    def bind(self, column_map: ColumnMap) -> None:
        """Check the resolved columns can work (raise MappingError)."""

    async def prepare(self) -> None:
        """Read what every batch needs once (users, teams, …)."""

    async def run_batch(self, rows: list[SourceRow], reject: Reject) -> BatchOutcome:
        """Validate and write one batch inside the caller's transaction."""


def batches(rows: Iterator[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    batch: list[SourceRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def run_import(
    db: Database,
    entity: Entity,
    source: CsvSource,
    options: ImportOptions,
    rejects_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
    keep_rejections: int = 100,
) -> tuple[ImportSummary, Rejections]:
    """Import every row of ``source``; the summary says what was written. A
    bad mapping raises MappingError before anything is read."""
    column_map = resolve(source.header, options.mapping, entity.fields())
    entity.bind(column_map)
    summary = ImportSummary(entity.name, options.commit, ignored_columns=column_map.ignored)
    rejections = Rejections(source.header, rejects_path, keep_rejections)
    started = time.perf_counter()

    def reject(rejection: Rejection) -> None:
        rejections.add(rejection)
        summary.rejected += 1

    def add(outcome: BatchOutcome) -> None:
        summary.created += outcome.created
        summary.merged += outcome.merged
        summary.skipped_duplicates += outcome.skipped_duplicates
        summary.roles_added += outcome.roles_added

    async def one_batch(rows: list[SourceRow]) -> BatchOutcome:
        summary.read += len(rows)
        found: list[Rejection] = []
        usable = []
        for row in rows:
            if row.problem is not None:
                found.append(
                    Rejection(row.number, row.values, (Problem(None, row.problem, "INVALID"),))
                )
            else:
                usable.append(row)
        outcome = await entity.run_batch(usable, found.append)
        for rejection in sorted(found, key=lambda r: r.row):  # in file order
            reject(rejection)
        if progress is not None:
            progress(summary.read)
        return outcome

    wanted = (row for row in source.rows() if row.number > options.resume_after)
    try:
        await entity.prepare()
        if options.commit == "all":
            total = BatchOutcome()
            async with db.transaction():
                for rows in batches(wanted, options.batch_size):
                    outcome = await one_batch(rows)
                    total.created += outcome.created
                    total.merged += outcome.merged
                    total.skipped_duplicates += outcome.skipped_duplicates
                    total.roles_added += outcome.roles_added
            add(total)
        else:
            for rows in batches(wanted, options.batch_size):
                async with db.transaction():
                    outcome = await one_batch(rows)
                add(outcome)
                summary.committed_through = rows[-1].number
    except Exception as exc:  # any failure ends the import; what it wrote is rolled back
        summary.failure = f"{type(exc).__name__}: {exc}"
    finally:
        rejections.close()
        summary.seconds = time.perf_counter() - started
    return summary, rejections
