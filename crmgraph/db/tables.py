"""Core piccolo tables.

Lifecycle state lives in ``customer_role`` keyed by (customer, kind), not on the
customer row, so that one party can later hold several roles each with its own
lifecycle without rewriting history. ``customer.kind`` names the primary role.
"""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    Real,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class User(Table, tablename="crm_user"):
    name = Varchar(length=200)
    email = Varchar(length=320, unique=True)
    role = Varchar(length=32, default="agent")
    created_at = Timestamptz(default=TimestamptzNow())


class ApiKey(Table, tablename="api_key"):
    """A bearer key bound to a user. Only a hash of its secret is stored; the
    public prefix finds the row without scanning."""

    holder = ForeignKey(references=User, index=True)  # "user" is reserved in PostgreSQL
    name = Varchar(length=100)
    prefix = Varchar(length=24, unique=True)
    secret_hash = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)


class Team(Table, tablename="team"):
    """A group of users who share customers: an agent sees the customers they
    own and those assigned to one of their teams."""

    name = Varchar(length=100, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())


class TeamMember(Table, tablename="team_member"):
    team = ForeignKey(references=Team, index=True)
    member = ForeignKey(references=User, index=True)


class Customer(Table, tablename="customer"):
    # no index of its own on name, e-mail, created_at, updated_at: migration
    # 0054 says which indexes serve the queries on them
    kind = Varchar(length=64, index=True)
    name = Varchar(length=200)
    email = Varchar(length=320, null=True, default=None)
    phone = Varchar(length=32, null=True, default=None)
    owner = ForeignKey(references=User, null=True, default=None, index=True)
    team = ForeignKey(references=Team, null=True, default=None, index=True)
    attributes = JSON(default="{}")
    version = Integer(default=1)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)
    # the customer that absorbed this one (crmgraph.dedupe.merge); it is then
    # also soft-deleted, and its global ID resolves to the end of the chain
    merged_into = Integer(null=True, default=None)
    # set when its personal data was erased (crmgraph.privacy.erasure): the
    # record stays, anonymous, so its facts still count; writes are refused
    erased_at = Timestamptz(null=True, default=None)
    # folded copies for name order and search, the same on both engines
    # (crmgraph.db.text_keys, migration 0030; PostgreSQL compares name_sort
    # with COLLATE "C"), written with every name and e-mail
    name_sort = Text(default="")
    name_folded = Text(default="")
    email_folded = Text(null=True, default=None)


class CustomerMatchKey(Table, tablename="customer_match_key"):
    """Blocking keys for duplicate matching (crmgraph.dedupe.matching): a live
    customer's normal e-mail, phone, tax id and name keys, indexed on
    (key_type, key_value, customer) so candidates are found without comparing
    every pair. Rewritten in the transaction of every write that changes them.
    On PostgreSQL no foreign key checks ``customer`` (migration 0061): triggers
    on ``customer`` delete a deleted customer's keys."""

    customer = ForeignKey(references=Customer, index=True)
    key_type = Varchar(length=16)
    key_value = Varchar(length=400)


class CustomerRole(Table, tablename="customer_role"):
    # customer and phase lead wider indexes (migration 0054)
    customer = ForeignKey(references=Customer)
    kind = Varchar(length=64)
    stage = Varchar(length=64, index=True)
    phase = Varchar(length=16)
    entered_at = Timestamptz(default=TimestamptzNow())
    # a further role (crmgraph.operations.roles, migration 0034): its kind's
    # typed attributes, and when it was added and ended; a row of another kind
    # with neither is what a conversion left behind, not a role
    attributes = JSON(default="{}")
    added_at = Timestamptz(null=True, default=None)
    ended_at = Timestamptz(null=True, default=None)


class Contact(Table, tablename="contact"):
    customer = ForeignKey(references=Customer, index=True)
    name = Varchar(length=200)
    email = Varchar(length=320, null=True, default=None)
    phone = Varchar(length=32, null=True, default=None)
    job_title = Varchar(length=200, null=True, default=None)
    is_primary = Boolean(default=False)
    notes = Text(null=True, default=None)
    # the personal profile: readable only with the contact.read_profile permission
    birthday = Date(null=True, default=None)
    home_address = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # folded copies for contactSearch (crmgraph.db.text_keys, migration 0030)
    name_folded = Text(default="")
    email_folded = Text(null=True, default=None)


