"""The compilable set: every field read straight from a column, per GraphQL
type, and how the database prints it (see :mod:`crmgraph.compiled.dialect`).
The core types' fields are derived from their one description
(:mod:`crmgraph.core_fields`); ``Consent`` (a feature's) and the customer
types' attributes are listed here.

Relations (owner, team, contacts, needs, interactions, consents, roles) and
connections are planned in :mod:`crmgraph.compiled.plan`; every other field (computed in
Python by a resolver or a plugin) is absent here, and a query selecting it is
answered by the resolver path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from crmgraph import core_fields
from crmgraph.compiled.dialect import Dialect
from crmgraph.core_fields import Value
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


@dataclass(frozen=True)
class CatalogValues:
    """What of the catalog the SQL prints: the members of the enums built from
    it (stored value, GraphQL name) and each stage's label (by kind:stage)."""

    enums: Mapping[str, Sequence[tuple[str, str]]]
    labels: Sequence[tuple[str, str]]

    @classmethod
    def of(cls, catalog: Catalog) -> CatalogValues:
        return cls(
            enums={
                "CustomerKind": [(d.key, d.key.upper()) for d in catalog.customer_types],
                "InteractionChannel": [(c, c) for c in catalog.channels],
            },
            labels=[
                (f"{d.key}:{stage.key}", stage.label)
                for d in catalog.customer_types
                for stage in d.lifecycle.stages
            ],
        )


NO_CATALOG = CatalogValues(enums={}, labels=[])


def channel(channels: Sequence[str], fallback: str, name: str = "channel") -> Scalar:
    """An enum of plugin-declared values: one whose plugin was removed reads as
    ``fallback`` (as in the resolver path, crmgraph.schema.described)."""

    def value(d: Dialect, a: str) -> str:
        return (
            f"CASE WHEN {a}.{name} IN ({d.literals(channels)}) THEN {a}.{name} "
            f"ELSE {d.literal(fallback)} END"
        )

    return value


def enum_scalar(field: core_fields.Field, values: CatalogValues) -> Scalar:
    key = field.row_key
    members = values.enums.get(field.of or "")
    if members is None:  # a fixed enum: its names are the stored values
        # as the resolver path, an empty text reads as null
        return (lambda d, a: f"NULLIF({a}.{key}, '')") if field.nullable else column(key)
    if field.fallback is not None:
        return channel([stored for stored, _ in members], field.fallback, key)
    return mapped(lambda a: f"{a}.{key}", list(members), "")


def scalar(field: core_fields.Field, values: CatalogValues = NO_CATALOG) -> Scalar:
    """How the database prints one described field."""
    key = field.row_key
    kind = field.value
    if kind is Value.ID:
        assert field.of is not None
        return nullable_id(field.of, key) if field.nullable else global_id(field.of, key)
    if kind is Value.ENUM:
        return enum_scalar(field, values)
    if kind is Value.STAGE_LABEL:
        return mapped(lambda a: f"{a}.kind || ':' || {a}.stage", list(values.labels), "{a}.stage")
    if kind is Value.TIMESTAMP:
        return timestamp(key)
    if kind is Value.DATE:
        return date(key)
    if kind is Value.FLAG:
        return lambda d, a: d.flag(f"{a}.{key}")
    if kind is Value.FLOAT:
        return lambda d, a: d.floating(f"{a}.{key}")
    if kind is Value.MONEY:
        return lambda d, a: d.money(f"{a}.{key}")
    return column(key)


def scalars(
    fields: tuple[core_fields.Field, ...], values: CatalogValues = NO_CATALOG
) -> dict[str, Scalar]:
    """The described fields by GraphQL name."""
    return {f.graphql_name: scalar(f, values) for f in fields}


USER = scalars(core_fields.USER)
TEAM = scalars(core_fields.TEAM)
CONTACT = scalars(core_fields.CONTACT)
NEED = scalars(core_fields.NEED)
STAGE_CHANGE = scalars(core_fields.STAGE_CHANGE)


def consent_fields(channels: tuple[str, ...]) -> dict[str, Scalar]:
    """``Consent`` (crmgraph.schema.consent_types) over a ``consent_change`` row;
    ``recordedBy`` is a relation (plan)."""
    return {
        "id": global_id("ConsentChange"),
        "customerId": global_id("Customer", "customer"),
        "contactId": nullable_id("Contact", "contact"),
        "channel": channel(channels, "OTHER"),
        "purpose": column("purpose"),
        "granted": lambda d, a: d.flag(f"{a}.granted"),
        "source": column("source"),
        "evidence": column("evidence"),
        "at": timestamp("at"),
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
ROW_TIMESTAMPS = tuple(f.row_key for f in core_fields.CUSTOMER if f.value is Value.TIMESTAMP)


def customer_row(d: Dialect, a: str) -> str:
    return d.json_object([(name, d.row_value(f"{a}.{name}", name)) for name in ROW_COLUMNS])


# The CustomerRole fields a role row (Render.roles) shares with the Customer
# interface, read from columns of the same names
ROLE_SHARED = ("kind", "stage", "stageLabel", "phase", "stageEnteredAt")


def role_fields(customer: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """``CustomerRole``'s fields over a role row: the Customer interface's
    own for its kind and stage, ``role_rank`` 0 for the primary kind, and
    ``added_at`` (null for the primary kind)."""
    return {
        **{name: customer[name] for name in ROLE_SHARED},
        "primary": lambda d, a: d.boolean(f"{a}.role_rank = 0"),
        "addedAt": timestamp("added_at"),
    }


@dataclass(frozen=True)
class FieldTable:
    """The column-backed fields of every type, for one catalog."""

    customer: dict[str, Scalar]
    # concrete GraphQL type name -> (kind key, its attribute fields)
    concrete: dict[str, tuple[str, dict[str, Scalar]]]
    interaction: dict[str, Scalar]
    consent: dict[str, Scalar]
    # the CustomerRole interface's fields, and as ``concrete`` for the role types
    role: dict[str, Scalar]
    roles: dict[str, tuple[str, dict[str, Scalar]]]

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> FieldTable:
        values = CatalogValues.of(catalog)
        customer = scalars(core_fields.CUSTOMER, values)
        types = catalog.customer_types
        return cls(
            customer=customer,
            concrete={d.graphql_name: (d.key, attribute_fields(d)) for d in types},
            interaction=scalars(core_fields.INTERACTION, values),
            consent=consent_fields(catalog.channels),
            role=role_fields(customer),
            roles={d.role_graphql_name: (d.key, attribute_fields(d)) for d in types},
        )
