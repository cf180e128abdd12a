"""Assemble the strawberry schema from the plugin catalog.

No ``from __future__ import annotations`` here: the types are created inside
:func:`build_schema` from what plugins declare, and strawberry must see real
classes in their annotations, not strings naming local variables.
"""

import asyncio
import datetime
import enum
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Optional

import pluggy
import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.tools import merge_types
from strawberry.types import Info
from strawberry.types.graphql import OperationType

from crmgraph.access import AUDIT_READ, forbidden
from crmgraph.analytics import metrics as analytics_metrics
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.customer_types import Attribute, CustomerType
from crmgraph.db import queries, writes
from crmgraph.extension_points import GraphQLContribution
from crmgraph.registry import Catalog, PluginError
from crmgraph.schema import analytics as analytics_schema
from crmgraph.schema import consent_types, mutations, subscriptions
from crmgraph.schema import core_types as core
from crmgraph.schema import dismissals as dismissals_schema
from crmgraph.schema import duplicates as duplicates_schema
from crmgraph.schema import merge as merge_schema
from crmgraph.schema import privacy as privacy_schema
from crmgraph.schema import teamwork as teamwork_schema
from crmgraph.schema.extensions import CachedHooksRunner
from crmgraph.schema.ids import InvalidId, decode_id, encode_id
from crmgraph.schema.limits import MaskUnexpectedErrors, is_unexpected
from crmgraph.schema.loaders import InteractionPageKey
from crmgraph.schema.pagination import (
    PageInfo,
    check_first,
    decode_cursor,
    encode_cursor,
    page_info,
)
from crmgraph.validation import camel, utc


class SubscriptionOverHTTP(InvalidOperationTypeError):
    """A subscription sent as a plain HTTP request, which can carry one answer,
    not a stream: the client is told where subscriptions are served."""

    def __init__(self) -> None:
        super().__init__(OperationType.SUBSCRIPTION)

    def as_http_error_reason(self, method: str) -> str:
        return (
            f"subscriptions are not served over HTTP {method}: open a WebSocket to "
            "/graphql with the graphql-transport-ws protocol"
        )


class CRMSchema(strawberry.Schema):
    """Logs only real faults: a GraphQLError raised on purpose (bad page size,
    bad cursor) or a query that fails validation is the client's business."""

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        # Strawberry's HTTP view lets a subscription through POST, where its
        # resolver, an async generator, can only end as a masked internal error.
        allowed = kwargs.get("allowed_operation_types")
        if allowed is not None and OperationType.SUBSCRIPTION in allowed:
            kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
            try:
                return await super().execute(*args, **kwargs)
            except InvalidOperationTypeError as exc:
                if exc.operation_type is OperationType.SUBSCRIPTION:
                    raise SubscriptionOverHTTP() from exc
                raise
        return await super().execute(*args, **kwargs)

    def create_extensions_runner(
        self, execution_context: Any, extensions: list[Any]
    ) -> CachedHooksRunner:
        return CachedHooksRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        if MaskUnexpectedErrors in self.extensions:
            return  # it logs each one itself, with the request id the client was given
        super().process_errors([e for e in errors if is_unexpected(e)], execution_context)


def plugin_contributions(
    pm: pluggy.PluginManager, types: "SchemaTypes"
) -> list[tuple[str, GraphQLContribution]]:
    found = []
    for impl in sorted(pm.hook.crmgraph_graphql.get_hookimpls(), key=lambda i: i.plugin_name):
        try:
            contribution = impl.function(types=types)
        except Exception as exc:
            raise PluginError(impl.plugin_name, f"crmgraph_graphql raised {exc!r}") from exc
        if contribution is not None:
            found.append((impl.plugin_name, contribution))
    return found


def root_field_names(cls: type) -> list[str]:
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    return [f.python_name for f in definition.fields]


def merge_roots(
    name: str,
    core_root: type | None,
    contributions: list[tuple[str, GraphQLContribution]],
    part: str,
) -> type | None:
    """One root type from the core's and every plugin's, refusing a field name
    two of them define (strawberry's merge_types only warns)."""
    parts: list[tuple[str, type]] = [("crmgraph core", core_root)] if core_root else []
    parts += [(plugin, cls) for plugin, c in contributions for cls in getattr(c, part)]
    if not parts:
        return None
    owners: dict[str, str] = {}
    for plugin, cls in parts:
        for field_name in root_field_names(cls):
            if field_name in owners:
                raise PluginError(
                    plugin,
                    f"{name}.{camel(field_name)} is already defined by {owners[field_name]!r}",
                )
            owners[field_name] = plugin
    if len(parts) == 1:
        return parts[0][1]
    return merge_types(name, tuple(cls for _, cls in parts))


