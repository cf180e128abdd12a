"""The data set of the GraphQL load benchmark: bench.analytics' generator at
10,000 customers and 100,000 interactions, plus contacts and consent
statements, on PostgreSQL; a
SQLite copy of the same rows for ``--sqlite``; an admin API key per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from bench import analytics
from crmgraph import auth
from crmgraph.app import AppState, with_state
from crmgraph.db.bulk import insert_rows
from crmgraph.db.engine import make_engine
from crmgraph.db.migrate import catalog_apps, migrate
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.settings import Settings

MARKER = "crmgraph bench graphql_load"
CUSTOMERS = 10_000
INTERACTIONS = 100_000
SEED = 8
ADMIN_EMAIL = "bench-load-admin@crmgraph.example"
JOB_TITLES = ("Owner", "Buyer", "Finance", "Engineer", "Assistant")


# the rows seeded besides bench.analytics' (changing them reseeds the databases)
EXTRA_ROWS = "contacts,consents"


def data_set(customers: int = CUSTOMERS, interactions: int = INTERACTIONS) -> analytics.DataSet:
    return analytics.DataSet(customers, interactions, SEED, label=MARKER, variant=EXTRA_ROWS)


def contact_statements(data: analytics.DataSet) -> list[str]:
    """One to three contacts per customer, the first primary (runs after
    bench.analytics' statements, which define ``pg_temp.u``)."""
    salt = data.seed * 1000 + 60
    titles = "ARRAY[" + ", ".join(analytics.quote(t) for t in JOB_TITLES) + "]"
    return [
        "INSERT INTO contact (customer, name, email, phone, job_title, is_primary, "
        "created_at, updated_at) "
        "SELECT c.id, 'Contact ' || k || ' of ' || c.name, "
        "'contact-' || k || '-' || c.id || '@bench.example', NULL, "
        f"({titles})[1 + floor(pg_temp.u(c.id * 4 + k, {salt + 1}) * {len(JOB_TITLES)})::int], "
        "k = 1, c.created_at, c.created_at "
        "FROM customer c JOIN generate_series(1, 3) k "
        f"ON k <= 1 + floor(pg_temp.u(c.id, {salt}) * 3)::int ORDER BY c.id, k"
    ]


# (channel, purpose, granted, days after the customer's creation): a customer
# holds the first 0 to 4 of these statements, so some have withdrawn the
# marketing e-mails they first agreed to
CONSENT_STEPS = (
    ("EMAIL", "MARKETING", True, 1),
    ("SMS", "SERVICE", True, 2),
    ("EMAIL", "MARKETING", False, 40),
    ("PHONE", "MARKETING", True, 60),
)


def consent_statements(data: analytics.DataSet) -> list[str]:
    """Consent statements for the ``mixed`` scenario's ``consents`` field (as
    recorded through a web form: no contact, no recording user)."""
    salt = data.seed * 1000 + 70
    steps = ", ".join(
        f"({k}, {analytics.quote(channel)}, {analytics.quote(purpose)}, {granted}, {days})"
        for k, (channel, purpose, granted, days) in enumerate(CONSENT_STEPS, 1)
    )
    return [
        "INSERT INTO consent_change (customer, contact, channel, purpose, granted, source, "
        "evidence, at, recorded_by) "
        "SELECT c.id, NULL, s.channel, s.purpose, s.granted, 'WEB_FORM', NULL, "
        "c.created_at + s.days * interval '1 day', NULL "
        f"FROM customer c JOIN (VALUES {steps}) s (k, channel, purpose, granted, days) "
        f"ON s.k <= floor(pg_temp.u(c.id, {salt}) * {len(CONSENT_STEPS) + 1})::int "
        "ORDER BY c.id, s.k"
    ]


async def prepare_postgres(url: str, settings: Settings, reseed: bool) -> None:
    data = data_set()
    extra = [*contact_statements(data), *consent_statements(data)]
    await analytics.prepare(url, settings, data, reseed, extra)


async def admin_key(settings: Settings) -> str:
    """A fresh API key of the benchmark's admin user (created on first use)."""

    async def work(state: AppState) -> str:
        if not await state.db.fetch("SELECT id FROM crm_user WHERE email = {}", ADMIN_EMAIL):
            await auth.create_user(state.db, "Bench load admin", ADMIN_EMAIL, "admin")
        return await auth.create_key(state.db, ADMIN_EMAIL, "bench graphql_load")

    return await with_state(settings, work)


def sqlite_marker_path(path: Path) -> Path:
    return path.with_name(path.name + ".marker")


async def prepare_sqlite(path: Path, source_url: str, settings: Settings) -> None:
    """A SQLite file holding the PostgreSQL data set's rows (same ids), made
    through crmgraph's migrations; reused while its marker file matches."""
    expected = f"{data_set().marker()} from {source_url}"
    marker = sqlite_marker_path(path)
    if path.exists():
        if marker.exists() and marker.read_text() == expected:
            print(f"reusing {path}")
            return
        if not marker.exists() or not marker.read_text().startswith(MARKER):
            raise SystemExit(f"{path} exists and was not made by this benchmark: not replacing it")
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{MARKER}: copying")
    sqlite_settings = settings.with_database(f"sqlite:///{path}")
    catalog = Catalog.from_plugin_manager(make_plugin_manager(sqlite_settings))
    await migrate(make_engine(sqlite_settings), catalog_apps(catalog))
    source = await analytics.connect(source_url)
    try:

        async def copy(state: AppState) -> None:
            async with state.db.transaction():
                for table in state.db.tables:
                    name = table._meta.tablename
                    rows = await rows_of(source, name)
                    if rows and name != "api_key":
                        await insert_rows(state.db, name, rows, returning=False)
                        print(f"  {name}: {len(rows)} rows")

        await with_state(sqlite_settings, copy)
    finally:
        await source.close()
    marker.write_text(expected)


async def rows_of(conn: asyncpg.Connection, table: str) -> list[dict[str, Any]]:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
    if not exists:
        return []
    return [dict(r) for r in await conn.fetch(f'SELECT * FROM "{table}" ORDER BY id')]
