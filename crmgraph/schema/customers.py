"""The Customer interface, the concrete type each customer-type plugin adds,
Relationship (which links two customers) and the customer page types.

Features (teamwork, merges, privacy, analytics) add their fields to the
interface through ``extra_fields``; :mod:`crmgraph.schema.build` wires them.
"""

import datetime
import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Optional

import strawberry
from strawberry.types import Info

from crmgraph import core_fields
from crmgraph.customer_types import Attribute, CustomerType
from crmgraph.db import queries, writes
from crmgraph.extension_points import CustomerField
from crmgraph.operations import history
from crmgraph.registry import Catalog
from crmgraph.schema import core_types as core
from crmgraph.schema import described
from crmgraph.schema.filters import Filters
from crmgraph.schema.interactions import InteractionTypes
from crmgraph.schema.loaders import InteractionPageKey
from crmgraph.schema.needs import Need
from crmgraph.schema.page_types import page_of
from crmgraph.schema.pagination import (
    CURSOR,
    EDGES,
    NODE,
    NODES,
    PAGE_INFO,
    After,
    First,
    PageInfo,
    check_first,
    decode_cursor,
    encode_cursor,
)
from crmgraph.validation import camel


@dataclass(frozen=True)
class InterfaceField:
    """A field a feature adds to the Customer interface. With an annotation it
    is listed among the data fields, after the core's; without one (a resolver
    field) after the core's resolver fields."""

    name: str
    annotation: Any | None
    field: Any


async def load_customer(info: Info, pk: int) -> Any:
    """The customer, or None if it does not exist or the caller may not see it.
    A merged customer's ID stands for the survivor (A into B into C: C)."""
    load = info.context.loaders.customer.load
    row = await writes.survivor(await load(pk), load)
    if row is None or not info.context.access.sees(row):
        return None
    return info.context.types.customer(row)


async def past_rows(obj: Any, info: Info, type_name: str) -> list[dict[str, Any]] | None:
    """A customer read as it was (``asOf``, :mod:`crmgraph.schema.history`):
    its contacts, needs or interactions of that moment; None: read as it is."""
    past = obj.__dict__.get("past")
    if past is None:
        return None
    return await history.lists_as_of(past, info.context.db, type_name)


def customer_enums(kind_enum: type[enum.Enum]) -> dict[str, Any]:
    """The enums the Customer description names, with this build's kinds."""
    return {**core.CORE_ENUMS, "CustomerKind": kind_enum}


def feature_columns() -> dict[str, CustomerField]:
    """The core's columns (crmgraph.core_fields) a built-in feature lists with
    its own fields, by name (``erased_at``: privacy's ``Customer.erasedAt``)."""
    return {
        f.name: CustomerField(
            f.name, described.strawberry_field(f), described.annotation(f, core.CORE_ENUMS)
        )
        for f in core_fields.CUSTOMER
        if f.feature is not None
    }


async def transition_options(
    info: Info, kind_enum: type[enum.Enum], row: dict[str, Any], primary_kind: str | None = None
) -> list[Any]:
    """The ``TransitionOption`` of each move from ``row``'s stage: a customer
    row, or one of its further roles as :func:`crmgraph.operations.roles.role_view`
    shapes it (``primary_kind``: the party's own, so a role never converts)."""
    ctx = info.context
    TransitionOption = build_transition_option(kind_enum)
    lifecycle = ctx.types.catalog.customer_type(row["kind"]).lifecycle
    options = []
    for move in await ctx.lifecycles.moves(ctx.db, row, primary_kind):
        stage = lifecycle.stage(move.transition.to_stage)
        converts_to = move.transition.convert_to
        options.append(
            TransitionOption(
                to_stage=stage.key,
                label=stage.label,
                phase=core.Phase(stage.phase.value),
                allowed=move.allowed,
                reasons=list(move.reasons),
                converts_to=kind_enum(converts_to) if converts_to else None,
            )
        )
    return options


