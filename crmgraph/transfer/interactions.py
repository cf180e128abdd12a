"""Importing interactions: ``logInteraction``'s rules for every row
(:func:`crmgraph.input_checks.interaction_fields`; the channel one of the
``InteractionChannel`` values, plugins' channels included; the direction
``INBOUND`` or ``OUTBOUND``; ``purpose`` empty or ``MARKETING`` / ``SERVICE``,
and an outbound marketing one only with consent, one statement per such row:
:func:`crmgraph.privacy.consent.marketing_refusal`), its customer found by :mod:`.refs` and its
contact, when the row names one (``contact.ref``, ``contact``, ``contact.email``), among that
customer's contacts.

An interaction row with a ``ref`` repeats the interaction that came with it
(:mod:`.related`); one without repeats another with the same customer, time
(``occurred_at``, to the microsecond, in UTC), channel, direction and
subject: the same contact recorded twice, as an import run twice would.
A row without ``occurred_at`` happened now, as with ``logInteraction``.
"""

from __future__ import annotations

import datetime
from collections.abc import Hashable, Sequence
from decimal import Decimal
from typing import Any

from crmgraph import input_checks
from crmgraph.db import queries, writes
from crmgraph.input_checks import InteractionDirection
from crmgraph.privacy.consent import MARKETING, OUTBOUND, PURPOSES, marketing_refusal
from crmgraph.transfer.coerce import cell, typed
from crmgraph.transfer.importer import ImportContext, ImportOptions
from crmgraph.transfer.references import RefBook
from crmgraph.transfer.refs import CONTACT_FIELDS, ContactRef, find_contacts
from crmgraph.transfer.related import Draft, RelatedImport
from crmgraph.validation import Errors, camel

DIRECTIONS = tuple(d.value for d in InteractionDirection)
PAIRS_PER_STATEMENT = 500
TYPED: dict[str, type] = {
    "occurred_at": datetime.datetime,
    "subject": str,
    "notes": str,
    "outcome": str,
    "satisfaction": int,
    "amount": Decimal,
}


class InteractionImport(RelatedImport):
    name = "interactions"
    what = "interaction"
    type_name = "Interaction"
    own_fields = ("channel", "direction", "purpose", *TYPED, *CONTACT_FIELDS)
    required = ("channel", "direction", "subject")

    def __init__(self, ctx: ImportContext, options: ImportOptions) -> None:
        super().__init__(ctx, options)
        self.contacts = RefBook(ctx.db, "Contact", None)

    async def prepare(self) -> None:
        await super().prepare()
        self.contacts = RefBook(self.ctx.db, "Contact", self.book.origin)

    def check(self, errors: Errors, cells: dict[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {
            "contact": None,
            "channel": self.choice(errors, "channel", cells, self.catalog.channels),
            "direction": self.choice(errors, "direction", cells, DIRECTIONS),
        }
        data = {
            name: typed(errors, camel(name), kind, cells.get(name)) for name, kind in TYPED.items()
        }
        values |= input_checks.interaction_fields(errors, data, writes.now())
        purpose = cell(cells.get("purpose"))  # not stated: not marketing, as logInteraction
        values["purpose"] = self.choice(errors, "purpose", cells, PURPOSES) if purpose else None
        return values

    @staticmethod
    def choice(
        errors: Errors, name: str, cells: dict[str, str], known: Sequence[str]
    ) -> str | None:
        """An enum value as the GraphQL input takes it (any case here)."""
        text = cell(cells.get(name))
        if text is None:
            errors.add(name, f"{name} is required", "REQUIRED")
            return None
        if text.upper() not in known:
            errors.add(
                name, f"unknown {name} {text!r} (known: {', '.join(known)})", "INVALID_CHOICE"
            )
            return None
        return text.upper()

    async def link(self, drafts: Sequence[Draft]) -> None:
        naming = [(d, ContactRef.of(d.cells)) for d in drafts]
        naming = [(d, ref) for d, ref in naming if ref.given]
        found = await find_contacts(
            self.ctx.db, [(d.customer, ref) for d, ref in naming], self.contacts
        )
        for (draft, _), contact in zip(naming, found, strict=True):
            if isinstance(contact, list):
                draft.errors.problems.extend(contact)
            else:
                draft.values["contact"] = contact
        for draft in drafts:  # as logInteraction: outbound marketing needs consent
            v = draft.values
            if (v["direction"], v["purpose"]) == (OUTBOUND, MARKETING) and v["channel"]:
                refusal = await marketing_refusal(
                    self.ctx.db, draft.customer, v["contact"], v["channel"]
                )
                if refusal is not None:
                    draft.errors.problems.append(refusal)

    def duplicate_key(self, draft: Draft) -> Hashable | None:
        v = draft.values
        return (draft.customer, v["occurred_at"], v["channel"], v["direction"], v["subject"])

    async def existing_keys(self, drafts: Sequence[Draft]) -> set[Hashable]:
        """Read by exact (customer, occurred_at) pairs, each answered from the
        (customer, occurred_at) index: a time range would span the table as
        soon as a batch repeats an old row."""
        pairs = sorted({(d.customer, d.values["occurred_at"]) for d in drafts})
        found: set[Hashable] = set()
        for start in range(0, len(pairs), PAIRS_PER_STATEMENT):
            chunk = pairs[start : start + PAIRS_PER_STATEMENT]
            where = " OR ".join("(customer = {} AND occurred_at = {})" for _ in chunk)
            rows = await self.ctx.db.fetch(
                "SELECT customer, occurred_at, channel, direction, subject FROM interaction "
                f"WHERE {where}",
                *(value for pair in chunk for value in pair),
            )
            found |= {
                (r["customer"], queries.read_timestamp(r["occurred_at"]), r["channel"],
                 r["direction"], r["subject"])
                for r in rows
            }  # fmt: skip
        return found

    async def write(self, drafts: Sequence[Draft]) -> list[int]:
        return await self.insert_recorded(
            "interaction",
            drafts,
            "interaction.logged",
            lambda pk, d: writes.interaction_logged_payload(d.customer, pk, d.values),
            stamps=("created_at",),
        )
