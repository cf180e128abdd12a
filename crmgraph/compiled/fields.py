"""The compilable set: every field read straight from a column, per GraphQL
type, and how the database prints it (see :mod:`crmgraph.compiled.dialect`).

Relations (owner, team, contacts, needs, interactions, consents) and connections are
planned in :mod:`crmgraph.compiled.plan`; every other field (computed in
Python by a resolver or a plugin) is absent here, and a query selecting it is
answered by the resolver path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from crmgraph.compiled.dialect import Dialect
from crmgraph.customer_types import CustomerType
from crmgraph.db import queries
from crmgraph.registry import Catalog
from crmgraph.validation import camel

# (dialect, row alias) -> SQL expression giving the field's JSON value
Scalar = Callable[[Dialect, str], str]


def column(name: str) -> Scalar:
    return lambda d, a: f"{a}.{name}"


def timestamp(name: str) -> Scalar:
    return lambda d, a: d.timestamp(f"{a}.{name}")


def date(name: str) -> Scalar:
    return lambda d, a: d.date(f"{a}.{name}")


def global_id(type_name: str, name: str = "id") -> Scalar:
    return lambda d, a: d.global_id(type_name, f"{a}.{name}")


def nullable_id(type_name: str, name: str) -> Scalar:
    return lambda d, a: d.nullable_id(type_name, f"{a}.{name}")


def mapped(
    expression: Callable[[str], str], mapping: list[tuple[str, str]], default: str
) -> Scalar:
    """A stored value printed through a fixed table (kinds, labels)."""
    return lambda d, a: d.case(expression(a), mapping, default.format(a=a) if default else "NULL")


USER: dict[str, Scalar] = {
    "id": global_id("User"),
    "name": column("name"),
    "email": column("email"),
    "role": column("role"),
    "createdAt": timestamp("created_at"),
}

TEAM: dict[str, Scalar] = {"id": global_id("Team"), "name": column("name")}

CONTACT: dict[str, Scalar] = {
    "id": global_id("Contact"),
    "customerId": global_id("Customer", "customer"),
    "name": column("name"),
    "email": column("email"),
    "phone": column("phone"),
    "jobTitle": column("job_title"),
    "isPrimary": lambda d, a: d.flag(f"{a}.is_primary"),
    "notes": column("notes"),
    "birthday": date("birthday"),
    "homeAddress": column("home_address"),
    "createdAt": timestamp("created_at"),
    "updatedAt": timestamp("updated_at"),
}

NEED: dict[str, Scalar] = {
    "id": global_id("Need"),
    "customerId": global_id("Customer", "customer"),
    "title": column("title"),
    "description": column("description"),
    "category": column("category"),
    "consumptionType": column("consumption_type"),
    "volume": lambda d, a: d.floating(f"{a}.volume"),
    "unit": column("unit"),
    "priority": column("priority"),
    "status": column("status"),
    "dueDate": date("due_date"),
    "createdAt": timestamp("created_at"),
    "updatedAt": timestamp("updated_at"),
}


STAGE_CHANGE: dict[str, Scalar] = {
    "id": global_id("StageChange"),
    "customerId": global_id("Customer", "customer"),
    "kind": column("kind"),
    "fromStage": column("from_stage"),
    "toStage": column("to_stage"),
    "at": timestamp("at"),
    "byId": nullable_id("User", "by"),
    "reason": column("reason"),
}


def channel(channels: tuple[str, ...]) -> Scalar:
    """An ``InteractionChannel``: one whose plugin was removed reads as OTHER
    (SchemaTypes.interaction, Consent.from_row)."""

    def value(d: Dialect, a: str) -> str:
        return (
            f"CASE WHEN {a}.channel IN ({d.literals(channels)}) THEN {a}.channel ELSE 'OTHER' END"
        )

    return value


def interaction_fields(channels: tuple[str, ...]) -> dict[str, Scalar]:
    return {
        "id": global_id("Interaction"),
        "customerId": global_id("Customer", "customer"),
        "contactId": nullable_id("Contact", "contact"),
        "channel": channel(channels),
        "direction": column("direction"),
        "occurredAt": timestamp("occurred_at"),
        "subject": column("subject"),
        "notes": column("notes"),
        "outcome": column("outcome"),
        "satisfaction": column("satisfaction"),
        "amount": lambda d, a: d.money(f"{a}.amount"),
        "createdAt": timestamp("created_at"),
        # SchemaTypes.interaction reads an empty purpose as unstated
        "purpose": lambda d, a: f"NULLIF({a}.purpose, '')",
    }


def consent_fields(channels: tuple[str, ...]) -> dict[str, Scalar]:
    """``Consent`` (crmgraph.schema.consent_types) over a ``consent_change`` row;
    ``recordedBy`` is a relation (plan)."""
    return {
        "id": global_id("ConsentChange"),
        "customerId": global_id("Customer", "customer"),
        "contactId": nullable_id("Contact", "contact"),
        "channel": channel(channels),
        "purpose": column("purpose"),
        "granted": lambda d, a: d.flag(f"{a}.granted"),
        "source": column("source"),
        "evidence": column("evidence"),
        "at": timestamp("at"),
    }


def customer_fields(catalog: Catalog) -> dict[str, Scalar]:
    """The Customer interface's columns, over a row of ``queries.CUSTOMER_COLUMNS``."""
    kinds = [(d.key, d.key.upper()) for d in catalog.customer_types]
    labels = [
        (f"{d.key}:{stage.key}", stage.label)
        for d in catalog.customer_types
        for stage in d.lifecycle.stages
    ]
    return {
        "id": global_id("Customer"),
        "kind": mapped(lambda a: f"{a}.kind", kinds, ""),
        "name": column("name"),
        "email": column("email"),
        "phone": column("phone"),
        "stage": column("stage"),
        "stageLabel": mapped(lambda a: f"{a}.kind || ':' || {a}.stage", labels, "{a}.stage"),
        "phase": column("phase"),
        "stageEnteredAt": timestamp("stage_entered_at"),
        "version": column("version"),
        "createdAt": timestamp("created_at"),
        "updatedAt": timestamp("updated_at"),
        "deletedAt": timestamp("deleted_at"),
        "erasedAt": timestamp("erased_at"),
    }


