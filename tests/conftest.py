"""Fixtures of crmgraph's own suite: a fresh database per test on each engine
(a copied SQLite file; a PostgreSQL database cloned from a migrated template,
one template per pytest-xdist worker) and the app ``crmgraph serve`` builds,
started in process in front of it (a real socket on first use of ``.url``).
The building blocks are the ones plugin authors get from
:mod:`crmgraph.testing`.

``--engine sqlite`` (or ``postgres``; also ``CRMGRAPH_TEST_DATABASE``) keeps
only the tests of one engine: every test parametrised over the engines is
deselected for the other."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmgraph.testing import (
    ENGINES,
    GraphQLFailure,
    LiveServer,
    TemplateDatabases,
    live_server,
    require_postgres,
    settings_for,
)

__all__ = ["GraphQLFailure", "LiveServer"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=ENGINES,
        default=os.environ.get("CRMGRAPH_TEST_DATABASE") or None,
        help="run only the tests of this database engine (default: both; "
        "or CRMGRAPH_TEST_DATABASE)",
    )


def engine_of(item: pytest.Item) -> str | None:
    """The engine a test runs on: a parameter ``sqlite`` or ``postgres``."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    return next((v for v in params.values() if isinstance(v, str) and v in ENGINES), None)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    group_by_module_and_engine(items)
    keep_one_engine(config, items)


def group_by_module_and_engine(items: list[pytest.Item]) -> None:
    """For ``-n 2 --dist loadgroup`` (make test): a module's tests of one engine
    run on one worker, in order, so a module-scoped database is built once;
    its two engines may run side by side on both workers."""
    for item in items:
        engine = engine_of(item)
        group = item.nodeid.split("::")[0] + (f"[{engine}]" if engine else "")
        item.add_marker(pytest.mark.xdist_group(group))


def keep_one_engine(config: pytest.Config, items: list[pytest.Item]) -> None:
    engine = config.getoption("--engine")
    if engine is None:
        return
    other = {e for e in ENGINES if e != engine}
    keep, drop = [], []
    for item in items:
        (drop if engine_of(item) in other else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def sqlite_template(crmgraph_templates: TemplateDatabases) -> Path:
    """The migrated SQLite file (core only) that tests copy."""
    return crmgraph_templates.sqlite_template(())


@pytest.fixture(scope="session")
def pg_template(crmgraph_templates: TemplateDatabases) -> str:
    """The migrated PostgreSQL database (core only) that tests clone."""
    require_postgres()
    return crmgraph_templates.postgres_template(())


@contextlib.contextmanager
def fresh_database(engine: str, request: pytest.FixtureRequest, path: Path) -> Iterator[str]:
    """A migrated database: a copy of the SQLite template at ``path``, or a
    PostgreSQL database cloned from the template (dropped afterwards)."""
    templates: TemplateDatabases = request.getfixturevalue("crmgraph_templates")
    with templates.fresh(engine, (), path) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test, on each engine in turn."""
    with fresh_database(request.param, request, tmp_path / "crm.sqlite") as url:
        yield url


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    with live_server(settings_for(database_url)) as running:
        yield running
