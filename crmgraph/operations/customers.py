"""Writing customers: create, update, assign, soft-delete and restore, and
move through their lifecycle; each one transaction with its audit entry and
event (a move's are the lifecycle engine's, :mod:`crmgraph.lifecycle`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from crmgraph import validation as v
from crmgraph.access import CUSTOMER_DELETE, CUSTOMER_WRITE
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.db.queries import load_json
from crmgraph.dedupe import matching
from crmgraph.extension_points import CustomerWrite
from crmgraph.hook_contexts import CustomerSnapshot, Facts
from crmgraph.ids import encode_id
from crmgraph.input_checks import attribute_fields, camel_keys
from crmgraph.lifecycle import Lifecycles, refusal_problems
from crmgraph.operations import new_customers, roles
from crmgraph.operations.actor import Actor
from crmgraph.operations.customer_checks import (
    MATCHED_FIELDS,
    attribute_changes,
    check_assignment,
    customer_values,
    foreign_attribute_inputs,
    guarded_attribute_problems,
    leading_problems,
    live,
    plugin_validation,
    screen_new_customer,
)
from crmgraph.operations.runner import Then, nothing, run_operation, run_write
from crmgraph.registry import Catalog
from crmgraph.validation import Errors, Problem, UserInputError

# attribute inputs sent, by customer kind (None: sent as null)
AttributeInputs = Mapping[str, Mapping[str, Any] | None]


@dataclass
class NewCustomerInput:
    """A customer to create: ``fields`` holds the core fields sent (name,
    email, phone, and the decoded ``owner`` and ``team``); ``problems`` those
    found decoding the input's IDs."""

    kind: str
    fields: Mapping[str, Any]
    attributes: AttributeInputs = field(default_factory=dict)
    allow_duplicate: bool = False
    problems: Sequence[Problem] = ()


@dataclass
class CustomerChange:
    """Fields to change on customer ``pk`` (left out: as they are)."""

    pk: int
    expected_version: int
    fields: Mapping[str, Any]
    attributes: AttributeInputs = field(default_factory=dict)
    problems: Sequence[Problem] = ()


@dataclass
class Assignment:
    """A new owner, team or both (``fields``: decoded ``owner``, ``team``)."""

    pk: int
    fields: Mapping[str, Any]
    reason: str | None = None
    expected_version: int | None = None
    problems: Sequence[Problem] = ()


async def create_customer(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    new: NewCustomerInput,
    *,
    then: Then = nothing,
    shown: list[matching.Candidate] | None = None,
) -> int:
    """Create a customer of any kind in its initial stage; returns its pk.
    ``shown`` receives the likely duplicates the actor may see, also when the
    type's ``block`` rule refuses the create for them (code DUPLICATE)."""
    kind = new.kind
    errors = leading_problems(new.problems)
    descriptor = catalog.customer_type(kind)
    values = customer_values(actor, errors, new.fields, new.problems)
    foreign_attribute_inputs(errors, new.attributes, kind)
    sent = dict(new.attributes.get(kind) or {})
    errors.problems.extend(guarded_attribute_problems(actor, catalog, kind, sent, creating=True))
    attrs = v.attributes(errors, v.camel(kind), descriptor, sent)
    if values.get("owner") is None and actor.access.scope is not None:
        # a caller who sees only their own customers owns what they create
        values["owner"] = actor.user_id
    duplicates = shown if shown is not None else []

    async def work() -> int:
        duplicates.clear()  # a rerun (Database.run_transaction) screens afresh
        await check_assignment(db, actor, values)
        typed = descriptor.decode_attributes(attrs)
        write = CustomerWrite(kind, descriptor, values, typed, existing=None, facts=None)
        await plugin_validation(pm, write)
        probe = await screen_new_customer(
            db, actor, descriptor, values, attrs, new.allow_duplicate, duplicates
        )
        row = new_customers.NewCustomer(kind, values, attrs)
        pk = await new_customers.write_new_customer(db, catalog, row, by=actor.user_id)
        await matching.insert_match_keys(db, {pk: probe}, actor.phone_region)
        await writes.record_change(
            db,
            "customer.created",
            ("Customer", pk),
            pk,
            writes.field_changes(
                None, {"kind": kind, **camel_keys(values), **attribute_fields(kind, attrs)}
            ),
            {"customerId": encode_id("Customer", pk), "kind": kind},
        )
        return pk

    return await run_write(db, actor, work, then, problems=errors.problems)


async def update_customer(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    change: CustomerChange,
    *,
    then: Then = nothing,
) -> int:
    """Change a customer; refused if ``expected_version`` is stale."""
    pk = change.pk
    errors = leading_problems(change.problems)
    values = customer_values(actor, errors, change.fields, change.problems)

    async def work() -> int:
        current = await live(db, actor, pk)
        writes.check_version(current, change.expected_version)
        kind = current["kind"]
        attr_errors = Errors()
        foreign_attribute_inputs(attr_errors, change.attributes, kind)
        attrs = None
        sent = dict(change.attributes.get(kind) or {})
        if kind in change.attributes:
            attr_errors.problems.extend(
                guarded_attribute_problems(actor, catalog, kind, sent, creating=False)
            )
            attrs = v.attributes(
                attr_errors,
                v.camel(kind),
                catalog.customer_type(kind),
                sent,
                load_json(current["attributes"]),
            )
        if attr_errors:
            raise UserInputError(attr_errors.problems)
        await check_assignment(db, actor, values)
        descriptor = catalog.customer_type(kind)
        existing = CustomerSnapshot.from_row(current, descriptor)
        merged = attrs if attrs is not None else load_json(current["attributes"])
        typed = descriptor.decode_attributes(merged)
        write = CustomerWrite(kind, descriptor, values, typed, existing, Facts(db, pk, catalog))
        await plugin_validation(pm, write)
        await writes.update_customer(db, pk, change.expected_version, values, attrs)
        if MATCHED_FIELDS & values.keys() or (attrs is not None and "tax_id" in sent):
            await matching.refresh_match_keys(db, [pk])
        changes = writes.field_changes(
            camel_keys({k: current[k] for k in values}), camel_keys(values)
        )
        if attrs is not None:
            changes |= attribute_changes(kind, load_json(current["attributes"]), attrs)
        await writes.record_change(
            db,
            "customer.updated",
            ("Customer", pk),
            pk,
            changes,
            {"customerId": encode_id("Customer", pk), "kind": kind, "fields": sorted(changes)},
        )
        return pk

    return await run_write(db, actor, work, then, problems=errors.problems)


