"""PostgreSQL going away in the middle of an import whose COPYs are sent
behind (crmgraph.db.turns): the import ends (no statement waits for ever on
a turn a dead COPY held), says why, and leaves nothing half-written: under
``--commit all`` no customer; under ``--commit batch`` exactly the rows of
the batches it says it committed."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from crmgraph.app import AppState, with_state
from crmgraph.testing import require_postgres, settings_for
from crmgraph.transfer.customers import CustomerImport
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.report import ImportSummary
from crmgraph.transfer.source import CsvSource, text_stream
from tests.conftest import fresh_database
from tests.test_import_export import count, csv_bytes

BATCH = 100  # more than bulk.COPY_FROM_ROWS: the batch's rows go by COPY, behind
ROWS = 6 * BATCH
ENDS_WITHIN_SECONDS = 120  # a hang fails the test instead of the run


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    require_postgres()
    with fresh_database("postgres", request, tmp_path / "unused.sqlite") as url:
        yield url


def people() -> bytes:
    rows = [["name", "email", "kind"]]
    rows += [[f"Faulty {n}", f"faulty{n}@example.com", "prospect"] for n in range(ROWS)]
    return csv_bytes(rows)


async def terminate_others(url: str) -> None:
    """Every other backend of the database, the import's included, ends."""
    connection = await asyncpg.connect(url)
    try:
        await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()


async def import_killed_after_first_batch(state: AppState, url: str, commit: str) -> ImportSummary:
    options = ImportOptions(commit=commit, batch_size=BATCH)
    ctx = ImportContext(state.db, state.catalog, state.plugin_manager, "ES")
    killers: list[asyncio.Task[None]] = []

    def progress(read: int) -> None:  # the first batch written: PostgreSQL goes away
        if not killers:
            killers.append(asyncio.get_running_loop().create_task(terminate_others(url)))

    source = CsvSource(text_stream(io.BytesIO(people())))
    summary, _ = await asyncio.wait_for(
        run_import(state.db, CustomerImport(ctx, options), source, options, None, progress),
        ENDS_WITHIN_SECONDS,
    )
    await asyncio.gather(*killers)
    return summary


@pytest.mark.parametrize("commit", ["all", "batch"])
def test_postgresql_going_away_mid_import_leaves_nothing_half_written(
    postgres_url: str, commit: str
) -> None:
    async def work(state: AppState) -> tuple[ImportSummary, int, int]:
        summary = await import_killed_after_first_batch(state, postgres_url, commit)
        return summary, await count(state, "customer"), await count(state, "customer_match_key")

    settings = settings_for(postgres_url)
    summary, customers, keyed = asyncio.run(with_state(settings, work))
    # the error that ended it (asyncpg names the lost connection or, caught
    # between two messages, its protocol's state), not a failed ROLLBACK's
    assert summary.failure is not None, summary
    assert "rollback" not in summary.failure.lower(), summary.failure
    written = 0 if summary.committed_through is None else summary.committed_through - 1
    if commit == "all":
        assert summary.committed_through is None
    assert customers == written
    assert keyed >= customers  # each customer written has its keys: none half-written
    assert written < ROWS  # it did stop
