"""The Subscription root: live customer events over graphql-transport-ws.

A subscriber receives the events of the customers it may see, with the same
row scope as queries (an agent: their own and their teams' customers), after
the write commits (crmgraph.live), for as long as its key stays valid
(crmgraph.auth_changes). Filters apply to the customer as it is
when the event is delivered (its current type and roles, stage and owner).
"""

import asyncio
import contextlib
import datetime
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, cast

import strawberry
from graphql import DocumentNode, GraphQLError
from strawberry.scalars import JSON
from strawberry.types import Info

from crmgraph.auth_changes import session_of
from crmgraph.coordinates import field_coordinates
from crmgraph.extension_points import Event
from crmgraph.live import Subscribers
from crmgraph.schema.ids import encode_id
from crmgraph.schema.loaders import Loaders
from crmgraph.schema.permissions import forbidden_error

DecodeIds = Callable[[list[strawberry.ID] | None, str, str], tuple[int, ...]]


@dataclass(frozen=True)
class EventCriteria:
    """A subscription's filter, decoded and checked once when it starts."""

    types: frozenset[str]
    kinds: frozenset[str]
    stages: frozenset[str]
    owners: frozenset[int]
    customers: frozenset[int]

    def wants_type(self, event: Event) -> bool:
        return not self.types or event.type in self.types

    def wants_customer(self, row: dict[str, Any], event: Event) -> bool:
        return (
            (not self.kinds or self.wants_kinds(row, event))
            and (not self.stages or row["stage"] in self.stages)
            and (not self.owners or row["owner"] in self.owners)
            and (not self.customers or row["id"] in self.customers)
        )

    def wants_kinds(self, row: dict[str, Any], event: Event) -> bool:
        """The party holds a role of one of the kinds (as the customers list's
        ``kinds`` matches), or the event is about a role of one of them (a
        ``customer.*`` event's ``kind``: an ended role is held no longer)."""
        if self.kinds.intersection(row.get("held_kinds") or (row["kind"],)):
            return True
        return event.type.startswith("customer.") and event.payload.get("kind") in self.kinds


async def matching_events(info: Info, criteria: EventCriteria) -> AsyncGenerator[Event, None]:
    """Events from now on that pass the filter and concern a customer the caller sees.

    The caller is the connection's principal as it is now: when its key is
    revoked the connection is closed and nothing more is yielded; when its
    role or teams change (:mod:`crmgraph.auth_changes`) the next event is
    scoped anew and the subscription checks its fields again at once."""
    subscribers: Subscribers | None = info.context.live
    if subscribers is None:
        raise GraphQLError("live events are not available in this process")
    session = session_of(info.context)
    checked = info.context.principal  # whose rights the fields were checked against

    def fields_allowed_now() -> None:
        nonlocal checked
        if info.context.principal is not checked:
            refuse_forbidden_fields(info)
            checked = info.context.principal

    async with subscribers.subscription() as queue:

        def recheck() -> None:
            with contextlib.suppress(asyncio.QueueFull):  # full: it is being dropped anyway
                queue.put_nowait(cast(Any, RECHECK))

        if session is not None:
            session.wakers.add(recheck)
        try:
            while True:
                event = await queue.get()
                if session is not None and session.closed:
                    await asyncio.Future()  # the connection is closing: wait to be cancelled
                if event is RECHECK:
                    fields_allowed_now()
                    continue
                if event is None:
                    raise GraphQLError(
                        "this subscription fell too far behind and was dropped; subscribe again",
                        extensions={"code": "SUBSCRIBER_TOO_SLOW"},
                    )
                if not criteria.wants_type(event):
                    continue
                row = await subscribers.customer_of(info.context.db, event)
                if session is not None:
                    # a revocation or a role change heard before this event applies first
                    await session.watcher.settled.wait()
                    if session.closed:
                        await asyncio.Future()
                    fields_allowed_now()
                if row is None or not info.context.access.sees(row):
                    continue
                if criteria.wants_customer(row, event):
                    yield event
        finally:
            if session is not None:
                session.wakers.discard(recheck)


# put in a subscription's queue when its connection's principal changed
RECHECK = object()


def refuse_forbidden_fields(info: Info) -> None:
    """The check FieldPermissions made when the subscription started, made
    again with the connection's current rights."""
    raw = info._raw_info  # graphql-core's: strawberry's Info does not pass the fragments on
    document = DocumentNode(definitions=(raw.operation, *raw.fragments.values()))
    coordinates = field_coordinates(raw.schema, document)
    denied = info.context.access.denied_fields(set(coordinates))
    if denied:
        raise forbidden_error(denied)


