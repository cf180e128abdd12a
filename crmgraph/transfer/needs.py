"""Importing needs: ``recordNeed``'s rules for every row
(:func:`crmgraph.input_checks.need_fields`; ``priority`` and ``status`` among
the ``NeedPriority`` / ``NeedStatus`` values, ``MEDIUM`` and ``OPEN`` when
empty, as the mutation's defaults), its customer found by :mod:`.refs`.

A need row with a ``ref`` repeats the need that came with it
(:mod:`.related`); one without repeats a need of the same customer with the
same title, category and due date. Each need written leaves what
``recordNeed`` leaves: an audit entry and a ``need.recorded`` event.
"""

from __future__ import annotations

import datetime
from collections.abc import Hashable, Sequence
from typing import Any

from crmgraph import input_checks
from crmgraph.db import queries
from crmgraph.ids import encode_id
from crmgraph.input_checks import NeedPriority, NeedStatus
from crmgraph.transfer.coerce import cell, typed
from crmgraph.transfer.related import Draft, RelatedImport
from crmgraph.validation import Errors, camel

TYPED: dict[str, type] = {
    "title": str,
    "description": str,
    "category": str,
    "consumption_type": str,
    "volume": float,
    "unit": str,
    "due_date": datetime.date,
}
CHOICES = {
    "priority": (tuple(p.value for p in NeedPriority), NeedPriority.MEDIUM.value),
    "status": (tuple(s.value for s in NeedStatus), NeedStatus.OPEN.value),
}


def as_date(value: datetime.date | str | None) -> datetime.date | None:
    """A date column as read (SQLite may hand back its text)."""
    return datetime.date.fromisoformat(value) if isinstance(value, str) else value


class NeedImport(RelatedImport):
    name = "needs"
    what = "need"
    type_name = "Need"
    own_fields = (*TYPED, *CHOICES)
    required = ("title",)

    def check(self, errors: Errors, cells: dict[str, str]) -> dict[str, Any]:
        data = {
            name: typed(errors, camel(name), kind, cells.get(name)) for name, kind in TYPED.items()
        }
        for name, (known, default) in CHOICES.items():
            text = (cell(cells.get(name)) or default).upper()
            if text not in known:
                errors.add(
                    name, f"unknown {name} {text!r} (known: {', '.join(known)})", "INVALID_CHOICE"
                )
            data[name] = text
        values = input_checks.need_fields(errors, data)
        values.setdefault("due_date", None)  # every row has each column (one INSERT)
        return values

    def duplicate_key(self, draft: Draft) -> Hashable | None:
        v = draft.values
        return (draft.customer, v["title"], v["category"], v["due_date"])

    async def existing_keys(self, drafts: Sequence[Draft]) -> set[Hashable]:
        where = queries.Where()
        where.add_in("customer", sorted({d.customer for d in drafts}))
        rows = await self.ctx.db.fetch(
            f"SELECT customer, title, category, due_date FROM need WHERE {where.sql()}",
            *where.args,
        )
        return {(r["customer"], r["title"], r["category"], as_date(r["due_date"])) for r in rows}

    async def write(self, drafts: Sequence[Draft]) -> list[int]:
        return await self.insert_recorded(
            "need",
            drafts,
            "need.recorded",
            lambda pk, d: {
                "customerId": encode_id("Customer", d.customer),
                "needId": encode_id("Need", pk),
            },
        )
