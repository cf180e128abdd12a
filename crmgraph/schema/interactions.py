"""The Interaction type of one schema build, with its channel enum (channels
come from plugins) and its page types."""

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import strawberry

from crmgraph import core_fields
from crmgraph.schema import consent_types, described
from crmgraph.schema import core_types as core
from crmgraph.schema.page_types import page_types


@dataclass(frozen=True)
class InteractionTypes:
    channel_enum: type[enum.Enum]
    interaction: type  # its column-backed fields are crmgraph.core_fields.INTERACTION
    edge: type
    connection: type


def interaction_enums(channel_enum: type[enum.Enum]) -> dict[str, Any]:
    """The enums an Interaction's description names, with this build's channels."""
    return {**core.CORE_ENUMS, "InteractionChannel": channel_enum, "Purpose": consent_types.Purpose}


CHANNELS = {
    "EMAIL": "An e-mail.",
    "PHONE": "A phone call (or a text message).",
    "MEETING": "A meeting in person or by video.",
    "CHAT": "A chat or instant-messaging conversation.",
    "WEB": "On our website: a form, an order, a self-service action.",
    "SOCIAL": "On a social network.",
    "STORE": "In a shop or branch.",
    "LETTER": "A letter by post.",
    "OTHER": "Any other channel, and a channel whose plugin was removed.",
}


def build_interaction_types(channels: Sequence[str]) -> InteractionTypes:
    InteractionChannel = described.enum_type(
        enum.Enum("InteractionChannel", {c: c for c in channels}),  # type: ignore[misc]
        "Where an interaction happened; plugins may add channels.",
        lambda name: CHANNELS.get(name, "A channel a plugin added."),
    )

    @strawberry.type(description="A recorded contact with a customer on some channel.")
    @described.columns(core_fields.INTERACTION, interaction_enums(InteractionChannel))
    class Interaction(core.Node):
        pk: strawberry.Private[int]

    pages = page_types("Interaction", Interaction)

    return InteractionTypes(
        channel_enum=InteractionChannel,
        interaction=Interaction,
        edge=pages.edge,
        connection=pages.connection,
    )