class Interaction(Table, tablename="interaction"):
    # no index of its own: (customer, occurred_at, id) serves it (migration 0059)
    customer = ForeignKey(references=Customer)
    contact = ForeignKey(references=Contact, null=True, default=None)
    channel = Varchar(length=32)
    direction = Varchar(length=16)
    occurred_at = Timestamptz(default=TimestamptzNow())
    subject = Varchar(length=300)
    notes = Text(null=True, default=None)
    outcome = Varchar(length=64, null=True, default=None)
    satisfaction = Integer(null=True, default=None)
    amount = Numeric(digits=(14, 2), null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    # MARKETING or SERVICE (crmgraph.privacy.consent); NULL: not stated, not marketing
    purpose = Varchar(length=16, null=True, default=None)


class Need(Table, tablename="need"):
    customer = ForeignKey(references=Customer, index=True)
    title = Varchar(length=200)
    description = Text(null=True, default=None)
    category = Varchar(length=64, null=True, default=None)
    consumption_type = Varchar(length=64, null=True, default=None)
    volume = Real(null=True, default=None)
    unit = Varchar(length=32, null=True, default=None)
    priority = Varchar(length=16, default="MEDIUM")
    status = Varchar(length=16, default="OPEN", index=True)
    due_date = Date(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Relationship(Table, tablename="relationship"):
    from_customer = ForeignKey(references=Customer, index=True)
    to_customer = ForeignKey(references=Customer, index=True)
    kind = Varchar(length=64)
    attributes = JSON(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())


class StageChange(Table, tablename="stage_change"):
    customer = ForeignKey(references=Customer)  # leads ix_stage_change_customer_at
    kind = Varchar(length=64)
    from_stage = Varchar(length=64, null=True, default=None)
    to_stage = Varchar(length=64)
    at = Timestamptz(default=TimestamptzNow())
    by = ForeignKey(references=User, null=True, default=None)
    reason = Text(null=True, default=None)
    # the end of the stay this change began: set by the next change of the
    # same type (crmgraph.db.stays), NULL while the customer is in the stage
    left_at = Timestamptz(null=True, default=None)
    next_stage = Varchar(length=64, null=True, default=None)


class Event(Table, tablename="event"):
    """Transactional outbox: written in the same transaction as the change it
    describes; a dispatcher delivers it afterwards, at least once."""

    type = Varchar(length=100)  # no statement asks for a type (migration 0054)
    customer = ForeignKey(references=Customer, null=True, default=None, index=True)
    payload = JSON(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())
    delivered_at = Timestamptz(null=True, default=None)
    attempts = Integer(default=0)
    last_error = Text(null=True, default=None)
    # when a failed event is due again (crmgraph.events.Backoff); NULL: now
    next_attempt_at = Timestamptz(null=True, default=None)
    # claimed by one server process for live subscribers (crmgraph.live)
    published_at = Timestamptz(null=True, default=None)
    # claimed by one server process to fan it out to webhooks (crmgraph.webhooks)
    webhooks_claimed_at = Timestamptz(null=True, default=None)


class AuditEntry(Table, tablename="audit_entry"):
    """Who changed what, when: one row per write, with each field's old and new
    value, written in the write's own transaction. Never updated or deleted
    through the API."""

    at = Timestamptz(default=TimestamptzNow(), index=True)
    by = ForeignKey(references=User, null=True, default=None)
    action = Varchar(length=64)
    entity_type = Varchar(length=32)
    entity_id = Integer()
    customer = ForeignKey(references=Customer, null=True, default=None, index=True)
    changes = JSON(default="{}")


class IdempotencyRecord(Table, tablename="idempotency_record"):
    """The first response to a request sent with an ``Idempotency-Key``, so a
    retry gets the same answer and writes nothing new."""

    key = Varchar(length=300, unique=True)
    request_hash = Varchar(length=64)
    status = Varchar(length=16, default="pending")
    response = Text(null=True, default=None)
    status_code = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


class Note(Table, tablename="note"):
    """A free-text note on a customer. Mentions of users in its body are kept
    in ``note_mention`` so other systems can notify them. Deletion is soft so
    the audit trail's entity still exists."""

    customer = ForeignKey(references=Customer, index=True)
    author = ForeignKey(references=User, null=True, default=None)
    body = Text()
    version = Integer(default=1)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)


class NoteMention(Table, tablename="note_mention"):
    note = ForeignKey(references=Note, index=True)
    mentioned = ForeignKey(references=User, index=True)


class Task(Table, tablename="task"):
    """Work to do for a customer, optionally for one of its needs."""

    customer = ForeignKey(references=Customer, index=True)
    need = ForeignKey(references=Need, null=True, default=None, index=True)
    title = Varchar(length=200)
    description = Text(null=True, default=None)
    due_at = Timestamptz(null=True, default=None)
    assignee = ForeignKey(references=User, null=True, default=None, index=True)
    created_by = ForeignKey(references=User, null=True, default=None)
    status = Varchar(length=16, default="OPEN", index=True)
    completed_at = Timestamptz(null=True, default=None)
    version = Integer(default=1)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Webhook(Table, tablename="webhook"):
    """An HTTP endpoint that receives outbox events (crmgraph.webhooks). The
    secret signs each request, so it is kept as given, not hashed."""

    url = Varchar(length=2000)
    description = Varchar(length=200, null=True, default=None)
    event_types = Text(default="[]")  # a JSON list: types, "prefix.*" or "*"
    secret = Varchar(length=200)
    active = Boolean(default=True)
    consecutive_failures = Integer(default=0)
    disabled_at = Timestamptz(null=True, default=None)
    disabled_reason = Text(null=True, default=None)
    created_by = ForeignKey(references=User, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class WebhookDelivery(Table, tablename="webhook_delivery"):
    """One event for one webhook, retried until it succeeds or fails for good;
    ``round_start`` is the attempt count when it was last replayed."""

    webhook = ForeignKey(references=Webhook, index=True)
    event = ForeignKey(references=Event, index=True)
    event_type = Varchar(length=100)
    customer = Integer(null=True, default=None)  # copied from the event: the order key
    status = Varchar(length=16, default="pending")
    attempts = Integer(default=0)
    round_start = Integer(default=0)
    next_attempt_at = Timestamptz(null=True, default=None)
    locked_until = Timestamptz(null=True, default=None)
    claim = Varchar(length=32, null=True, default=None)
    last_status_code = Integer(null=True, default=None)
    last_error = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    delivered_at = Timestamptz(null=True, default=None)


class WebhookAttempt(Table, tablename="webhook_attempt"):
    """The delivery log: one row per HTTP request made."""

    delivery = ForeignKey(references=WebhookDelivery, index=True)
    attempt = Integer()
    started_at = Timestamptz(default=TimestamptzNow())
    duration_ms = Integer(default=0)
    status_code = Integer(null=True, default=None)
    error = Text(null=True, default=None)
    response_body = Text(null=True, default=None)
    next_retry_at = Timestamptz(null=True, default=None)


class CustomerMerge(Table, tablename="customer_merge"):
    """One merge of ``merged`` into ``survivor`` (crmgraph.dedupe.merge), with
    what its undo needs: both customers' before-images, the ids of the rows
    moved per table, the plugins' saved state (all JSON text), and the
    survivor's version right after the merge."""

    survivor = ForeignKey(references=Customer, index=True)
    merged = ForeignKey(references=Customer, index=True)
    merged_by = ForeignKey(references=User, null=True, default=None)
    merged_at = Timestamptz(default=TimestamptzNow())
    reason = Text(null=True, default=None)
    field_choices = Text(default="{}")
    survivor_before = Text(default="{}")
    merged_before = Text(default="{}")
    moved = Text(default="{}")
    moved_counts = Text(default="{}")
    plugin_state = Text(default="{}")
    survivor_version = Integer()
    audit_mark = Integer(default=0)  # the id of the last audit entry the merge wrote
    undone_at = Timestamptz(null=True, default=None)
    undone_by = ForeignKey(references=User, null=True, default=None)


class ConsentChange(Table, tablename="consent_change"):
    """One grant or withdrawal of consent to be contacted on a channel for a
    purpose (crmgraph.privacy.consent), by a customer or one of its contacts.
    Never updated: the latest row per (customer, contact, channel, purpose) is
    the consent in force, the rest its history."""

    customer = ForeignKey(references=Customer, index=True)
    contact = ForeignKey(references=Contact, null=True, default=None)
    channel = Varchar(length=32)
    purpose = Varchar(length=16)
    granted = Boolean()
    source = Varchar(length=32)
    evidence = Text(null=True, default=None)
    at = Timestamptz(default=TimestamptzNow())
    recorded_by = ForeignKey(references=User, null=True, default=None)


class CustomerErasure(Table, tablename="customer_erasure"):
    """That a customer's personal data was erased (crmgraph.privacy.erasure):
    who, when, why, and how many rows each table had anonymised; never the
    values. ``customers`` lists every record erased with it (JSON text: the
    customer and those merged into it)."""

    customer = ForeignKey(references=Customer, index=True)
    erased_by = ForeignKey(references=User, null=True, default=None)
    erased_at = Timestamptz(default=TimestamptzNow())
    reason = Text()
    customers = Text(default="[]")
    counts = Text(default="{}")


CORE_TABLES: tuple[type[Table], ...] = (
    User,
    ApiKey,
    Team,
    TeamMember,
    Customer,
    CustomerMatchKey,
    CustomerRole,
    Contact,
    Interaction,
    Need,
    Relationship,
    StageChange,
    Event,
    AuditEntry,
    IdempotencyRecord,
    Note,
    NoteMention,
    Task,
    Webhook,
    WebhookDelivery,
    WebhookAttempt,
    CustomerMerge,
    ConsentChange,
    CustomerErasure,
)
