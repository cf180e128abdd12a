"""The collector tuned for a bulk job (crmgraph.gc_tuning): frozen startup
objects and a larger young generation while an import runs, the process's
own settings back after it, whether it ended well or not, and overlapping
jobs counted."""

from __future__ import annotations

import gc
import io
from typing import Any

import pytest

from crmgraph.app import AppState
from crmgraph.gc_tuning import BULK_YOUNG_THRESHOLD, bulk_work
from crmgraph.transfer.customers import CheckedRows, CustomerImport
from crmgraph.transfer.importer import ImportContext, ImportOptions, Reject, run_import
from crmgraph.transfer.source import CsvSource, SourceRow, text_stream
from tests.test_import_export import csv_bytes, run

ROWS = 120
BATCH = 50


def collector() -> tuple[int, int]:
    """Objects frozen now, and the young generation's threshold."""
    return gc.get_freeze_count(), gc.get_threshold()[0]


class WatchedImport(CustomerImport):
    """A customers import noting the collector's state as each batch is checked."""

    def __init__(self, ctx: ImportContext, options: ImportOptions, fail: bool) -> None:
        super().__init__(ctx, options)
        self.seen: list[tuple[int, int]] = []
        self.fail = fail

    async def check_batch(self, rows: list[SourceRow], reject: Reject) -> CheckedRows:
        self.seen.append(collector())
        if self.fail and len(self.seen) == 2:
            raise RuntimeError("a plugin gave up")
        return await super().check_batch(rows, reject)


def people() -> bytes:
    rows = [["name", "email", "kind"]]
    rows += [[f"Bulk Person {n}", f"bulk{n}@example.com", "prospect"] for n in range(ROWS)]
    return csv_bytes(rows)


@pytest.mark.parametrize("fail", [False, True], ids=["imported", "failed"])
def test_an_import_runs_with_startup_frozen_and_leaves_the_collector_as_it_was(
    database_url: str, fail: bool
) -> None:
    before = collector()  # a server started in this process froze its start-up
    options = ImportOptions(batch_size=BATCH)

    async def work(state: AppState) -> tuple[Any, WatchedImport]:
        ctx = ImportContext(state.db, state.catalog, state.plugin_manager, "ES")
        entity = WatchedImport(ctx, options, fail)
        source = CsvSource(text_stream(io.BytesIO(people())))
        summary, _ = await run_import(state.db, entity, source, options)
        return summary, entity

    summary, entity = run(database_url, work)
    assert (summary.failure is not None) is fail
    assert summary.created == (0 if fail else ROWS)
    assert len(entity.seen) == (2 if fail else 3)  # every batch checked under it
    for frozen, young in entity.seen:
        assert frozen > 10_000  # the app's modules, schema and catalog at least
        assert young == BULK_YOUNG_THRESHOLD
    frozen, young = collector()
    assert young == before[1]
    assert frozen <= before[0] or before[0] == 0  # no more frozen than before
    assert (frozen == 0) is (before[0] == 0)  # what it froze is thawed, the rest kept


def test_overlapping_jobs_the_last_out_restores() -> None:
    gc.unfreeze()  # a process that froze nothing (the command line)
    before = collector()
    with bulk_work():
        frozen, young = collector()
        assert frozen > 0 and young == BULK_YOUNG_THRESHOLD
        with bulk_work():
            assert collector()[1] == BULK_YOUNG_THRESHOLD
        # the first still runs (a frozen object freed meanwhile leaves the count)
        still, young = collector()
        assert 0.9 * frozen <= still <= frozen and young == BULK_YOUNG_THRESHOLD
    assert collector() == before


def test_a_started_server_keeps_its_start_up_frozen() -> None:
    """A server froze what start-up built (crmgraph.app); an import on it
    neither freezes more nor thaws that when it ends."""
    gc.unfreeze()
    gc.freeze()  # as crmgraph.app's start-up
    threshold = gc.get_threshold()[0]
    started, _ = collector()
    with bulk_work():
        assert collector()[1] == BULK_YOUNG_THRESHOLD
    frozen, young = collector()
    assert young == threshold
    assert 0.9 * started <= frozen <= started  # thawed, it would be 0
