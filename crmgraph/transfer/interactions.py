"""Importing interactions: ``logInteraction``'s rules for every row
(:func:`crmgraph.input_checks.interaction_fields`; the channel one of the
``InteractionChannel`` values, plugins' channels included; the direction
``INBOUND`` or ``OUTBOUND``), its customer found by :mod:`.refs` and its
contact, when the row names one (``contact``, ``contact.email``), among that
customer's contacts.

An interaction repeats another when both have the same customer, time
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
from crmgraph.db.bulk import insert_rows
from crmgraph.schema.core_types import InteractionDirection
from crmgraph.schema.mutations import camel_keys
from crmgraph.transfer.coerce import cell, typed
from crmgraph.transfer.refs import CONTACT_FIELDS, ContactRef, find_contacts
from crmgraph.transfer.related import Draft, RelatedImport
from crmgraph.transfer.traces import Trace, record
from crmgraph.validation import Errors, camel

DIRECTIONS = tuple(d.value for d in InteractionDirection)
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
    own_fields = ("channel", "direction", *TYPED, *CONTACT_FIELDS)
    required = ("channel", "direction", "subject")

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
        found = await find_contacts(self.ctx.db, [(d.customer, ref) for d, ref in naming])
        for (draft, _), contact in zip(naming, found, strict=True):
            if isinstance(contact, list):
                draft.errors.problems.extend(contact)
            else:
                draft.values["contact"] = contact

    def duplicate_key(self, draft: Draft) -> Hashable | None:
        v = draft.values
        return (draft.customer, v["occurred_at"], v["channel"], v["direction"], v["subject"])

    async def existing_keys(self, drafts: Sequence[Draft]) -> set[Hashable]:
        where = queries.Where()
        where.add_in("customer", sorted({d.customer for d in drafts}))
        times = [d.values["occurred_at"] for d in drafts]
        where.add("occurred_at >= {}", min(times))
        where.add("occurred_at <= {}", max(times))
        rows = await self.ctx.db.fetch(
            "SELECT customer, occurred_at, channel, direction, subject FROM interaction "
            f"WHERE {where.sql()}",
            *where.args,
        )
        return {
            (r["customer"], queries.read_timestamp(r["occurred_at"]), r["channel"],
             r["direction"], r["subject"])
            for r in rows
        }  # fmt: skip

    async def write(self, drafts: Sequence[Draft]) -> None:
        db, at = self.ctx.db, writes.now()
        ids = await insert_rows(
            db,
            "interaction",
            [{"customer": d.customer, **d.values, "created_at": at} for d in drafts],
        )
        traces = [
            Trace(
                pk,
                d.customer,
                writes.field_changes(None, camel_keys(d.values)),
                writes.interaction_logged_payload(d.customer, pk, d.values),
            )
            for pk, d in zip(ids, drafts, strict=True)
        ]
        await record(db, self.ctx.actor, "interaction.logged", "Interaction", traces, at)