def pascal(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


@dataclass
class SchemaTypes:
    """The classes built for one catalog, and the row → object conversions
    resolvers use to return instances of the concrete types."""

    customer_classes: dict[str, type]
    attribute_enums: dict[tuple[str, str], type[enum.Enum]]
    catalog: Catalog
    kind_enum: type[enum.Enum]
    channel_enum: type[enum.Enum]
    interaction_cls: type
    relationship_cls: type
    customer_interface: type
    # CustomerFilter -> CustomerQuery and InteractionFilter -> InteractionMatch,
    # shared with the compiled read path so both read a filter the same way
    customer_query: Callable[..., queries.CustomerQuery] | None = None
    interaction_match: Callable[..., queries.InteractionMatch] | None = None

    def customer(self, row: dict[str, Any]) -> Any:
        """The concrete type's instance, or None for a kind no loaded plugin
        declares (its plugin was removed: the data stays, unseen, until it returns)."""
        kind = row["kind"]
        cls = self.customer_classes.get(kind)
        if cls is None:
            return None
        descriptor = self.catalog.customer_type(kind)
        assert descriptor is not None
        stage = descriptor.lifecycle.stage(row["stage"])
        obj = cls.__new__(cls)
        values = descriptor.decode_attributes(queries.load_json(row["attributes"]))
        for attr in descriptor.attributes:
            enum_cls = self.attribute_enums.get((kind, attr.name))
            if enum_cls is not None and values[attr.name] is not None:
                values[attr.name] = enum_cls(values[attr.name])
        obj.__dict__.update(values)
        obj.__dict__.update(
            id=encode_id("Customer", row["id"]),
            pk=row["id"],
            owner_pk=row["owner"],
            team_pk=row["team"],
            kind=self.kind_enum(kind),
            name=row["name"],
            email=row["email"],
            phone=row["phone"],
            stage=row["stage"],
            stage_label=stage.label if stage else row["stage"],
            phase=core.Phase(row["phase"]),
            stage_entered_at=row["stage_entered_at"],
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            deleted_at=row["deleted_at"],
            erased_at=row.get("erased_at"),
        )
        return obj

    def interaction(self, row: dict[str, Any]) -> Any:
        obj = self.interaction_cls.__new__(self.interaction_cls)
        try:
            channel = self.channel_enum(row["channel"])
        except ValueError:  # a channel whose plugin was removed
            channel = self.channel_enum("OTHER")
        obj.__dict__.update(
            id=encode_id("Interaction", row["id"]),
            pk=row["id"],
            customer_id=encode_id("Customer", row["customer"]),
            contact_id=encode_id("Contact", row["contact"]) if row["contact"] else None,
            channel=channel,
            direction=core.InteractionDirection(row["direction"]),
            occurred_at=row["occurred_at"],
            subject=row["subject"],
            notes=row["notes"],
            outcome=row["outcome"],
            satisfaction=row["satisfaction"],
            amount=Decimal(str(row["amount"])).quantize(Decimal("0.01"))
            if row["amount"] is not None
            else None,
            created_at=row["created_at"],
            purpose=consent_types.Purpose(row["purpose"]) if row.get("purpose") else None,
        )
        return obj

    def relationship(self, row: dict[str, Any]) -> Any:
        obj = self.relationship_cls.__new__(self.relationship_cls)
        obj.__dict__.update(core.relationship_values(row))
        return obj


def attribute_graphql_type(
    descriptor: CustomerType, attr: Attribute, enums: dict[tuple[str, str], type[enum.Enum]]
) -> Any:
    if attr.choices:
        key = (descriptor.key, attr.name)
        if key not in enums:
            py_enum = enum.Enum(  # type: ignore[misc]
                f"{descriptor.graphql_name}{pascal(attr.name)}", {c: c for c in attr.choices}
            )
            enums[key] = strawberry.enum(py_enum, description=f"{attr.description}".strip() or None)
        return enums[key]
    return attr.type


def build_schema(
    catalog: Catalog, pm: pluggy.PluginManager, extensions: tuple[Any, ...] = ()
) -> tuple[strawberry.Schema, SchemaTypes]:
    descriptors = catalog.customer_types

    CustomerKind = strawberry.enum(
        enum.Enum("CustomerKind", {d.key.upper(): d.key for d in descriptors}),  # type: ignore[misc]
        description="The type of a customer; each is added by a plugin.",
    )
    InteractionChannel = strawberry.enum(
        enum.Enum("InteractionChannel", {c: c for c in catalog.channels}),  # type: ignore[misc]
        description="Where an interaction happened; plugins may add channels.",
    )

    @strawberry.type(description="A recorded contact with a customer on some channel.")
    class Interaction(core.Node):
        pk: strawberry.Private[int]
        customer_id: strawberry.ID
        contact_id: strawberry.ID | None
        channel: InteractionChannel  # type: ignore[valid-type]
        direction: core.InteractionDirection
        occurred_at: datetime.datetime
        subject: str
        notes: str | None
        outcome: str | None = strawberry.field(description="What came of it: the moment of truth.")
        satisfaction: int | None = strawberry.field(description="Customer rating, 1 (bad) to 5.")
        amount: Decimal | None = strawberry.field(description="Purchase amount, when it is one.")
        created_at: datetime.datetime
        purpose: consent_types.Purpose | None = strawberry.field(  # type: ignore[valid-type]
            description="MARKETING or SERVICE; null: not stated (not marketing)."
        )

    @strawberry.type
    class InteractionEdge:
        cursor: str
        node: Interaction

    @strawberry.type
    class InteractionConnection:
        edges: list[InteractionEdge]
        page_info: PageInfo

        @strawberry.field
        def nodes(self) -> list[Interaction]:
            return [edge.node for edge in self.edges]

    @strawberry.input
    class InteractionFilter:
        channels: list[InteractionChannel] | None = None  # type: ignore[valid-type]
        directions: list[core.InteractionDirection] | None = None
        since: datetime.datetime | None = strawberry.field(default=None, description="Inclusive.")
        until: datetime.datetime | None = strawberry.field(default=None, description="Exclusive.")

    def interaction_match(f: InteractionFilter | None) -> queries.InteractionMatch:
        if f is None:
            return queries.InteractionMatch()
        return queries.InteractionMatch(
            channels=tuple(sorted(c.value for c in f.channels or ())),
            directions=tuple(sorted(d.value for d in f.directions or ())),
            since=utc(f.since),
            until=utc(f.until),
        )

    @strawberry.type(description="A move the customer's lifecycle has from its current stage.")
    class TransitionOption:
        to_stage: str
        label: str
        phase: core.Phase
        allowed: bool = strawberry.field(description="Whether the move would be accepted now.")
        reasons: list[str] = strawberry.field(description="Why it would be refused, if it would.")
        converts_to: CustomerKind | None = strawberry.field(  # type: ignore[valid-type]
            description="The type the customer becomes with this move, if it changes type."
        )

    TimelineConnection, timeline_resolver = teamwork_schema.build_timeline(Interaction)
    consent_schema = consent_types.build_consent_types(InteractionChannel)

    @strawberry.interface(name="Customer", description="Any party the organisation deals with.")
    class CustomerBase(core.Node):
        pk: strawberry.Private[int]
        owner_pk: strawberry.Private[int | None]
        team_pk: strawberry.Private[int | None]
        kind: CustomerKind  # type: ignore[valid-type]
        name: str
        email: str | None
        phone: str | None = strawberry.field(description="E.164, e.g. +34912345678.")
        stage: str = strawberry.field(description="Current lifecycle stage key of its type.")
        stage_label: str
        phase: core.Phase
        stage_entered_at: datetime.datetime
        version: int = strawberry.field(
            description="Increases on every change; send it back as `expectedVersion`."
        )
        created_at: datetime.datetime
        updated_at: datetime.datetime
        deleted_at: datetime.datetime | None = strawberry.field(
            description="Set when soft-deleted; `restoreCustomer` clears it."
        )

        @strawberry.field
        async def owner(self, info: Info) -> core.User | None:
            if self.owner_pk is None:
                return None
            row = await info.context.loaders.user.load(self.owner_pk)
            return core.User.from_row(row) if row else None

        @strawberry.field(description="The team the customer is shared with, if any.")
        async def team(self, info: Info) -> core.Team | None:
            if self.team_pk is None:
                return None
            row = await info.context.loaders.row.load(("Team", self.team_pk))
            return core.Team.from_row(row) if row else None

        @strawberry.field(description="People at this customer, the primary one first.")
        async def contacts(self, info: Info) -> list[core.Contact]:
            rows = await info.context.loaders.contacts.load(self.pk)
            return [core.Contact.from_row(row) for row in rows]

        @strawberry.field(description="Interactions, newest first.")
        async def interactions(
            self,
            info: Info,
            first: int | None = 10,
            after: str | None = None,
            filter: InteractionFilter | None = None,
        ) -> InteractionConnection:
            settings = info.context.settings
            limit = check_first(first, settings.default_page_size, settings.max_page_size)
            before = decode_cursor(after, "interaction", timestamp=True) if after else None
            key = InteractionPageKey(self.pk, limit + 1, interaction_match(filter), before)
            rows = await info.context.loaders.interactions.load(key)
            types: SchemaTypes = info.context.types
            edges = [
                InteractionEdge(
                    cursor=encode_cursor("interaction", row["occurred_at"], row["id"]),
                    node=types.interaction(row),
                )
                for row in rows[:limit]
            ]
            return InteractionConnection(
                edges=edges,
                page_info=page_info(edges, len(rows) > limit, after),
            )

        @strawberry.field(description="Needs, newest first; optionally only some statuses.")
        async def needs(
            self, info: Info, status: list[core.NeedStatus] | None = None
        ) -> list[core.Need]:
            rows = await info.context.loaders.needs.load(self.pk)
            wanted = {s.value for s in status} if status else None
            return [core.Need.from_row(r) for r in rows if wanted is None or r["status"] in wanted]

        @strawberry.field(description="Relationships in which this customer is either party.")
        async def relationships(self, info: Info) -> list["Relationship"]:
            rows = await info.context.loaders.relationships.load(self.pk)
            return [info.context.types.relationship(row) for row in rows]

        @strawberry.field(
            description="Moves possible from the current stage, each with the reasons it is "
            "blocked now (runs the guards: ask for it on one customer, not on long lists)."
        )
        async def allowed_transitions(self, info: Info) -> list[TransitionOption]:
            ctx = info.context
            row = await ctx.loaders.customer.load(self.pk)
            options = []
            for move in await ctx.lifecycles.moves(ctx.db, row):
                target_kind = move.transition.convert_to or row["kind"]
                current_type = catalog.customer_type(row["kind"])
                stage = current_type.lifecycle.stage(move.transition.to_stage)  # type: ignore[union-attr]
                options.append(
                    TransitionOption(
                        to_stage=stage.key,
                        label=stage.label,
                        phase=core.Phase(stage.phase.value),
                        allowed=move.allowed,
                        reasons=list(move.reasons),
                        converts_to=CustomerKind(target_kind)
                        if move.transition.convert_to
                        else None,
                    )
                )
            return options

        @strawberry.field(description="Every lifecycle move, oldest first.")
        async def stage_history(self, info: Info) -> list[core.StageChange]:
            rows = await info.context.loaders.stage_history.load(self.pk)
            return [core.StageChange.from_row(row) for row in rows]

        @strawberry.field(
            description="What continuous tracking knows of the customer: activity by channel, "
            "satisfaction and its trend, purchases, RFM scores, needs, time in stage, churn "
            "risk with its signals and a next best action. Computed in SQL, batched per page.",
            metadata={"cost": analytics_schema.KNOWLEDGE_COST},
        )
        async def knowledge(
            self,
            info: Info,
            as_of: Annotated[
                datetime.datetime | None,
                strawberry.argument(description="The moment to compute it as of (default: now)."),
            ] = None,
        ) -> analytics_schema.CustomerKnowledge:
            return await analytics_schema.customer_knowledge(info, self.pk, as_of)

        notes: teamwork_schema.NoteConnection = strawberry.field(
            resolver=teamwork_schema.customer_notes, description="Notes, newest first."
        )
        tasks: teamwork_schema.TaskConnection = strawberry.field(
            resolver=teamwork_schema.customer_tasks,
            description="Tasks, newest first; optionally only some statuses.",
        )
        timeline: TimelineConnection = strawberry.field(  # type: ignore[valid-type]
            resolver=timeline_resolver,
            description="Interactions, notes, tasks, stage changes and (with audit.read) "
            "audit entries in one list, newest first.",
        )
        merges: list[merge_schema.CustomerMerge] = strawberry.field(
            resolver=merge_schema.customer_merges,
            description="The customers merged into this one (undone merges too), newest first.",
        )
        erased_at: datetime.datetime | None = strawberry.field(
            default=None,
            description="Set when its personal data was erased (erasePersonalData): the "
            "record stays, anonymous, for its facts; nothing more can be written to it.",
        )
        consents: list[consent_schema.consent] = strawberry.field(  # type: ignore[valid-type]
            resolver=consent_schema.consents,
            description="The consents in force: the newest statement per contact (null: the "
            "customer itself), channel and purpose.",
        )
        consent_history: list[consent_schema.consent] = strawberry.field(  # type: ignore[valid-type]
            resolver=consent_schema.history,
            description="Every grant and withdrawal of consent, newest first.",
        )

    @strawberry.type(description="A link between two parties, of a kind declared by a plugin.")
    class Relationship(core.Node):
        pk: strawberry.Private[int]
        from_pk: strawberry.Private[int]
        to_pk: strawberry.Private[int]
        attributes_json: strawberry.Private[dict]
        kind: str
        created_at: datetime.datetime

        @strawberry.field
        async def from_customer(self, info: Info) -> CustomerBase | None:
            return await load_customer(info, self.from_pk)

        @strawberry.field
        async def to_customer(self, info: Info) -> CustomerBase | None:
            return await load_customer(info, self.to_pk)

    # Customer and Relationship refer to each other; strawberry resolves the
    # string annotation "Relationship" in this module's namespace when the
    # Schema below is built, so publish this build's class there first.
    globals()["Relationship"] = Relationship

    async def load_customer(info: Info, pk: int) -> Any:
        """The customer, or None if it does not exist or the caller may not see it.
        A merged customer's ID stands for the survivor (A into B into C: C)."""
        load = info.context.loaders.customer.load
        row = await writes.survivor(await load(pk), load)
        if row is None or not info.context.access.sees(row):
            return None
        return info.context.types.customer(row)

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
        concrete = type(descriptor.graphql_name, (CustomerBase,), out_ns)
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

    types = SchemaTypes(
        customer_classes=customer_classes,
        attribute_enums=attribute_enums,
        catalog=catalog,
        kind_enum=CustomerKind,
        channel_enum=InteractionChannel,
        interaction_cls=Interaction,
        relationship_cls=Relationship,
        customer_interface=CustomerBase,
    )

    @strawberry.type
    class CustomerEdge:
        cursor: str
        node: CustomerBase

    @strawberry.type
    class CustomerConnection:
        edges: list[CustomerEdge]
        page_info: PageInfo
        filter_query: strawberry.Private[queries.CustomerQuery]

        @strawberry.field
        def nodes(self) -> list[CustomerBase]:
            return [edge.node for edge in self.edges]

        @strawberry.field(description="How many customers match the filter (one more query).")
        async def total_count(self, info: Info) -> int:
            return await queries.count_customers(info.context.db, self.filter_query)

    CustomerSortField = strawberry.enum(
        enum.Enum("CustomerSortField", {k: k for k in queries.CUSTOMER_SORT_COLUMNS}),  # type: ignore[misc]
    )

    @strawberry.input
    class CustomerOrder:
        field: CustomerSortField = CustomerSortField.CREATED_AT  # type: ignore[valid-type,attr-defined]
        direction: core.SortDirection = core.SortDirection.DESC

    @strawberry.input(description="All conditions must hold. Lists match any of their values.")
    class CustomerFilter:
        kinds: list[CustomerKind] | None = None  # type: ignore[valid-type]
        stages: list[str] | None = None
        phases: list[core.Phase] | None = None
        owner_ids: list[strawberry.ID] | None = None
        team_ids: list[strawberry.ID] | None = None
        search: str | None = strawberry.field(
            default=None,
            description="Text in the name or e-mail, in any script, case and accents aside.",
        )
        created_after: datetime.datetime | None = None
        created_before: datetime.datetime | None = None
        updated_after: datetime.datetime | None = None
        updated_before: datetime.datetime | None = None
        deleted: core.DeletedState = core.DeletedState.ACTIVE
        has_interaction: InteractionFilter | None = strawberry.field(
            default=None, description="Has at least one interaction matching this."
        )
        contact_search: str | None = strawberry.field(
            default=None,
            description="Has a contact whose name or e-mail contains this (as `search`).",
        )
        has_open_need: bool | None = strawberry.field(
            default=None, description="Has (true) or has no (false) open or in-progress need."
        )

    def decode_ids(ids: list[strawberry.ID] | None, type_name: str, path: str) -> tuple[int, ...]:
        try:
            return tuple(decode_id(i, type_name)[1] for i in ids or ())
        except InvalidId as exc:
            raise GraphQLError(f"{path}: {exc}", extensions={"code": "INVALID_ID"}) from None

    def check_text(path: str, *values: str | None) -> None:
        # PostgreSQL text cannot hold NUL; refuse it here rather than in the driver
        if any(value is not None and "\x00" in value for value in values):
            raise GraphQLError(
                f"{path} must not contain NUL characters", extensions={"code": "BAD_USER_INPUT"}
            )

    def customer_query(
        f: CustomerFilter | None, scope: queries.CustomerScope | None
    ) -> queries.CustomerQuery:
        every_kind = tuple(d.key for d in descriptors)
        if f is None:
            return queries.CustomerQuery(kinds=every_kind, scope=scope)
        check_text("filter.search", f.search)
        check_text("filter.contactSearch", f.contact_search)
        check_text("filter.stages", *(f.stages or ()))
        return queries.CustomerQuery(
            scope=scope,
            team_ids=decode_ids(f.team_ids, "Team", "filter.teamIds"),
            kinds=tuple(k.value for k in f.kinds or ()) or every_kind,
            stages=tuple(f.stages or ()),
            phases=tuple(p.value for p in f.phases or ()),
            owner_ids=decode_ids(f.owner_ids, "User", "filter.ownerIds"),
            search=f.search.strip() if f.search and f.search.strip() else None,
            created_after=utc(f.created_after),
            created_before=utc(f.created_before),
            updated_after=utc(f.updated_after),
            updated_before=utc(f.updated_before),
            deleted=f.deleted.value,
            has_interaction=interaction_match(f.has_interaction) if f.has_interaction else None,
            contact_search=f.contact_search.strip() if f.contact_search else None,
            has_open_need=f.has_open_need,
        )

    types.customer_query = customer_query
    types.interaction_match = interaction_match

    @strawberry.type
    class StageInfo:
        key: str
        label: str
        phase: core.Phase
        detour: bool = strawberry.field(
            description="Off the main path (at risk, on leave…): not progress in the funnel."
        )

    @strawberry.type
    class TransitionInfo:
        from_stage: str
        to_stage: str
        description: str

    @strawberry.type
    class AttributeInfo:
        name: str
        type: str
        description: str
        required: bool
        choices: list[str] | None
        permission: str | None = strawberry.field(
            description="Permission needed to read it, if it is sensitive."
        )
        min_value: Decimal | None = strawberry.field(
            default=None, description="Smallest value it accepts (inclusive), for a number."
        )
        max_value: Decimal | None = strawberry.field(
            default=None, description="Largest value it accepts (inclusive), for a number."
        )

    @strawberry.type(description="A permission a plugin declared, and the roles granted it.")
    class PermissionInfo:
        key: str
        description: str
        roles: list[str]

    @strawberry.type(description="A metric a plugin contributes, computed in SQL now.")
    class MetricValue:
        key: str
        description: str
        value: float | None

    @strawberry.type(description="A customer type, as its plugin declared it.")
    class CustomerKindInfo:
        kind: CustomerKind  # type: ignore[valid-type]
        type_name: str
        description: str
        plugin: str
        initial_stage: str
        stages: list[StageInfo]
        transitions: list[TransitionInfo]
        attributes: list[AttributeInfo]

    kind_infos = [
        CustomerKindInfo(
            kind=CustomerKind(t.descriptor.key),
            type_name=t.descriptor.graphql_name,
            description=t.descriptor.description,
            plugin=t.plugin,
            initial_stage=t.descriptor.lifecycle.initial,
            stages=[
                StageInfo(
                    key=s.key, label=s.label, phase=core.Phase(s.phase.value), detour=s.detour
                )
                for s in t.descriptor.lifecycle.stages
            ],
            transitions=[
                TransitionInfo(
                    from_stage=tr.from_stage, to_stage=tr.to_stage, description=tr.description
                )
                for tr in t.descriptor.lifecycle.transitions
            ],
            attributes=[
                AttributeInfo(
                    name=camel(a.name),
                    type=a.type.__name__,
                    description=a.description,
                    required=a.required,
                    choices=list(a.choices) if a.choices else None,
                    permission=a.permission,
                    min_value=a.min_value,
                    max_value=a.max_value,
                )
                for a in t.descriptor.attributes
            ],
        )
        for t in catalog.types
    ]

    async def parent_visible(info: Info, type_name: str, row: dict[str, Any]) -> bool:
        """Whether the customer a record hangs off is one the caller may see
        (for a relationship: either party)."""
        if info.context.access.scope is None or type_name in ("User", "Team"):
            return True
        if type_name == "Relationship":
            parties = (row["from_customer"], row["to_customer"])
        else:
            parties = (row["customer"],)
        for pk in parties:
            if await load_customer(info, pk) is not None:
                return True
        return False

    async def node_by_id(info: Info, global_id: str) -> Any:
        try:
            type_name, pk = decode_id(global_id)
        except InvalidId:
            return None
        if type_name == "Customer":
            return await load_customer(info, pk)
        if type_name == "CustomerMerge":
            return await merge_schema.merge_node(info, pk)
        row = await info.context.loaders.row.load((type_name, pk))
        if row is None or not await parent_visible(info, type_name, row):
            return None
        converters: dict[str, Callable[[dict[str, Any]], Any]] = {
            "Contact": core.Contact.from_row,
            "Need": core.Need.from_row,
            "StageChange": core.StageChange.from_row,
            "User": core.User.from_row,
            "Team": core.Team.from_row,
            "Interaction": types.interaction,
            "Relationship": types.relationship,
            "Note": teamwork_schema.Note.from_row,
            "Task": teamwork_schema.Task.from_row,
        }
        return converters[type_name](row)

    Analytics, analytics_root = analytics_schema.build_analytics_type(
        CustomerBase, CustomerFilter, customer_query
    )

    @strawberry.type
    class AuditTrailConnection:
        edges: list[core.AuditEntryEdge]
        page_info: PageInfo

    @strawberry.type
    class Query:
        @strawberry.field(description="Any object by its global ID.")
        async def node(self, info: Info, id: strawberry.ID) -> core.Node | None:
            return await node_by_id(info, id)

        @strawberry.field(
            description="Objects by global IDs, in the order asked (null if missing)."
        )
        async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[core.Node | None]:
            if len(ids) > info.context.settings.max_page_size:
                raise GraphQLError(
                    f"at most {info.context.settings.max_page_size} ids",
                    extensions={
                        "code": "TOO_MANY_IDS",
                        "maximum": info.context.settings.max_page_size,
                    },
                )
            # gathered, not awaited one by one, so the loaders batch them
            return list(await asyncio.gather(*(node_by_id(info, i) for i in ids)))

        @strawberry.field(description="One customer, including a soft-deleted one.")
        async def customer(self, info: Info, id: strawberry.ID) -> CustomerBase | None:
            try:
                _, pk = decode_id(id, "Customer")
            except InvalidId:
                return None
            return await load_customer(info, pk)

        @strawberry.field(description="Customers, paginated by keyset (Relay connection).")
        async def customers(
            self,
            info: Info,
            first: int | None = 20,
            after: str | None = None,
            filter: CustomerFilter | None = None,
            order_by: CustomerOrder | None = None,
        ) -> CustomerConnection:
            settings = info.context.settings
            limit = check_first(first, settings.default_page_size, settings.max_page_size)
            order = order_by or CustomerOrder()
            sort = order.field.value
            scope = queries.customer_cursor_scope(sort)
            column = queries.CUSTOMER_SORT_COLUMNS[sort]
            text = column in queries.TEXT_SORT_COLUMNS
            cursor = decode_cursor(after, scope, timestamp=not text) if after else None
            q = customer_query(filter, info.context.access.scope)
            rows = await queries.list_customers(
                info.context.db,
                q,
                sort,
                order.direction == core.SortDirection.DESC,
                limit + 1,
                cursor,
            )
            loader = info.context.loaders.customer
            edges = []
            for row in rows[:limit]:
                loader.prime(row["id"], row)
                edges.append(
                    CustomerEdge(
                        cursor=encode_cursor(scope, row[column], row["id"]),
                        node=types.customer(row),
                    )
                )
            return CustomerConnection(
                edges=edges,
                page_info=page_info(edges, len(rows) > limit, after),
                filter_query=q,
            )

        @strawberry.field(description="Every customer type, with its stages and attributes.")
        def customer_kinds(self) -> list[CustomerKindInfo]:
            return kind_infos

        @strawberry.field(
            description="Every change to a customer and its contacts, interactions, needs and "
            "relationships, newest first (including deletion and restore)."
        )
        async def audit_trail(
            self,
            info: Info,
            customer_id: strawberry.ID,
            first: int | None = 20,
            after: str | None = None,
        ) -> AuditTrailConnection:
            settings = info.context.settings
            access = info.context.access
            limit = check_first(first, settings.default_page_size, settings.max_page_size)
            if not access.can(AUDIT_READ):
                raise forbidden(AUDIT_READ, "read the audit trail")
            (pk,) = decode_ids([customer_id], "Customer", "customerId")
            before = decode_cursor(after, "audit", timestamp=False)[1] if after else None
            if access.scope is not None and await load_customer(info, pk) is None:
                rows = []  # a customer the caller may not see has no trail for them
            else:
                rows = await queries.audit_page(info.context.db, pk, limit + 1, before)
            edges = [
                core.AuditEntryEdge(
                    cursor=encode_cursor("audit", None, row["id"]),
                    node=core.AuditEntry.from_row(row, access.readable_change),
                )
                for row in rows[:limit]
            ]
            return AuditTrailConnection(
                edges=edges, page_info=page_info(edges, len(rows) > limit, after)
            )

        @strawberry.field(description="Permissions declared by plugins.")
        def permissions(self) -> list[PermissionInfo]:
            return [
                PermissionInfo(key=p.key, description=p.description, roles=list(p.roles))
                for p in catalog.permissions
            ]

        @strawberry.field(
            description="Metrics contributed by plugins over every customer the caller sees.",
            deprecation_reason="Use `analytics { metrics }`, which takes a filter and a period.",
        )
        async def plugin_metrics(self, info: Info) -> list[MetricValue]:
            db = info.context.db
            scope = AnalyticsScope.create(db, customer_query(None, info.context.access.scope))
            found = await analytics_metrics.plugin_metrics(db, scope, catalog.metrics)
            return [MetricValue(key=m.key, description=m.description, value=m.value) for m in found]

        analytics: Analytics = strawberry.field(  # type: ignore[valid-type]
            resolver=analytics_root,
            description="Analytical CRM over the customers the filter selects and the caller "
            "may see, in a period: funnel, cohorts, satisfaction, revenue, RFM, churn risk, "
            "needs and plugin metrics.",
        )

        @strawberry.field(description="Teams; agents see the customers of their teams.")
        async def teams(self, info: Info) -> list[core.Team]:
            rows = await info.context.db.fetch("SELECT * FROM team ORDER BY name, id")
            return [core.Team.from_row(row) for row in rows]

        @strawberry.field(description="What the caller may do: their role and permissions.")
        def viewer(self, info: Info) -> core.Viewer:
            access = info.context.access
            principal = access.principal
            return core.Viewer(
                user_id=encode_id("User", principal.user_id) if principal.user_id else None,
                name=principal.name,
                role=principal.role,
                permissions=sorted(access.permissions),
                team_ids=[encode_id("Team", t) for t in sorted(principal.team_ids)],
            )

        @strawberry.field(description="Users of the CRM (owners of customers).")
        async def users(self, info: Info) -> list[core.User]:
            rows = await info.context.db.fetch("SELECT * FROM crm_user ORDER BY name, id")
            return [core.User.from_row(row) for row in rows]

    PrivacyQuery, PrivacyMutation = privacy_schema.build_privacy(
        CustomerBase, InteractionChannel, consent_schema
    )
    duplicate_types = duplicates_schema.build_duplicates(CustomerBase, CustomerKind, load_customer)
    Mutation = mutations.build_mutation_type(
        types,
        CustomerBase,
        Interaction,
        InteractionChannel,
        attribute_inputs,
        load_customer,
        duplicate_types.candidate,
    )
    Mutation = merge_types(
        "Mutation",
        (
            Mutation,
            teamwork_schema.TeamworkMutation,
            merge_schema.build_merge_mutation(CustomerBase),
            dismissals_schema.DismissalMutation,
            PrivacyMutation,
        ),
    )
    Query = merge_types(
        "Query", (Query, teamwork_schema.TeamworkQuery, duplicate_types.query, PrivacyQuery)
    )
    Subscription = subscriptions.build_subscription_type(
        CustomerKind,
        CustomerBase,
        load_customer,
        decode_ids,
        sorted({s.key for d in descriptors for s in d.lifecycle.stages}),
    )
    contributions = plugin_contributions(pm, types)
    schema = CRMSchema(
        query=merge_roots("Query", Query, contributions, "query"),
        mutation=merge_roots("Mutation", Mutation, contributions, "mutation"),
        subscription=merge_roots("Subscription", Subscription, contributions, "subscription"),
        types=[
            *customer_classes.values(),
            core.User,
            core.Contact,
            core.Need,
            core.StageChange,
            core.Team,
            *(t for _, c in contributions for t in c.types),
        ],
        extensions=[ParserCache, ValidationCache, *extensions],
    )
    return schema, types
