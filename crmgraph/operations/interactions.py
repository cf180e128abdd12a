"""Logging interactions: a contact with a customer on any channel, refused
when it is outbound marketing without the consent it needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from crmgraph import input_checks
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.input_checks import camel_keys
from crmgraph.operations.actor import Actor
from crmgraph.operations.customer_checks import hold_live
from crmgraph.operations.runner import Then, nothing, run_write
from crmgraph.privacy.consent import MARKETING, OUTBOUND, marketing_refusal
from crmgraph.registry import Catalog
from crmgraph.validation import Errors, Problem, UserInputError


@dataclass
class NewInteraction:
    """An interaction with customer ``customer`` (and maybe its contact
    ``contact``): ``fields`` as sent, with ``channel``, ``direction`` and
    ``purpose`` (None: not stated) as their plain values."""

    customer: int
    contact: int | None
    fields: Mapping[str, Any]
    problems: Sequence[Problem] = ()


async def log_interaction(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    new: NewInteraction,
    *,
    then: Then = nothing,
) -> int:
    """Record a contact with a customer on any channel."""
    customer, contact, data = new.customer, new.contact, dict(new.fields)
    errors = Errors(list(new.problems))
    at = writes.now()
    values = {
        "customer": customer,
        "contact": contact,
        "channel": data["channel"],
        "direction": data["direction"],
        **input_checks.interaction_fields(errors, data, at),
        "created_at": at,
        "purpose": data.get("purpose"),
    }

    async def work() -> int:
        await hold_live(db, actor, customer, "customerId")
        if contact is not None:
            await writes.contact_of(db, contact, customer)
        if (values["direction"], values["purpose"]) == (OUTBOUND, MARKETING):
            refusal = await marketing_refusal(db, customer, contact, values["channel"])
            if refusal is not None:
                raise UserInputError([refusal])
        pk = await writes.insert(db, "interaction", values, keep=True)
        logged = {k: val for k, val in values.items() if k not in ("customer", "created_at")}
        await writes.record_change(
            db,
            "interaction.logged",
            ("Interaction", pk),
            customer,
            writes.field_changes(None, camel_keys(logged)),
            writes.interaction_logged_payload(customer, pk, values),
        )
        return pk

    return await run_write(db, actor, work, then, problems=errors.problems)