@functools.cache  # one type per schema: the customer and role interfaces share it
def build_transition_option(kind_enum: type[enum.Enum]) -> type:
    CustomerKind = kind_enum

    @strawberry.type(description="A move the customer's lifecycle has from its current stage.")
    class TransitionOption:
        to_stage: str = strawberry.field(
            description="The stage key it moves to (pass it as `toStage`)."
        )
        label: str = strawberry.field(description="That stage's label.")
        phase: core.Phase = strawberry.field(description="That stage's lifecycle phase.")
        allowed: bool = strawberry.field(description="Whether the move would be accepted now.")
        reasons: list[str] = strawberry.field(description="Why it would be refused, if it would.")
        converts_to: CustomerKind | None = strawberry.field(  # type: ignore[valid-type]
            description="The type the customer becomes with this move, if it changes type."
        )

    return TransitionOption


def column_namespace(kind_enum: type[enum.Enum]) -> dict[str, Any]:
    """The interface's column-backed fields (but those listed with a feature's),
    in SDL order, and the keys its resolvers read."""
    namespace: dict[str, Any] = {
        "__annotations__": {
            "pk": strawberry.Private[int],
            "owner_pk": strawberry.Private[int | None],
            "team_pk": strawberry.Private[int | None],
        }
    }
    core_columns = tuple(f for f in core_fields.CUSTOMER if f.feature is None)
    described.add_fields(namespace, core_columns, customer_enums(kind_enum))
    return namespace


def resolver_namespace(
    catalog: Catalog, kind_enum: type[enum.Enum], interactions: InteractionTypes, filters: Filters
) -> dict[str, Any]:
    """The interface's core resolver fields, in SDL order."""
    InteractionFilter = filters.interaction_filter
    InteractionConnection = interactions.connection
    InteractionEdge = interactions.edge
    interaction_match = filters.interaction_match
    TransitionOption = build_transition_option(kind_enum)

    @strawberry.field(description="The user who owns the customer; null: nobody.")
    async def owner(self: Any, info: Info) -> core.User | None:
        if self.owner_pk is None:
            return None
        row = await info.context.loaders.user.load(self.owner_pk)
        return core.User.from_row(row) if row else None

    @strawberry.field(description="The team the customer is shared with, if any.")
    async def team(self: Any, info: Info) -> core.Team | None:
        if self.team_pk is None:
            return None
        row = await info.context.loaders.row.load(("Team", self.team_pk))
        return core.Team.from_row(row) if row else None

    @strawberry.field(description="People at this customer, the primary one first.")
    async def contacts(self: Any, info: Info) -> list[core.Contact]:
        rows = await past_rows(self, info, "Contact")
        if rows is None:
            rows = await info.context.loaders.contacts.load(self.pk)
        return [core.Contact.from_row(row) for row in rows]

    @strawberry.field(description="Interactions, newest first.")
    async def interactions(
        self: Any,
        info: Info,
        first: First = 10,
        after: After = None,
        filter: Annotated[
            InteractionFilter | None,
            strawberry.argument(description="Only interactions matching this."),
        ] = None,  # type: ignore[valid-type]
    ) -> InteractionConnection:  # type: ignore[valid-type]
        settings = info.context.settings
        limit = check_first(first, settings.default_page_size, settings.max_page_size)
        before = decode_cursor(after, "interaction", timestamp=True) if after else None
        key = InteractionPageKey(self.pk, limit + 1, interaction_match(filter), before)
        past = self.__dict__.get("past")
        if past is not None:  # as it was (asOf)
            rows = await history.interactions_at(
                info.context.db, past, key.limit, key.match, key.before
            )
        else:
            rows = await info.context.loaders.interactions.load(key)
        return page_of(
            InteractionEdge,
            InteractionConnection,
            rows,
            limit,
            after,
            lambda row: encode_cursor("interaction", row["occurred_at"], row["id"]),
            info.context.types.interaction,
        )

    @strawberry.field(description="Needs, newest first; optionally only some statuses.")
    async def needs(
        self: Any,
        info: Info,
        status: Annotated[
            list[core.NeedStatus] | None,
            strawberry.argument(description="Only these statuses (default: all)."),
        ] = None,
    ) -> list[Need]:
        rows = await past_rows(self, info, "Need")
        if rows is None:
            rows = await info.context.loaders.needs.load(self.pk)
        wanted = {s.value for s in status} if status else None
        return [Need.from_row(r) for r in rows if wanted is None or r["status"] in wanted]

    @strawberry.field(description="Relationships in which this customer is either party.")
    async def relationships(self: Any, info: Info) -> list["Relationship"]:  # noqa: F821
        rows = await info.context.loaders.relationships.load(self.pk)
        return [info.context.types.relationship(row) for row in rows]

    @strawberry.field(
        description="Moves possible from the current stage, each with the reasons it is "
        "blocked now (runs the guards: ask for it on one customer, not on long lists)."
    )
    async def allowed_transitions(self: Any, info: Info) -> list[TransitionOption]:  # type: ignore[valid-type]
        row = await info.context.loaders.customer.load(self.pk)
        return await transition_options(info, kind_enum, row)

    @strawberry.field(description="Every lifecycle move, oldest first.")
    async def stage_history(self: Any, info: Info) -> list[core.StageChange]:
        past = self.__dict__.get("past")
        if past is not None:  # as it was: the moves made by then
            rows = await history.stage_history_at(info.context.db, past)
        else:
            rows = await info.context.loaders.stage_history.load(self.pk)
        return [core.StageChange.from_row(row) for row in rows]

    return {
        "owner": owner,
        "team": team,
        "contacts": contacts,
        "interactions": interactions,
        "needs": needs,
        "relationships": relationships,
        "allowed_transitions": allowed_transitions,
        "stage_history": stage_history,
    }


