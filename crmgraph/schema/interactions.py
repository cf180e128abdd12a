"""The Interaction type of one schema build, with its channel enum (channels
come from plugins) and its page types."""

import datetime
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import strawberry

from crmgraph.schema import consent_types
from crmgraph.schema import core_types as core
from crmgraph.schema.pagination import PageInfo


@dataclass(frozen=True)
class InteractionTypes:
    channel_enum: type[enum.Enum]
    interaction: type
    edge: type
    connection: type


def build_interaction_types(channels: Sequence[str]) -> InteractionTypes:
    InteractionChannel = strawberry.enum(
        enum.Enum("InteractionChannel", {c: c for c in channels}),  # type: ignore[misc]
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

    return InteractionTypes(
        channel_enum=InteractionChannel,
        interaction=Interaction,
        edge=InteractionEdge,
        connection=InteractionConnection,
    )
