"""Importing contacts: ``addContact``'s rules for every row
(:func:`crmgraph.input_checks.contact_fields`, the guarded profile fields for
the caller), its customer found by :mod:`.refs`.

A contact row with a ``ref`` repeats the contact that came with it
(:mod:`.related`); one without repeats another at the same customer with the
same e-mail, compared normalised; without an e-mail it repeats nothing. A
row marked ``is_primary`` becomes its customer's primary contact, as
``addContact`` makes it: the customer's other contacts stop being primary
(the last such row of the file wins).
"""

from __future__ import annotations

import datetime
from collections.abc import Hashable, Sequence
from typing import Any

from crmgraph import input_checks
from crmgraph.db import queries, writes
from crmgraph.db.normalize import normalize_email
from crmgraph.input_checks import guarded_problems
from crmgraph.transfer.coerce import typed
from crmgraph.transfer.related import Draft, RelatedImport, given
from crmgraph.validation import Errors, camel

COLUMNS: dict[str, type] = {
    "name": str,
    "email": str,
    "phone": str,
    "job_title": str,
    "is_primary": bool,
    "notes": str,
    "birthday": datetime.date,
    "home_address": str,
}


class ContactImport(RelatedImport):
    name = "contacts"
    what = "contact"
    type_name = "Contact"
    own_fields = tuple(COLUMNS)
    required = ("name",)

    def check(self, errors: Errors, cells: dict[str, str]) -> dict[str, Any]:
        data = {
            name: typed(errors, camel(name), kind, cells.get(name))
            for name, kind in COLUMNS.items()
        }
        data["is_primary"] = bool(data["is_primary"])  # an empty cell: addContact's default
        today = writes.now().date()
        values = input_checks.contact_fields(errors, data, self.ctx.phone_region, today)
        if self.ctx.access is not None:
            errors.problems.extend(
                guarded_problems(self.ctx.access, "Contact", "", given(cells, COLUMNS))
            )
        return values

    def duplicate_key(self, draft: Draft) -> Hashable | None:
        email = normalize_email(draft.values["email"])
        return (draft.customer, email) if email else None

    async def existing_keys(self, drafts: Sequence[Draft]) -> set[Hashable]:
        where = queries.Where()
        where.add_in("customer", sorted({d.customer for d in drafts}))
        rows = await self.ctx.db.fetch(
            f"SELECT customer, email FROM contact WHERE {where.sql()} AND email IS NOT NULL",
            *where.args,
        )
        return {(row["customer"], normalize_email(row["email"])) for row in rows}

    async def write(self, drafts: Sequence[Draft]) -> list[int]:
        ids = await self.insert_recorded(
            "contact",
            drafts,
            "contact.added",
            lambda pk, d: writes.contact_added_payload(d.customer, pk),
        )
        primary = {
            d.customer: pk for pk, d in zip(ids, drafts, strict=True) if d.values["is_primary"]
        }
        if primary:
            where = queries.Where()
            where.add_in("customer", sorted(primary))
            where.add("is_primary = {}", True)
            keep = queries.Where()
            keep.add_in("id", sorted(primary.values()))
            await self.ctx.db.fetch(
                f"UPDATE contact SET is_primary = {{}} WHERE {where.sql()} AND NOT ({keep.sql()})",
                False,
                *where.args,
                *keep.args,
            )
        return ids
