"""The filter and order inputs of customer and interaction lists, and their
reading into the data layer's queries (shared by the resolvers and the
compiled reads, so both read a filter the same way)."""

import datetime
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLError

from crmgraph.db import queries
from crmgraph.schema import core_types as core
from crmgraph.schema import described
from crmgraph.schema.ids import InvalidId, decode_id
from crmgraph.validation import utc


@dataclass(frozen=True)
class Filters:
    interaction_filter: type
    interaction_match: Callable[[Any], queries.InteractionMatch]
    customer_filter: type
    customer_query: Callable[[Any, queries.CustomerScope | None], queries.CustomerQuery]
    customer_order: type


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


def build_interaction_filter(
    channel_enum: type[enum.Enum],
) -> tuple[type, Callable[[Any], queries.InteractionMatch]]:
    InteractionChannel = channel_enum

    @strawberry.input(
        description="Which interactions: all conditions must hold; a list matches any of its "
        "values."
    )
    class InteractionFilter:
        channels: list[InteractionChannel] | None = strawberry.field(
            default=None, description="Only on these channels."
        )  # type: ignore[valid-type]
        directions: list[core.InteractionDirection] | None = strawberry.field(
            default=None, description="Only in these directions."
        )
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

    return InteractionFilter, interaction_match


SORT_FIELDS = {
    "CREATED_AT": "When the customer was created.",
    "UPDATED_AT": "When the customer last changed.",
    "NAME": "The name, in its sort key's order (case and accents aside).",
}


def build_customer_order() -> type:
    CustomerSortField = described.enum_type(
        enum.Enum("CustomerSortField", {k: k for k in queries.CUSTOMER_SORT_COLUMNS}),  # type: ignore[misc]
        "What a customer list is sorted by (ties broken by ID).",
        SORT_FIELDS,
    )

    @strawberry.input(description="The order of a customer list.")
    class CustomerOrder:
        field: CustomerSortField = strawberry.field(
            default=CustomerSortField.CREATED_AT, description="What to sort by."
        )  # type: ignore[valid-type,attr-defined]
        direction: core.SortDirection = strawberry.field(
            default=core.SortDirection.DESC, description="Ascending or descending."
        )

    return CustomerOrder


def build_filters(
    kinds: Sequence[str], kind_enum: type[enum.Enum], channel_enum: type[enum.Enum]
) -> Filters:
    """The inputs; ``kinds`` are every customer type's key (no kind asked: all)."""
    CustomerKind = kind_enum
    every_kind = tuple(kinds)
    InteractionFilter, interaction_match = build_interaction_filter(channel_enum)

    @strawberry.input(description="All conditions must hold. Lists match any of their values.")
    class CustomerFilter:
        kinds: list[CustomerKind] | None = strawberry.field(
            default=None,
            description="Only parties holding a role of one of these types: their primary kind "
            "or a further role added and not ended (`Customer.roles`); with "
            "`primaryKindOnly`, only customers whose own type is one of them.",
        )  # type: ignore[valid-type]
        primary_kind_only: bool = strawberry.field(
            default=False,
            description="Match `kinds` against the customer's primary kind (its GraphQL type) "
            "only, not its further roles.",
        )
        stages: list[str] | None = strawberry.field(
            default=None,
            description="Only at these stage keys (not labels), e.g. `active`: the stage of the "
            "primary kind.",
        )
        phases: list[core.Phase] | None = strawberry.field(
            default=None, description="Only in these lifecycle phases (of the primary kind)."
        )
        owner_ids: list[strawberry.ID] | None = strawberry.field(
            default=None, description="Only owned by these users (global IDs)."
        )
        team_ids: list[strawberry.ID] | None = strawberry.field(
            default=None, description="Only shared with these teams (global IDs)."
        )
        search: str | None = strawberry.field(
            default=None,
            description="Text in the name or e-mail, in any script, case and accents aside.",
        )
        created_after: datetime.datetime | None = strawberry.field(
            default=None, description="Created at or after this time."
        )
        created_before: datetime.datetime | None = strawberry.field(
            default=None, description="Created before this time."
        )
        updated_after: datetime.datetime | None = strawberry.field(
            default=None, description="Last changed at or after this time."
        )
        updated_before: datetime.datetime | None = strawberry.field(
            default=None, description="Last changed before this time."
        )
        deleted: core.DeletedState = strawberry.field(
            default=core.DeletedState.ACTIVE,
            description="Active customers (the default), deleted ones, or both.",
        )
        has_interaction: InteractionFilter | None = strawberry.field(  # type: ignore[valid-type]
            default=None, description="Has at least one interaction matching this."
        )
        contact_search: str | None = strawberry.field(
            default=None,
            description="Has a contact whose name or e-mail contains this (as `search`).",
        )
        has_open_need: bool | None = strawberry.field(
            default=None, description="Has (true) or has no (false) open or in-progress need."
        )

    def customer_query(
        f: CustomerFilter | None, scope: queries.CustomerScope | None
    ) -> queries.CustomerQuery:
        if f is None:
            return queries.CustomerQuery(kinds=every_kind, scope=scope)
        check_text("filter.search", f.search)
        check_text("filter.contactSearch", f.contact_search)
        check_text("filter.stages", *(f.stages or ()))
        return queries.CustomerQuery(
            scope=scope,
            team_ids=decode_ids(f.team_ids, "Team", "filter.teamIds"),
            kinds=tuple(k.value for k in f.kinds or ()) or every_kind,
            any_role=bool(f.kinds) and not f.primary_kind_only,
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

    return Filters(
        interaction_filter=InteractionFilter,
        interaction_match=interaction_match,
        customer_filter=CustomerFilter,
        customer_query=customer_query,
        customer_order=build_customer_order(),
    )
