"""Plain data that plugins receive from, or hand to, hooks (besides customer
type descriptors in :mod:`crmgraph.customer_types` and the customer snapshots,
facts and transition and merge contexts in :mod:`crmgraph.hook_contexts`)."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from crmgraph.customer_types import CustomerType
from crmgraph.hook_contexts import CustomerSnapshot, Facts


class CoreGraphQLTypes(Protocol):
    """What ``crmgraph_graphql`` receives: the core GraphQL types built so far
    (``crmgraph.schema.build.SchemaTypes`` is one), described here so that the
    hook specifications do not depend on the GraphQL schema layer."""

    customer_classes: dict[str, type]
    attribute_enums: dict[tuple[str, str], type[enum.Enum]]
    kind_enum: type[enum.Enum]
    channel_enum: type[enum.Enum]
    interaction_cls: type
    relationship_cls: type
    customer_interface: type

    def customer(self, row: dict[str, Any]) -> Any:
        """The concrete customer type's instance for a row (None for a kind no plugin declares)."""
        ...

    def interaction(self, row: dict[str, Any]) -> Any: ...

    def relationship(self, row: dict[str, Any]) -> Any: ...


class WriteRights(Protocol):
    """Which guarded fields a caller may not write (``crmgraph.access.Access``
    is one), described here so that the input checks need not import access."""

    def denied_writes(
        self, type_name: str, sent: Mapping[str, Any], *, creating: bool = False
    ) -> list[tuple[str, str, str]]: ...


@dataclass(frozen=True)
class GraphQLContribution:
    """What ``crmgraph_graphql`` returns: strawberry types whose fields are
    merged into the Query, Mutation and Subscription roots, and extra types
    to register (e.g. implementations of an interface)."""

    query: tuple[type, ...] | list[type] = ()
    mutation: tuple[type, ...] | list[type] = ()
    subscription: tuple[type, ...] | list[type] = ()
    types: tuple[type, ...] | list[type] = ()


@dataclass
class CustomerWrite:
    """A customer about to be written, as ``crmgraph_validate_customer`` sees it.

    ``values`` holds the core fields being set (name, email, phone, owner),
    ``attributes`` every attribute of the type as it will be after the write,
    decoded to its Python type (``Decimal``, ``date``, …; ``None`` when unset),
    ``existing`` the customer before an update (``None`` on create)."""

    kind: str
    descriptor: CustomerType
    values: dict[str, Any]
    attributes: dict[str, Any]
    existing: CustomerSnapshot | None
    facts: Facts | None

    @property
    def is_create(self) -> bool:
        return self.existing is None


@dataclass(frozen=True)
class Event:
    """One outbox event, as an event handler receives it."""

    id: int
    type: str
    customer_id: int | None
    payload: dict[str, Any]
    created_at: datetime.datetime


@dataclass(frozen=True)
class Metric:
    """An analytics metric: one SQL statement returning a column ``value``."""

    key: str
    description: str
    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Permission:
    """A right a role may hold. ``roles`` are granted it by default (``admin``
    holds every permission); ``fields`` are GraphQL coordinates
    (``"Contact.birthday"``) only holders may read or write."""

    key: str
    description: str
    roles: tuple[str, ...] = field(default_factory=tuple)
    fields: tuple[str, ...] = field(default_factory=tuple)
