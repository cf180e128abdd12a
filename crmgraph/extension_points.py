"""Plain data that plugins receive from, or hand to, hooks (besides customer
type descriptors in :mod:`crmgraph.customer_types` and the customer snapshots,
facts and transition and merge contexts in :mod:`crmgraph.hook_contexts`)."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Awaitable, Callable, Mapping
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
    # the ``CustomerFilter`` input, and what turns one (or None) and a row
    # scope into the query the core's ``customers`` runs
    customer_filter: type | None
    customer_query: Callable[..., Any] | None

    def customer(self, row: dict[str, Any]) -> Any:
        """The concrete customer type's instance for a row (None for a kind no plugin declares)."""
        ...

    def interaction(self, row: dict[str, Any]) -> Any: ...

    def relationship(self, row: dict[str, Any]) -> Any: ...

    async def load_customer(self, info: Any, pk: int) -> Any:
        """The customer with this primary key as the caller may see it (a
        merged one's ID stands for its survivor), or None if there is none or
        it is outside the caller's row scope."""
        ...


class WriteRights(Protocol):
    """Which guarded fields a caller may not write (``crmgraph.access.Access``
    is one), described here so that the input checks need not import access."""

    def denied_writes(
        self, type_name: str, sent: Mapping[str, Any], *, creating: bool = False
    ) -> list[tuple[str, str, str]]: ...


# (info, pk) -> the object with that global ID, or None when there is none
# or the caller may not see it
NodeLoader = Callable[[Any, int], Awaitable[Any]]


@dataclass(frozen=True)
class GraphQLContribution:
    """What ``crmgraph_graphql`` returns: strawberry types whose fields are
    merged into the Query, Mutation and Subscription roots, extra types to
    register (e.g. implementations of an interface), and ``nodes``: for each
    ``Node`` type of the plugin (by its global ID's type name), how
    ``node(id:)`` and ``nodes(ids:)`` load one."""

    query: tuple[type, ...] | list[type] = ()
    mutation: tuple[type, ...] | list[type] = ()
    subscription: tuple[type, ...] | list[type] = ()
    types: tuple[type, ...] | list[type] = ()
    nodes: Mapping[str, NodeLoader] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerFieldTypes:
    """What ``crmgraph_customer_fields`` receives: the core types built before
    the ``Customer`` interface (its fields may return or take them)."""

    kind_enum: type[enum.Enum]
    channel_enum: type[enum.Enum]
    interaction_cls: type
    # the core's columns a built-in feature lists with its own fields (they
    # go when it does), by name: erased_at is privacy's
    feature_columns: Mapping[str, CustomerField] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerField:
    """A field a plugin adds to the ``Customer`` interface, and so to every
    customer type: ``name`` (snake_case, shown camelCase) and ``field``, a
    ``strawberry.field(...)`` (usually with a ``resolver`` taking the customer
    as its root: ``root.pk`` is its primary key).

    With an ``annotation`` (its GraphQL type) the field is listed with the
    data fields, after the core's (``deletedAt``); without one its type is the
    resolver's return type and it is listed after the core's resolver fields
    (``stageHistory``). Plugins' fields come in plugin order."""

    name: str
    field: Any
    annotation: Any | None = None


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
    primary_kind: str | None = None
    """The party's primary kind when ``kind`` is a further role being added
    (``addRole``: ``existing`` is then None) or changed (``updateRole``:
    ``existing`` is the role as it was); None: ``kind`` is the primary kind."""

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


class BackgroundService(Protocol):
    """Work a plugin runs beside a server while it serves (what
    ``crmgraph_background_services`` returns): started once the database
    pool is open, stopped before it closes; ``wake`` is called after every
    committed write that left events, so a service that follows the outbox
    need not wait for its next poll (``crmgraph.PollingLoop``
    provides all three)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def wake(self) -> None: ...
