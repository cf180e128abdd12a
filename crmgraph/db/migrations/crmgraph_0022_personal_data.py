"""Personal data rights (crmgraph.privacy): ``customer.erased_at`` marks an
erased customer, ``interaction.purpose`` says whether an interaction was
marketing, ``consent_change`` keeps every grant and withdrawal of consent, and
``customer_erasure`` records each erasure (who, when, why; never the values).

Raw DDL, like crmgraph_0015: the same statements on SQLite and PostgreSQL but
the auto-increment primary key. Existing interactions keep a NULL purpose
(not stated, so not marketing): nothing to backfill."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "personal data: consent, erasure, interaction purpose"

# {pk}: the engine's auto-increment primary key
TABLES = (
    """CREATE TABLE consent_change (
    id {pk},
    customer INTEGER NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    contact INTEGER NULL REFERENCES contact (id) ON DELETE CASCADE,
    channel VARCHAR(32) NOT NULL,
    purpose VARCHAR(16) NOT NULL,
    granted BOOLEAN NOT NULL,
    source VARCHAR(32) NOT NULL,
    evidence TEXT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    recorded_by INTEGER NULL REFERENCES crm_user (id) ON DELETE SET NULL
)""",
    """CREATE TABLE customer_erasure (
    id {pk},
    customer INTEGER NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    erased_by INTEGER NULL REFERENCES crm_user (id) ON DELETE SET NULL,
    erased_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    reason TEXT NOT NULL,
    customers TEXT NOT NULL DEFAULT '[]',
    counts TEXT NOT NULL DEFAULT '{{}}'
)""",
)

STATEMENTS = (
    "ALTER TABLE customer ADD COLUMN erased_at TIMESTAMPTZ NULL",
    "ALTER TABLE interaction ADD COLUMN purpose VARCHAR(16) NULL",
    # the consent in force: the newest row per customer, channel and purpose
    "CREATE INDEX ix_consent_change_customer ON consent_change (customer, channel, purpose, id)",
    "CREATE INDEX ix_consent_change_contact ON consent_change (contact)",
    "CREATE INDEX ix_customer_erasure_customer ON customer_erasure (customer)",
)

PRIMARY_KEYS = {"sqlite": "INTEGER PRIMARY KEY NOT NULL", "postgres": "SERIAL PRIMARY KEY"}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        for table in TABLES:
            await engine.run_ddl(table.format(pk=PRIMARY_KEYS[engine.engine_type]))
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    async def drop() -> None:
        engine = engine_finder()
        await engine.run_ddl("DROP TABLE IF EXISTS customer_erasure")
        await engine.run_ddl("DROP TABLE IF EXISTS consent_change")
        await engine.run_ddl("ALTER TABLE interaction DROP COLUMN purpose")
        await engine.run_ddl("ALTER TABLE customer DROP COLUMN erased_at")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