def build_customer_interface(
    catalog: Catalog,
    kind_enum: type[enum.Enum],
    interactions: InteractionTypes,
    filters: Filters,
    extra_fields: Sequence[InterfaceField],
) -> type:
    """The ``Customer`` interface: the core's column fields, the features'
    data fields, the core's resolver fields, then the features' resolver fields."""
    namespace = column_namespace(kind_enum)
    annotations = namespace["__annotations__"]
    for extra in extra_fields:
        if extra.annotation is not None:
            annotations[extra.name] = extra.annotation
    namespace.update(resolver_namespace(catalog, kind_enum, interactions, filters))
    for extra in extra_fields:
        namespace[extra.name] = extra.field
    return strawberry.interface(
        type("CustomerBase", (core.Node,), namespace),
        name="Customer",
        description="Any party the organisation deals with.",
    )


def build_relationship(customer_interface: type) -> type:
    CustomerBase = customer_interface

    @strawberry.type(description="A link between two parties, of a kind declared by a plugin.")
    class Relationship(core.Node):
        pk: strawberry.Private[int]
        from_pk: strawberry.Private[int]
        to_pk: strawberry.Private[int]
        attributes_json: strawberry.Private[dict]
        kind: str = strawberry.field(description="The relationship kind's key, e.g. `resells_to`.")
        created_at: datetime.datetime = strawberry.field(description="When it was linked (UTC).")

        @strawberry.field(description="The customer it starts from; null if you may not see it.")
        async def from_customer(self, info: Info) -> CustomerBase | None:  # type: ignore[valid-type]
            return await load_customer(info, self.from_pk)

        @strawberry.field(description="The customer it points to; null if you may not see it.")
        async def to_customer(self, info: Info) -> CustomerBase | None:  # type: ignore[valid-type]
            return await load_customer(info, self.to_pk)

    # Customer and Relationship refer to each other; strawberry resolves the
    # string annotation "Relationship" of Customer.relationships in this
    # module's namespace when the Schema is built, so publish this build's
    # class there first.
    globals()["Relationship"] = Relationship
    return Relationship


