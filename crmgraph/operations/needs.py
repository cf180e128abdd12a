"""Writing needs, what a customer needs: record one, change one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from crmgraph import input_checks
from crmgraph import validation as v
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.ids import encode_id
from crmgraph.operations.actor import Actor
from crmgraph.operations.customer_checks import hold_live
from crmgraph.operations.runner import Then, nothing, run_write
from crmgraph.registry import Catalog
from crmgraph.validation import Errors, Problem, UserInputError


@dataclass
class NewNeed:
    """A need of customer ``customer``: ``fields`` as sent (plain values)."""

    customer: int
    fields: Mapping[str, Any]
    problems: Sequence[Problem] = ()


@dataclass
class NeedChange:
    """Fields to change on need ``pk`` (left out: as they are)."""

    pk: int
    fields: Mapping[str, Any]
    problems: Sequence[Problem] = ()


async def record_need(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    new: NewNeed,
    *,
    then: Then = nothing,
) -> int:
    """Record what a customer needs."""
    customer = new.customer
    errors = Errors(list(new.problems))
    values = input_checks.need_fields(errors, dict(new.fields))  # the importer's rules too

    async def work() -> int:
        await hold_live(db, actor, customer, "customerId")
        return await writes.insert_recorded(
            db,
            "Need",
            customer,
            values,
            "need.recorded",
            lambda pk: {
                "customerId": encode_id("Customer", customer),
                "needId": encode_id("Need", pk),
            },
        )

    return await run_write(db, actor, work, then, problems=errors.problems)


async def update_need(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    change: NeedChange,
    *,
    then: Then = nothing,
) -> int:
    """Change a need: its status, priority, volume, …"""
    pk, data = change.pk, dict(change.fields)
    errors = Errors(list(change.problems))
    for required in ("title", "priority", "status"):
        if required in data and data[required] is None:
            errors.add(v.camel(required), f"{v.camel(required)} cannot be null", "REQUIRED")
    values = input_checks.need_fields(errors, data)

    async def work() -> int:
        need = await writes.locked_row(db, "need", pk)
        if need is None:
            raise UserInputError.single("id", "need not found", "NOT_FOUND")
        await hold_live(db, actor, need["customer"], "id")
        await writes.update_recorded(db, ("Need", pk), need, values, "need.updated")
        return pk

    return await run_write(db, actor, work, then, problems=errors.problems)
