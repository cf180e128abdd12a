"""Composite indexes piccolo's column options cannot express: keyset pagination
(sort key + id), per-customer lookups newest first, one role per (customer, kind).

Piccolo runs a migration's raw steps before its table steps, so these live in a
migration of their own, after the tables exist."""

from crmgraph.db.migrate import raw_migration

ID = "2026-11-23T08:11:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite indexes"

COMPOSITE_INDEXES = (
    "CREATE UNIQUE INDEX ux_customer_role_customer_kind ON customer_role (customer, kind)",
    "CREATE INDEX ix_customer_created_at_id ON customer (created_at, id)",
    "CREATE INDEX ix_customer_updated_at_id ON customer (updated_at, id)",
    "CREATE INDEX ix_customer_name_id ON customer (name, id)",
    "CREATE INDEX ix_interaction_customer_occurred ON interaction (customer, occurred_at, id)",
    "CREATE INDEX ix_interaction_channel_occurred ON interaction (channel, occurred_at)",
    "CREATE INDEX ix_need_customer_status ON need (customer, status)",
    "CREATE INDEX ix_stage_change_customer_at ON stage_change (customer, at, id)",
    "CREATE INDEX ix_relationship_to_customer ON relationship (to_customer, kind)",
)


DROPS = tuple(
    f"DROP INDEX {statement.split(' INDEX ', 1)[1].split(' ON ', 1)[0]}"
    for statement in COMPOSITE_INDEXES
)

forwards = raw_migration(ID, DESCRIPTION, COMPOSITE_INDEXES, DROPS)
