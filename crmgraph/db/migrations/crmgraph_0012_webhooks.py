"""Webhooks (crmgraph.webhooks): subscriptions, one delivery per (webhook,
event) and one log row per HTTP attempt; ``event.webhooks_claimed_at`` marks
the events a server process has fanned out to the webhooks, so with several
processes each event is fanned out once.

Raw DDL, like crmgraph_0009 and 0010: piccolo runs a migration's raw steps
before its table operations, and the partial indexes (the same statement on
SQLite and PostgreSQL) need the tables first. Events written before this
migration are marked claimed: no webhook existed to receive them."""

from crmgraph.db.migrate import raw_migration

ID = "2026-11-23T19:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "webhooks"

# {pk}: the engine's auto-increment primary key
TABLES = (
    """CREATE TABLE webhook (
        id {pk},
        url VARCHAR(2000) NOT NULL,
        description VARCHAR(200) NULL,
        event_types TEXT NOT NULL DEFAULT '[]',
        secret VARCHAR(200) NOT NULL,
        active BOOLEAN NOT NULL DEFAULT TRUE,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        disabled_at TIMESTAMPTZ NULL,
        disabled_reason TEXT NULL,
        created_by INTEGER NULL REFERENCES crm_user (id) ON DELETE SET NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
    """CREATE TABLE webhook_delivery (
        id {pk},
        webhook INTEGER NOT NULL REFERENCES webhook (id) ON DELETE CASCADE,
        event INTEGER NOT NULL REFERENCES event (id) ON DELETE CASCADE,
        event_type VARCHAR(100) NOT NULL,
        customer INTEGER NULL,
        status VARCHAR(16) NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        round_start INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMPTZ NULL,
        locked_until TIMESTAMPTZ NULL,
        claim VARCHAR(32) NULL,
        last_status_code INTEGER NULL,
        last_error TEXT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
        delivered_at TIMESTAMPTZ NULL,
        UNIQUE (webhook, event)
    )""",
    """CREATE TABLE webhook_attempt (
        id {pk},
        delivery INTEGER NOT NULL REFERENCES webhook_delivery (id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        duration_ms INTEGER NOT NULL,
        status_code INTEGER NULL,
        error TEXT NULL,
        response_body TEXT NULL,
        next_retry_at TIMESTAMPTZ NULL
    )""",
)

STATEMENTS = (
    "ALTER TABLE event ADD COLUMN webhooks_claimed_at TIMESTAMPTZ NULL",
    "UPDATE event SET webhooks_claimed_at = created_at",
    # the fan-out reads the unclaimed events in id order: a small partial index
    "CREATE INDEX ix_event_webhooks_unclaimed ON event (id) WHERE webhooks_claimed_at IS NULL",
    # a webhook's deliveries, newest first (the delivery log)
    "CREATE INDEX ix_webhook_delivery_webhook ON webhook_delivery (webhook, id)",
    # the deliverer's picks: what is due, and what an earlier delivery to the
    # same webhook for the same customer still holds back
    "CREATE INDEX ix_webhook_delivery_due ON webhook_delivery (next_attempt_at) "
    "WHERE status = 'pending'",
    "CREATE INDEX ix_webhook_delivery_order ON webhook_delivery (webhook, customer, event) "
    "WHERE status = 'pending'",
    "CREATE INDEX ix_webhook_attempt_delivery ON webhook_attempt (delivery, attempt)",
)

PRIMARY_KEYS = {"sqlite": "INTEGER PRIMARY KEY NOT NULL", "postgres": "SERIAL PRIMARY KEY"}


def create_statements(engine_type: str) -> list[str]:
    pk = PRIMARY_KEYS[engine_type]
    return [*(statement.format(pk=pk) for statement in TABLES), *STATEMENTS]


forwards = raw_migration(
    ID,
    DESCRIPTION,
    create_statements,
    [
        "DROP TABLE IF EXISTS webhook_attempt",
        "DROP TABLE IF EXISTS webhook_delivery",
        "DROP TABLE IF EXISTS webhook",
        "DROP INDEX IF EXISTS ix_event_webhooks_unclaimed",
        "ALTER TABLE event DROP COLUMN webhooks_claimed_at",
    ],
)
