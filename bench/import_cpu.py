"""Benchmark: where an import's CPU goes, per row: the importing process
(Python) and its PostgreSQL backend, over ``bench.import_csv``'s customers
file imported into a copy of a ``bench.scale`` database.

    .venv/bin/python -m bench.import_cpu --size 10000 --rows 20000

Process time is read from the process itself and the backend's from
``/proc/<pid>/stat``, so the figures hold on a machine doing other work,
where wall time does not (the wall time is printed too). Needs the size's
database (``python -m bench.scale --sizes SIZE --seed-only``)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import time
from pathlib import Path

from bench import import_csv
from bench.scale import check_import, import_copy
from crmgraph.app import AppState, with_state
from crmgraph.testing import settings_for
from crmgraph.transfer.modes import DEFAULT_BATCH_SIZE

TICK = os.sysconf("SC_CLK_TCK")


async def backend_seconds(state: AppState) -> float:
    """CPU seconds of the backends now connected to this database."""
    rows = await state.db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    )
    total = 0.0
    for row in rows:
        try:
            fields = Path(f"/proc/{row['pid']}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a backend that ended meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def measure(size: int, rows: int, batch_size: int) -> None:
    with import_copy(size, rows) as copy:
        options = dataclasses.replace(copy.options, batch_size=batch_size)

        async def work(state: AppState) -> None:
            await copy.import_seeds(state)
            wall, cpu = time.perf_counter(), time.process_time()
            backend = await backend_seconds(state)
            summary = await import_csv.import_file(state, copy.data, options)
            backend = await backend_seconds(state) - backend
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            check_import(summary, copy.truth)
            per_row = 1000 / rows
            print(
                f"{rows:,} rows into {size:,} customers ({batch_size:,} a batch): "
                f"python {cpu * per_row:.3f} ms/row, "
                f"postgres {backend * per_row:.3f} ms/row, wall {wall * per_row:.3f} ms/row "
                f"({rows / wall:,.0f} rows/s)"
            )

        asyncio.run(with_state(settings_for(copy.url), work))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_cpu", description=__doc__)
    parser.add_argument("--size", type=int, default=10_000, help="the bench.scale database")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    args = parser.parse_args()
    for _ in range(args.runs):
        measure(args.size, args.rows, args.batch_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