def build_subscription_type(
    kind_enum: Any,
    customer_interface: type,
    load_customer: Callable[[Info, int], Awaitable[Any]],
    decode_ids: DecodeIds,
    stage_keys: Sequence[str],
) -> type:
    CustomerBase = customer_interface
    CustomerKind = kind_enum
    known_stages = frozenset(stage_keys)

    @strawberry.type(description="A change to a customer, as written in the outbox.")
    class CustomerEvent:
        id: strawberry.ID = strawberry.field(
            description="The event's id in the outbox: increasing, the same in webhooks."
        )
        type: str = strawberry.field(
            description="`customer.created`, `customer.stage_changed`, `interaction.logged`, …"
        )
        customer_id: strawberry.ID = strawberry.field(
            description="Global ID of the customer the event is about."
        )
        occurred_at: datetime.datetime = strawberry.field(
            description="When the change was committed (UTC)."
        )
        payload: JSON = strawberry.field(description="The event's data (its type decides it).")
        pk: strawberry.Private[int]

        @strawberry.field(description="The customer as it is now (null if no longer visible).")
        async def customer(self, info: Info) -> CustomerBase | None:  # type: ignore[valid-type]
            return await load_customer(info, self.pk)

    @strawberry.input(description="Which customer events to receive; all given must match.")
    class CustomerEventFilter:
        types: list[str] | None = strawberry.field(
            default=None, description="Event types, e.g. `customer.stage_changed`."
        )
        kinds: list[CustomerKind] | None = strawberry.field(
            default=None,
            description="Only parties holding a role of one of these types (their primary kind "
            "or a further role, as the customers list's `kinds`), and events about a role of "
            "one of them (`customer.role_ended` of a role no longer held).",
        )  # type: ignore[valid-type]
        stages: list[str] | None = strawberry.field(
            default=None,
            description="Only customers at these stage keys (an unknown key is refused): the "
            "primary kind's stage.",
        )
        owner_id: strawberry.ID | None = strawberry.field(
            default=None, description="Only customers owned by this user (global ID)."
        )
        customer_id: strawberry.ID | None = strawberry.field(
            default=None, description="Only this customer (global ID)."
        )

    def criteria(f: "CustomerEventFilter | None") -> EventCriteria:
        if f is None:
            return EventCriteria(frozenset(), frozenset(), frozenset(), frozenset(), frozenset())
        unknown = sorted(set(f.stages or ()) - known_stages)
        if unknown:
            raise GraphQLError(
                f"filter.stages: unknown stage(s) {', '.join(map(repr, unknown))}",
                extensions={"code": "BAD_USER_INPUT"},
            )
        owner = [f.owner_id] if f.owner_id is not None else None
        customer = [f.customer_id] if f.customer_id is not None else None
        return EventCriteria(
            types=frozenset(f.types or ()),
            kinds=frozenset(k.value for k in f.kinds or ()),
            stages=frozenset(f.stages or ()),
            owners=frozenset(decode_ids(owner, "User", "filter.ownerId")),
            customers=frozenset(decode_ids(customer, "Customer", "filter.customerId")),
        )

    @strawberry.type
    class Subscription:
        @strawberry.subscription(
            description=(
                "Customer events as they are committed, for the customers you may see "
                "(graphql-transport-ws on /graphql; authenticate in connection_init with "
                '`{"Authorization": "Bearer <API key>"}`). Missed events are not replayed.'
            )
        )
        async def customer_events(
            self,
            info: Info,
            filter: Annotated[
                CustomerEventFilter | None,
                strawberry.argument(
                    description="Which events to receive (all you may see when null)."
                ),
            ] = None,
        ) -> AsyncGenerator[CustomerEvent, None]:
            wanted = criteria(filter)
            async for event in matching_events(info, wanted):
                # each event is resolved with fresh reads, not what the
                # connection's earlier events loaded
                info.context.loaders = Loaders(info.context.db)
                assert event.customer_id is not None
                yield CustomerEvent(
                    id=strawberry.ID(str(event.id)),
                    type=event.type,
                    customer_id=strawberry.ID(encode_id("Customer", event.customer_id)),
                    occurred_at=event.created_at,
                    payload=event.payload,
                    pk=event.customer_id,
                )

    return Subscription