def attribute_fields(descriptor: CustomerType) -> dict[str, Scalar]:
    """A concrete customer type's attributes, read from the ``attributes`` JSON."""
    found: dict[str, Scalar] = {}
    for attr in descriptor.attributes:
        name = attr.name
        if attr.type is Decimal:
            found[camel(name)] = lambda d, a, n=name: d.attribute_decimal(f"{a}.attributes", n)
        else:
            found[camel(name)] = lambda d, a, n=name: d.attribute(f"{a}.attributes", n)
    return found


# The customer row (queries.CUSTOMER_COLUMNS) as the resolver path reads it,
# sent along with an object whose selection has fields the executor resolves
# (crmgraph.compiled.hybrid), under a key no GraphQL response key can take.
ROW_KEY = "@row"
ROW_COLUMNS = queries.CUSTOMER_FIELDS
ROW_TIMESTAMPS = ("created_at", "updated_at", "deleted_at", "erased_at", "stage_entered_at")


def customer_row(d: Dialect, a: str) -> str:
    return d.json_object([(name, d.row_value(f"{a}.{name}", name)) for name in ROW_COLUMNS])


@dataclass(frozen=True)
class FieldTable:
    """The column-backed fields of every type, for one catalog."""

    customer: dict[str, Scalar]
    # concrete GraphQL type name -> (kind key, its attribute fields)
    concrete: dict[str, tuple[str, dict[str, Scalar]]]
    interaction: dict[str, Scalar]
    consent: dict[str, Scalar]

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> FieldTable:
        return cls(
            customer=customer_fields(catalog),
            concrete={d.graphql_name: (d.key, attribute_fields(d)) for d in catalog.customer_types},
            interaction=interaction_fields(catalog.channels),
            consent=consent_fields(catalog.channels),
        )
