"""An empty database for one benchmark run, on SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from crmgraph.testing import PG_SERVER, pg_admin


@contextlib.contextmanager
def scratch_database(engine: str, directory: Path, pg_database: str) -> Iterator[str]:
    """The URL of an empty database: a file in ``directory`` on SQLite, or
    ``pg_database`` made afresh on the PostgreSQL server and dropped afterwards."""
    if engine == "sqlite":
        yield f"sqlite:///{directory / 'bench.sqlite'}"
        return
    drop = f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)'
    pg_admin(drop)
    pg_admin(f'CREATE DATABASE "{pg_database}"')
    try:
        yield f"{PG_SERVER}/{pg_database}"
    finally:
        pg_admin(drop)
