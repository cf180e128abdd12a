"""Running an import: batches, transactions, rejected rows, the summary.

``commit="all"``: every batch runs in one transaction; rows found bad are
rejected before their batch is written and never written, and any
unexpected failure (a plugin that raises, a database error) rolls the whole
file back: nothing is written. ``commit="batch"``: each batch is its own
transaction; a failure keeps the batches committed before it, and the
summary names the last committed row so a re-run with ``resume_after``
(``--resume-after ROW``) carries on after it.

A batch's COPYs go behind (:mod:`crmgraph.db.turns`): Python builds the
next table's rows while PostgreSQL writes the last; a failure among them
fails the import as any other does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pluggy

from crmgraph import gc_tuning
from crmgraph.access import Access
from crmgraph.db.bulk import without_jit, writes_behind
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


@runtime_checkable
class Pipelined(Entity, Protocol):
    """An entity whose batches are checked apart from being written: a
    batch's rows are held to the rules (Python, no database when
    ``checks_offline``) while the batch before it is written, so the
    validation's CPU and the database's work on the writes overlap."""

    @property
    def checks_offline(self) -> bool:
        """Whether ``check_batch`` reads and writes nothing in the database."""

    async def check_batch(self, rows: list[SourceRow], reject: Reject) -> object:
        """The rows held to the rules (bad ones rejected), to write."""

    async def write_batch(self, checked: Any, reject: Reject) -> BatchOutcome:
        """Screen and write what ``check_batch`` kept, in the caller's transaction."""


@dataclass
class Checked:
    """A batch checked, not written yet: its rows, those rejected so far and
    what the entity keeps of the rest; or the failure of its check, raised
    when its turn to be written comes (its rows are read by then, as when a
    batch was checked and written in one go)."""

    rows: list[SourceRow]
    found: list[Rejection]
    value: object
    failure: Exception | None = None


async def check_batch(entity: Entity, rows: list[SourceRow], reject: Reject) -> object:
    if isinstance(entity, Pipelined):
        return await entity.check_batch(rows, reject)
    return rows  # checked with the writing


async def write_batch(entity: Entity, checked: Any, reject: Reject) -> BatchOutcome:
    if isinstance(entity, Pipelined):
        return await entity.write_batch(checked, reject)
    return await entity.run_batch(checked, reject)


async def pipeline(
    each: Iterator[list[SourceRow]],
    check: Callable[[list[SourceRow]], Awaitable[Checked]],
    write: Callable[[Checked], Awaitable[None]],
    entity: Entity,
) -> None:
    """Check and write every batch in order; the next batch is checked while
    one is written when its check needs no database (the transaction's
    connection runs one statement at a time). A failure of the next batch's
    check is raised only once the batch before it is written, as in order."""
    overlap = isinstance(entity, Pipelined) and entity.checks_offline

    def launch() -> asyncio.Future[Checked] | None:
        rows = next(each, None)
        return None if rows is None else asyncio.ensure_future(check(rows))

    pending = launch()
    try:
        while pending is not None:
            checked = await pending
            pending = launch() if overlap else None
            await write(checked)
            if not overlap:
                pending = launch()
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
        if pending is not None:
            with contextlib.suppress(BaseException):  # the failure being raised is the first
                await pending


@contextlib.asynccontextmanager
async def import_transaction(db: Database) -> AsyncIterator[None]:
    """One transaction of an import (the file's, or a batch's): without JIT
    (:func:`crmgraph.db.bulk.without_jit`), its COPYs sent behind."""
    async with db.transaction():
        await without_jit(db)
        async with writes_behind(db):
            yield


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

    async def check(rows: list[SourceRow]) -> Checked:
        found: list[Rejection] = []
        usable = []
        for row in rows:
            if row.problem is not None:
                found.append(
                    Rejection(row.number, row.values, (Problem(None, row.problem, "INVALID"),))
                )
            else:
                usable.append(row)
        try:
            return Checked(rows, found, await check_batch(entity, usable, found.append))
        except Exception as exc:  # raised in order, once the batches before are written
            return Checked(rows, found, None, exc)

    async def write(checked: Checked) -> BatchOutcome:
        summary.read += len(checked.rows)  # a batch whose check failed was read too
        if checked.failure is not None:
            raise checked.failure
        outcome = await write_batch(entity, checked.value, checked.found.append)
        for rejection in sorted(checked.found, key=lambda r: r.row):  # in file order
            reject(rejection)
        if progress is not None:
            progress(summary.read)
        return outcome

    wanted = (row for row in source.rows() if row.number > options.resume_after)
    try:
        await entity.prepare()
        with gc_tuning.bulk_work():  # a batch's rows are promoted: no full collection a batch
            if options.commit == "all":
                total = BatchOutcome()

                async def into_total(checked: Checked) -> None:
                    outcome = await write(checked)
                    total.created += outcome.created
                    total.merged += outcome.merged
                    total.skipped_duplicates += outcome.skipped_duplicates
                    total.roles_added += outcome.roles_added

                async with import_transaction(db):
                    await pipeline(batches(wanted, options.batch_size), check, into_total, entity)
                add(total)
            else:

                async def committed(checked: Checked) -> None:
                    async with import_transaction(db):
                        outcome = await write(checked)
                    add(outcome)
                    summary.committed_through = checked.rows[-1].number

                await pipeline(batches(wanted, options.batch_size), check, committed, entity)
    except Exception as exc:  # any failure ends the import; what it wrote is rolled back
        summary.failure = f"{type(exc).__name__}: {exc}"
    finally:
        rejections.close()
        summary.seconds = time.perf_counter() - started
    return summary, rejections
