"""The one description of every column-backed field of the core GraphQL types.

Customer, Contact, Interaction, Need, StageChange, User and Team each have
their fields read straight from a row described here once: the GraphQL name,
the row key it reads, the kind of value, whether it may be null and the text
the API documents. Everything else is derived from it: the strawberry fields
and row → object conversions (crmgraph.schema), the compiled SQL
(crmgraph.compiled.fields), the customer row the readers select
(crmgraph.db.queries) and the names a plugin attribute may not take
(crmgraph.registry). tests/test_one_description.py holds every path to it.

It is on the ground floor: it imports no GraphQL library and no other layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from crmgraph.validation import camel


class Value(Enum):
    """How a column's value is stored and shown."""

    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    FLAG = "flag"  # a boolean (SQLite stores 0/1)
    MONEY = "money"  # a decimal amount shown with two places
    TIMESTAMP = "timestamp"
    DATE = "date"
    ID = "id"  # the global ID of the type ``of``, from the row's key
    ENUM = "enum"  # a value of the GraphQL enum ``of``; empty text reads as null
    # the label of the stage (the row's kind and stage) in its type's
    # lifecycle; the stage key itself for a stage no loaded plugin declares
    STAGE_LABEL = "stage_label"


@dataclass(frozen=True)
class Field:
    name: str  # snake_case, as in Python; GraphQL spells it in camelCase
    value: Value
    column: str | None = None  # the row key it reads; None: its name
    of: str | None = None  # Value.ID: the type named; Value.ENUM: the enum's name
    nullable: bool = False
    description: str | None = None
    # a stored value the enum does not declare (its plugin was removed) reads as this
    fallback: str | None = None
    # the column is the core's, but the field is listed with this feature's
    # fields (and goes when the feature does)
    feature: str | None = None

    @property
    def row_key(self) -> str:
        return self.column or self.name

    @property
    def graphql_name(self) -> str:
        return camel(self.name)


def key(type_name: str) -> Field:
    return Field(
        "id",
        Value.ID,
        of=type_name,
        description=f"Global ID of this {type_name} (opaque: pass it back as is, e.g. to `node`).",
    )


def customer_key(name: str = "customer_id", column: str = "customer") -> Field:
    return Field(
        name,
        Value.ID,
        column=column,
        of="Customer",
        description="Global ID of the customer it belongs to.",
    )


def text(name: str, description: str | None = None) -> Field:
    return Field(name, Value.TEXT, description=description)


def optional(name: str, value: Value = Value.TEXT, description: str | None = None) -> Field:
    return Field(name, value, nullable=True, description=description)


def moment(name: str, description: str | None = None) -> Field:
    return Field(name, Value.TIMESTAMP, description=description or MOMENTS.get(name))


MOMENTS = {
    "created_at": "When it was created (UTC).",
    "updated_at": "When it last changed (UTC); its creation time if it never did.",
}


PHONE = "E.164, e.g. +34912345678."
PROFILE = "Personal profile: needs the contact.read_profile permission."

CUSTOMER: tuple[Field, ...] = (
    key("Customer"),
    Field(
        "kind",
        Value.ENUM,
        of="CustomerKind",
        description="Its customer type; the GraphQL type of the same name holds its attributes.",
    ),
    text("name", "The name of the party: a person's full name or an organisation's."),
    optional("email", description="Main e-mail address; null: none known."),
    optional("phone", description=PHONE),
    text("stage", "Current lifecycle stage key of its type."),
    Field(
        "stage_label",
        Value.STAGE_LABEL,
        description="The current stage's human-readable label (the key itself for a stage "
        "no loaded plugin declares).",
    ),
    Field(
        "phase",
        Value.ENUM,
        of="Phase",
        description="The lifecycle phase of the current stage.",
    ),
    moment("stage_entered_at", "When it entered its current stage (UTC)."),
    Field(
        "version",
        Value.INT,
        description="Increases on every change; send it back as `expectedVersion`.",
    ),
    moment("created_at"),
    moment("updated_at"),
    optional(
        "deleted_at",
        Value.TIMESTAMP,
        "Set when soft-deleted; `restoreCustomer` clears it.",
    ),
    Field(
        "erased_at",
        Value.TIMESTAMP,
        nullable=True,
        description="Set when its personal data was erased (erasePersonalData): the "
        "record stays, anonymous, for its facts; nothing more can be written to it.",
        feature="privacy",
    ),
)

# The Customer interface's other fields (relations and computed ones, each
# with its resolver): with CUSTOMER, every name a plugin attribute may not take.
CUSTOMER_RELATIONS: tuple[str, ...] = (
    "owner",
    "team",
    "contacts",
    "interactions",
    "needs",
    "relationships",
    "allowed_transitions",
    "stage_history",
    "field_history",  # its values over time, from the audit trail (crmgraph.schema.history)
)
# The built-in features' Customer fields, reserved whether or not the feature is on.
CUSTOMER_FEATURE_FIELDS: tuple[str, ...] = (
    "notes",
    "tasks",
    "timeline",
    "merges",
    "consents",
    "consent_history",
    "knowledge",
    "roles",
)
# Names of the customer row's storage a plugin attribute may not take either.
CUSTOMER_STORAGE_NAMES: tuple[str, ...] = ("owner_id", "attributes")