def ref(row: Mapping[str, Any], column: str, type_name: str) -> str | None:
    """The global ID of the row a column points at, if any."""
    return encode_id(type_name, row[column]) if row[column] is not None else None


async def assign_customer(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    assignment: Assignment,
    *,
    then: Then = nothing,
) -> int:
    """Give a customer to an owner, a team or both; without customer.assign
    only to the actor and their own teams. Already so: nothing recorded."""
    pk = assignment.pk
    errors = leading_problems(assignment.problems)
    values = customer_values(actor, errors, assignment.fields, assignment.problems)
    if not values:
        errors.add(None, "give ownerId, teamId or both", "REQUIRED")
    reason = v.text(errors, "reason", assignment.reason, max_length=2000)

    async def work() -> int:
        current = await live(db, actor, pk, "customerId")
        if assignment.expected_version is not None:
            writes.check_version(current, assignment.expected_version)
        await check_assignment(db, actor, values)
        changes = writes.field_changes(
            camel_keys({k: current[k] for k in values}), camel_keys(values)
        )
        if not changes:
            return pk  # already so: nothing to record
        descriptor = catalog.customer_type(current["kind"])
        attrs = load_json(current["attributes"])
        write = CustomerWrite(
            current["kind"],
            descriptor,
            values,
            descriptor.decode_attributes(attrs),
            CustomerSnapshot.from_row(current, descriptor),
            Facts(db, pk, catalog),
        )
        await plugin_validation(pm, write)
        await writes.update_customer(db, pk, current["version"], values, None)
        after = {**current, **values}
        await writes.record_change(
            db,
            "customer.assigned",
            ("Customer", pk),
            pk,
            changes | ({"reason": [None, reason]} if reason else {}),
            {
                "customerId": encode_id("Customer", pk),
                "kind": current["kind"],
                "fields": sorted(changes),
                "ownerId": ref(after, "owner", "User"),
                "teamId": ref(after, "team", "Team"),
                "previousOwnerId": ref(current, "owner", "User"),
                "previousTeamId": ref(current, "team", "Team"),
                "reason": reason,
            },
        )
        return pk

    return await run_write(db, actor, work, then, problems=errors.problems)


@dataclass
class Deletion:
    """Soft-delete customer ``pk`` (``deleted``) or bring it back (not
    ``deleted``: ``restoreCustomer``, which takes no version)."""

    pk: int
    deleted: bool = True
    expected_version: int | None = None
    problems: Sequence[Problem] = ()


async def set_deleted(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    deletion: Deletion,
    *,
    then: Then = nothing,
) -> int:
    """Soft-delete a customer or bring it back (``deleteCustomer``,
    ``restoreCustomer``); a deleted customer has no match keys."""
    pk, deleted = deletion.pk, deletion.deleted
    action = "customer.deleted" if deleted else "customer.restored"

    async def work() -> int:
        changes = await writes.set_deleted(db, pk, deleted, deletion.expected_version, actor.sees)
        await matching.refresh_match_keys(db, [pk])
        await writes.record_change(
            db, action, ("Customer", pk), pk, changes, {"customerId": encode_id("Customer", pk)}
        )
        return pk

    return await run_write(
        db, actor, work, then, problems=deletion.problems, permission=CUSTOMER_DELETE
    )


@dataclass
class Transition:
    """Move customer ``pk`` to stage ``to_stage`` of its lifecycle: that of
    its role ``kind`` (None: its primary kind; :mod:`crmgraph.operations.roles`)."""

    pk: int
    to_stage: str
    expected_version: int
    reason: str | None = None
    problems: Sequence[Problem] = ()
    kind: str | None = None


@dataclass(frozen=True)
class Moved:
    """A customer moved: its pk and the kind whose stage it left."""

    pk: int
    kind: str
    to_stage: str


async def transition_customer(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    move: Transition,
    *,
    then: Then = nothing,
) -> Moved:
    """Move a customer to another stage; every reason it may not is raised
    (code TRANSITION_REFUSED). The lifecycle engine calls the transition hooks."""
    pk = move.pk
    errors = Errors(list(move.problems))
    reason = v.text(errors, "reason", move.reason, max_length=2000)
    to_stage = move.to_stage.strip()
    engine = Lifecycles(catalog, pm)

    async def work() -> Moved:
        current = await live(db, actor, pk)
        writes.check_version(current, move.expected_version)
        role = await roles.held_role(db, current, move.kind or current["kind"])
        ctx = engine.context(db, role, to_stage, reason, actor.user_id, current["kind"])
        refused = await engine.refusals(ctx)
        if refused:
            raise refusal_problems(refused)
        await engine.apply(ctx, move.expected_version)
        await then(pk)
        return Moved(pk, role["kind"], to_stage)

    return await run_operation(db, actor, work, permission=CUSTOMER_WRITE, problems=errors.problems)
