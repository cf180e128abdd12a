"""Personal data rights (crmgraph.privacy): ``customer.erased_at`` marks an
erased customer, ``interaction.purpose`` says whether an interaction was
marketing, ``consent_change`` keeps every grant and withdrawal of consent, and
``customer_erasure`` records each erasure (who, when, why; never the values).

Raw DDL, like crmgraph_0015: the same statements on SQLite and PostgreSQL but
the auto-increment primary key. Existing interactions keep a NULL purpose
(not stated, so not marketing): nothing to backfill."""

from crmgraph.db.migrate import raw_migration

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


def create_statements(engine_type: str) -> list[str]:
    pk = PRIMARY_KEYS[engine_type]
    return [*(table.format(pk=pk) for table in TABLES), *STATEMENTS]


forwards = raw_migration(
    ID,
    DESCRIPTION,
    create_statements,
    [
        "DROP TABLE IF EXISTS customer_erasure",
        "DROP TABLE IF EXISTS consent_change",
        "ALTER TABLE interaction DROP COLUMN purpose",
        "ALTER TABLE customer DROP COLUMN erased_at",
    ],
)