CONTACT: tuple[Field, ...] = (
    key("Contact"),
    customer_key(),
    text("name", "The contact person's full name."),
    optional("email", description="The contact's e-mail address; null: none known."),
    optional("phone", description=PHONE),
    optional("job_title", description="The contact's function at the customer."),
    Field(
        "is_primary",
        Value.FLAG,
        description="The customer's main contact (at most one per customer).",
    ),
    optional("notes", description="Free text about the contact."),
    optional("birthday", Value.DATE, PROFILE),
    optional("home_address", description=PROFILE),
    moment("created_at"),
    moment("updated_at"),
)

INTERACTION: tuple[Field, ...] = (
    key("Interaction"),
    customer_key(),
    Field(
        "contact_id",
        Value.ID,
        column="contact",
        of="Contact",
        nullable=True,
        description="Global ID of the contact person involved; null: none named.",
    ),
    Field(
        "channel",
        Value.ENUM,
        of="InteractionChannel",
        fallback="OTHER",
        description="Where it happened (OTHER for a channel whose plugin was removed).",
    ),
    Field(
        "direction",
        Value.ENUM,
        of="InteractionDirection",
        description="Who started it: the customer (INBOUND) or us (OUTBOUND).",
    ),
    moment("occurred_at", "When it happened (UTC), which may be before it was logged."),
    text("subject", "A one-line summary."),
    optional("notes", description="Free text: what was said or done."),
    optional("outcome", description="What came of it: the moment of truth."),
    optional("satisfaction", Value.INT, "Customer rating, 1 (bad) to 5."),
    optional("amount", Value.MONEY, "Purchase amount, when it is one."),
    moment("created_at", "When it was logged (UTC)."),
    Field(
        "purpose",
        Value.ENUM,
        of="Purpose",
        nullable=True,
        description="MARKETING or SERVICE; null: not stated (not marketing).",
    ),
)

NEED: tuple[Field, ...] = (
    key("Need"),
    customer_key(),
    text("title", "What the customer needs, in one line."),
    optional("description", description="Details of the need."),
    optional("category", description="Free-form category, e.g. 'office supplies'."),
    optional(
        "consumption_type",
        description="How it is consumed, e.g. 'recurring' or 'one-off' (free text).",
    ),
    optional("volume", Value.FLOAT, "How much is needed, in `unit`; null: not estimated."),
    optional("unit", description="The unit of `volume`, e.g. 'boxes/month'."),
    Field("priority", Value.ENUM, of="NeedPriority", description="How urgent it is."),
    Field("status", Value.ENUM, of="NeedStatus", description="Where it stands."),
    optional("due_date", Value.DATE, "The date it must be met by; null: no deadline."),
    moment("created_at"),
    moment("updated_at"),
)

STAGE_CHANGE: tuple[Field, ...] = (
    key("StageChange"),
    customer_key(),
    text("kind", "The customer's type key when it moved (e.g. `client`)."),
    optional(
        "from_stage",
        description="The stage key it left; null: its first stage (creation).",
    ),
    text("to_stage", "The stage key it entered."),
    moment("at", "When it moved (UTC)."),
    Field(
        "by_id",
        Value.ID,
        column="by",
        of="User",
        nullable=True,
        description="Global ID of the user who moved it; null: the system or an import.",
    ),
    optional("reason", description="Why, as the user gave it."),
)

USER: tuple[Field, ...] = (
    key("User"),
    text("name", "The user's display name."),
    text("email", "The user's e-mail address (their login)."),
    text("role", "admin, manager, agent or viewer (see the security docs)."),
    moment("created_at"),
)

TEAM: tuple[Field, ...] = (key("Team"), text("name", "The team's unique name."))

# GraphQL type name -> its column-backed fields, in the order the API lists them
CORE_TYPES: dict[str, tuple[Field, ...]] = {
    "Customer": CUSTOMER,
    "Contact": CONTACT,
    "Interaction": INTERACTION,
    "Need": NEED,
    "StageChange": STAGE_CHANGE,
    "User": USER,
    "Team": TEAM,
}


def row_columns(fields: tuple[Field, ...]) -> tuple[str, ...]:
    """The row keys the fields read, each once, in field order (a stage label
    reads the kind and the stage, which are fields of their own)."""
    found = [f.row_key for f in fields if f.value is not Value.STAGE_LABEL]
    return tuple(dict.fromkeys(found))


def reserved_customer_names() -> frozenset[str]:
    """Every name of the Customer interface and of its row's storage."""
    return frozenset(
        (
            *(f.name for f in CUSTOMER),
            *CUSTOMER_RELATIONS,
            *CUSTOMER_FEATURE_FIELDS,
            *CUSTOMER_STORAGE_NAMES,
        )
    )
