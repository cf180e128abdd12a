"""Consent in GraphQL: the ``Purpose`` and ``ConsentSource`` enums, the
``Consent`` type (built per schema around its ``InteractionChannel`` enum) and
the ``Customer.consents`` / ``Customer.consentHistory`` resolvers. The rules
are :mod:`crmgraph.privacy.consent`'s.

No ``from __future__ import annotations``: strawberry must see real classes.
"""

import datetime
import enum
import weakref
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.types import Info

from crmgraph.operations import history
from crmgraph.privacy import consent
from crmgraph.schema import core_types as core
from crmgraph.schema import described
from crmgraph.schema.ids import encode_id

SOURCES = {
    "WEB_FORM": "A form on a website (e.g. a newsletter sign-up).",
    "EMAIL": "By e-mail (e.g. a reply or an unsubscribe link).",
    "PHONE": "On the phone.",
    "IN_PERSON": "Face to face.",
    "PAPER": "On a paper form or letter.",
    "IMPORT": "Imported from another system.",
    "API": "Recorded by another system through the API.",
    "OTHER": "Another way.",
}

Purpose = described.enum_type(
    enum.Enum("Purpose", {p: p for p in consent.PURPOSES}),  # type: ignore[misc]
    "Why the organisation contacts someone. Outbound MARKETING needs consent on "
    "the channel; an interaction without a purpose is not marketing.",
    {
        "MARKETING": "To sell or promote: outbound, it needs the person's consent.",
        "SERVICE": "To serve an existing relationship (an order, a ticket, a contract).",
    },
)
ConsentSource = described.enum_type(
    enum.Enum("ConsentSource", {s: s for s in consent.SOURCES}),  # type: ignore[misc]
    "How a consent was given or withdrawn.",
    lambda source: SOURCES.get(source, "Another way."),
)


@dataclass(frozen=True)
class ConsentTypes:
    consent: type
    consents: Any  # resolver of Customer.consents
    history: Any  # resolver of Customer.consentHistory

    def from_row(self, row: dict[str, Any]) -> Any:
        return self.consent.from_row(row)  # type: ignore[attr-defined]


# one Consent type per schema (per InteractionChannel enum): the privacy
# plugin's Customer fields and its mutations return the same type
_BUILT: "weakref.WeakKeyDictionary[Any, ConsentTypes]" = weakref.WeakKeyDictionary()


def build_consent_types(channel_enum: Any) -> ConsentTypes:
    """``Consent`` and the resolvers of ``Customer.consents`` and
    ``Customer.consentHistory``, around this schema's ``InteractionChannel``."""
    if channel_enum not in _BUILT:
        _BUILT[channel_enum] = _consent_types(channel_enum)
    return _BUILT[channel_enum]


async def statements(root: Any, info: Info) -> list[dict[str, Any]]:
    """The customer's consent statements, oldest first: those recorded by its
    moment for a customer read as it was (``asOf``)."""
    past = root.__dict__.get("past")
    if past is not None:
        return await history.consents_at(info.context.db, past)
    return await info.context.loaders.consents.load(root.pk)


def _consent_types(channel_enum: Any) -> ConsentTypes:
    @strawberry.type(
        description="A grant or withdrawal of consent to be contacted on a channel for a "
        "purpose, by a customer or one of its contacts."
    )
    class Consent:
        id: strawberry.ID = strawberry.field(description="Global ID of the statement.")
        recorded_by_pk: strawberry.Private[int | None]
        customer_id: strawberry.ID = strawberry.field(
            description="Global ID of the customer it is about."
        )
        contact_id: strawberry.ID | None = strawberry.field(
            description="The contact who stated it; null: the customer itself."
        )
        channel: channel_enum = strawberry.field(description="The channel it covers.")  # type: ignore[valid-type]
        purpose: Purpose = strawberry.field(description="The purpose it covers.")  # type: ignore[valid-type]
        granted: bool = strawberry.field(description="False: withdrawn (or refused).")
        source: ConsentSource = strawberry.field(description="How it was given or withdrawn.")  # type: ignore[valid-type]
        evidence: str | None = strawberry.field(
            description="Where the statement can be checked (a form id, a letter's reference)."
        )
        at: datetime.datetime = strawberry.field(description="When it was given or withdrawn.")

        @strawberry.field(description="Who recorded it (null: the command line or an import).")
        async def recorded_by(self, info: Info) -> core.User | None:
            if self.recorded_by_pk is None:
                return None
            row = await info.context.loaders.user.load(self.recorded_by_pk)
            return core.User.from_row(row) if row else None

        @classmethod
        def from_row(cls, row: dict[str, Any]) -> "Consent":
            try:
                channel = channel_enum(row["channel"])
            except ValueError:  # a channel whose plugin was removed
                channel = channel_enum("OTHER")
            obj = cls.__new__(cls)
            obj.__dict__.update(
                id=encode_id("ConsentChange", row["id"]),
                recorded_by_pk=row["recorded_by"],
                customer_id=encode_id("Customer", row["customer"]),
                contact_id=encode_id("Contact", row["contact"]) if row["contact"] else None,
                channel=channel,
                purpose=Purpose(row["purpose"]),
                granted=bool(row["granted"]),
                source=ConsentSource(row["source"]),
                evidence=row["evidence"],
                at=row["at"],
            )
            return obj

    async def consents(root: Any, info: Info) -> list[Consent]:
        rows = await statements(root, info)
        return [Consent.from_row(row) for row in consent.in_force(rows)]

    async def consent_history(root: Any, info: Info) -> list[Consent]:
        rows = await statements(root, info)
        return [Consent.from_row(row) for row in sorted(rows, key=lambda r: -r["id"])]

    return ConsentTypes(Consent, consents, consent_history)