def pascal(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def choice_description(attr: Attribute, choice: str) -> str:
    """A choice declares no text of its own: it reads as its attribute's value."""
    words = choice.replace("_", " ").lower()
    return f"`{camel(attr.name)}` is {words}."


def attribute_graphql_type(
    descriptor: CustomerType, attr: Attribute, enums: dict[tuple[str, str], type[enum.Enum]]
) -> Any:
    if attr.choices:
        key = (descriptor.key, attr.name)
        if key not in enums:
            py_enum = enum.Enum(  # type: ignore[misc]
                f"{descriptor.graphql_name}{pascal(attr.name)}", {c: c for c in attr.choices}
            )
            enums[key] = described.enum_type(
                py_enum,
                f"{attr.description}".strip() or f"The values of `{camel(attr.name)}`.",
                lambda choice: choice_description(attr, choice),
            )
        return enums[key]
    return attr.type


@dataclass(frozen=True)
class CustomerClasses:
    """Per customer type: its GraphQL object type and its attributes' input."""

    classes: dict[str, type]
    attribute_enums: dict[tuple[str, str], type[enum.Enum]]
    attribute_inputs: dict[str, type]


def build_customer_classes(
    descriptors: Sequence[CustomerType], customer_interface: type
) -> CustomerClasses:
    attribute_enums: dict[tuple[str, str], type[enum.Enum]] = {}
    customer_classes: dict[str, type] = {}
    attribute_inputs: dict[str, type] = {}
    for descriptor in descriptors:
        out_ns: dict[str, Any] = {"__annotations__": {}}
        in_ns: dict[str, Any] = {"__annotations__": {}}
        for attr in descriptor.attributes:
            gql_type = attribute_graphql_type(descriptor, attr, attribute_enums)
            out_ns["__annotations__"][attr.name] = Optional[gql_type]  # noqa: UP045
            out_ns[attr.name] = strawberry.field(default=None, description=attr.documentation)
            in_ns["__annotations__"][attr.name] = Optional[gql_type]  # noqa: UP045
            in_ns[attr.name] = strawberry.field(
                default=strawberry.UNSET, description=attr.documentation
            )
        concrete = type(descriptor.graphql_name, (customer_interface,), out_ns)
        customer_classes[descriptor.key] = strawberry.type(
            concrete, name=descriptor.graphql_name, description=descriptor.description
        )
        if descriptor.attributes:
            input_cls = type(f"{descriptor.graphql_name}AttributesInput", (), in_ns)
            attribute_inputs[descriptor.key] = strawberry.input(
                input_cls,
                name=f"{descriptor.graphql_name}AttributesInput",
                description=f"Attributes of a {descriptor.graphql_name}; send only with that kind.",
            )
    return CustomerClasses(customer_classes, attribute_enums, attribute_inputs)


@dataclass(frozen=True)
class CustomerPages:
    edge: type
    connection: type


def build_customer_pages(customer_interface: type) -> CustomerPages:
    CustomerBase = customer_interface

    @strawberry.type(description="One customer of a page and its cursor.")
    class CustomerEdge:
        cursor: str = strawberry.field(description=CURSOR)
        node: CustomerBase = strawberry.field(description=NODE)  # type: ignore[valid-type]

    @strawberry.type(description="A page of customers, in the order asked.")
    class CustomerConnection:
        edges: list[CustomerEdge] = strawberry.field(description=EDGES)
        page_info: PageInfo = strawberry.field(description=PAGE_INFO)
        filter_query: strawberry.Private[queries.CustomerQuery]

        @strawberry.field(description=NODES)
        def nodes(self) -> list[CustomerBase]:  # type: ignore[valid-type]
            return [edge.node for edge in self.edges]

        @strawberry.field(description="How many customers match the filter (one more query).")
        async def total_count(self, info: Info) -> int:
            return await queries.count_customers(info.context.db, self.filter_query)

    return CustomerPages(edge=CustomerEdge, connection=CustomerConnection)
