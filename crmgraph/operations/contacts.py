"""Writing contacts, the people at a customer: add one, change one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from crmgraph import input_checks
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.input_checks import guarded_problems
from crmgraph.operations.actor import Actor
from crmgraph.operations.customer_checks import hold_live
from crmgraph.operations.runner import Then, nothing, run_write
from crmgraph.registry import Catalog
from crmgraph.validation import Errors, Problem


@dataclass
class NewContact:
    """A contact to add at customer ``customer``: ``fields`` as sent."""

    customer: int
    fields: Mapping[str, Any]
    problems: Sequence[Problem] = ()


@dataclass
class ContactChange:
    """Fields to change on contact ``pk`` (left out: as they are)."""

    pk: int
    fields: Mapping[str, Any]
    problems: Sequence[Problem] = ()


def contact_values(
    actor: Actor, errors: Errors, fields: Mapping[str, Any], creating: bool
) -> dict[str, Any]:
    """The contact fields sent, checked; FORBIDDEN for a guarded one (the
    profile fields) the actor may not write."""
    data = dict(fields)
    values = input_checks.contact_fields(errors, data, actor.phone_region, writes.now().date())
    errors.problems.extend(guarded_problems(actor.access, "Contact", "", data, creating))
    return values


async def add_contact(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    new: NewContact,
    *,
    then: Then = nothing,
) -> int:
    """Add a person at a customer; a primary one takes over from the last."""
    customer = new.customer
    errors = Errors(list(new.problems))
    values = contact_values(actor, errors, new.fields, creating=True)

    async def work() -> int:
        await hold_live(db, actor, customer, "customerId")
        pk = await writes.insert_recorded(
            db,
            "Contact",
            customer,
            values,
            "contact.added",
            lambda pk: writes.contact_added_payload(customer, pk),
        )
        if values.get("is_primary"):
            await writes.clear_primary_contact(db, customer, pk)
        return pk

    return await run_write(db, actor, work, then, problems=errors.problems)


async def update_contact(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    change: ContactChange,
    *,
    then: Then = nothing,
) -> int:
    """Change a contact; fields left out stay as they are."""
    pk = change.pk
    errors = Errors(list(change.problems))
    values = contact_values(actor, errors, change.fields, creating=False)

    async def work() -> int:
        current = await writes.contact_row(db, pk)
        await hold_live(db, actor, current["customer"], "id")
        await writes.update_recorded(db, ("Contact", pk), current, values, "contact.updated")
        if values.get("is_primary"):
            await writes.clear_primary_contact(db, current["customer"], pk)
        return pk

    return await run_write(db, actor, work, then, problems=errors.problems)
