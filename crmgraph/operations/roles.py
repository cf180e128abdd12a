"""A party's further roles: ``addRole``, ``updateRole`` and ``endRole``, and
the role a move applies to (``transitionCustomer`` with a ``kind``).

A customer has its primary kind (``customer.kind``, its GraphQL type) and any
number of further roles of other kinds, each a ``customer_role`` row with its
kind's typed attributes, stage and history (:mod:`crmgraph.db.tables`). A
role's attributes are checked exactly as a primary kind's: the type's
declared attributes (:func:`crmgraph.validation.attributes`), guarded
attributes against the actor's permissions, then every plugin's
``crmgraph_validate_customer`` with the role's kind. Each write is one
transaction with its audit entry and event (``customer.role_added``,
``customer.role_updated``, ``customer.role_ended``) and bumps the customer's
version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from crmgraph import validation as v
from crmgraph.db import stays, writes
from crmgraph.db.engine import Database
from crmgraph.db.party_roles import is_held, role_rows, uncombinable
from crmgraph.db.queries import load_json
from crmgraph.extension_points import CustomerWrite
from crmgraph.hook_contexts import CustomerSnapshot, Facts
from crmgraph.ids import encode_id
from crmgraph.input_checks import attribute_fields
from crmgraph.operations.actor import Actor
from crmgraph.operations.customer_checks import (
    attribute_changes,
    foreign_attribute_inputs,
    guarded_attribute_problems,
    leading_problems,
    live,
    plugin_validation,
)
from crmgraph.operations.runner import Then, nothing, run_write
from crmgraph.registry import Catalog
from crmgraph.validation import Errors, Problem, UserInputError


@dataclass
class NewRole:
    """Customer ``pk`` takes on a role of ``kind``; ``attributes`` are the
    attribute inputs sent, by kind (that of ``kind`` only is accepted)."""

    pk: int
    kind: str
    expected_version: int
    attributes: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    problems: Sequence[Problem] = ()
    source: str | None = None  # the event's ``source`` (``import``), if not the API


@dataclass
class RoleChange:
    """New attribute values for customer ``pk``'s further role of ``kind``;
    ``attributes`` as :class:`NewRole`'s (an attribute left out stays)."""

    pk: int
    kind: str
    expected_version: int
    attributes: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    problems: Sequence[Problem] = ()


@dataclass
class RoleEnd:
    """Customer ``pk`` no longer holds its role of ``kind``."""

    pk: int
    kind: str
    expected_version: int
    problems: Sequence[Problem] = ()


async def held_kinds(db: Database, current: Mapping[str, Any]) -> list[str]:
    """The kinds customer ``current`` (its row) holds: its primary kind first."""
    rows = await role_rows(db, current["id"])
    further = [k for k, row in rows.items() if k != current["kind"] and is_held(row, "")]
    return [current["kind"], *further]


async def held_role(db: Database, current: dict[str, Any], kind: str) -> dict[str, Any]:
    """The customer row ``current`` as a move of its role ``kind`` sees it:
    that role's kind, stage, phase and attributes (NOT_FOUND if it holds none)."""
    if kind == current["kind"]:
        return current
    row = (await role_rows(db, current["id"])).get(kind)
    if row is None or not is_held(row, current["kind"]):
        raise UserInputError.single(
            "kind", f"the customer holds no {kind.upper()} role", "NOT_FOUND"
        )
    return role_view(current, row)


def role_view(current: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """Customer row ``current`` seen as its role ``row`` (a ``customer_role``
    row): the role's kind, stage, phase and attributes, the party's the rest."""
    if row["kind"] == current["kind"]:
        return dict(current)
    return {
        **current,
        "kind": row["kind"],
        "stage": row["stage"],
        "phase": row["phase"],
        "attributes": row["attributes"],
    }


def combination_problems(catalog: Catalog, kind: str, held: Sequence[str]) -> list[Problem]:
    """NOT_COMBINABLE for each kind held that ``kind`` may not join (either
    type's ``not_combinable_with`` says so)."""
    return [
        Problem(
            "kind",
            f"a {kind.upper()} role may not be combined with {other.upper()}, "
            "which this party holds",
            "NOT_COMBINABLE",
        )
        for other in uncombinable(catalog, kind, held)
    ]


def role_kind_problems(catalog: Catalog, errors: Errors, kind: str) -> None:
    """The kind must be a loaded type that may be a further role."""
    descriptor = catalog.customer_type(kind)
    if descriptor is None:
        errors.add("kind", f"no customer type {kind!r} is loaded", "INVALID_CHOICE")
    elif not descriptor.secondary_role:
        errors.add(
            "kind",
            f"{descriptor.graphql_name} is a primary kind only: it cannot be a further role",
            "NOT_COMBINABLE",
        )


async def bump_version(db: Database, pk: int, expected_version: int, at: Any) -> None:
    await writes.run_or_queue(
        db,
        "customer",
        "UPDATE customer SET version = version + 1, updated_at = {} "
        "WHERE id = {} AND version = {} AND deleted_at IS NULL",
        (at, pk, expected_version),
        (1, writes.version_conflict(None, expected_version)),
    )


async def add_role(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    new: NewRole,
    *,
    then: Then = nothing,
) -> int:
    """Give customer ``new.pk`` a role of ``new.kind``, in that kind's
    initial stage; returns the customer's pk."""
    kind = new.kind
    errors = leading_problems(new.problems)
    role_kind_problems(catalog, errors, kind)
    descriptor = catalog.customer_type(kind)
    attrs: dict[str, Any] = {}
    if descriptor is not None:
        foreign_attribute_inputs(errors, new.attributes, kind)
        sent = dict(new.attributes.get(kind) or {})
        errors.problems.extend(guarded_attribute_problems(actor, catalog, kind, sent, True))
        attrs = v.attributes(errors, v.camel(kind), descriptor, sent)

    async def work() -> int:
        assert descriptor is not None
        current = await live(db, actor, new.pk, "customerId")
        writes.check_version(current, new.expected_version)
        rows = await role_rows(db, new.pk)
        held = [k for k, row in rows.items() if is_held(row, current["kind"])]
        if kind in held:
            raise UserInputError.single(
                "kind", f"the customer already holds a {kind.upper()} role", "ROLE_HELD"
            )
        if problems := combination_problems(catalog, kind, held):
            raise UserInputError(problems)
        typed = descriptor.decode_attributes(attrs)
        facts = Facts(db, new.pk, catalog)
        write = CustomerWrite(kind, descriptor, {}, typed, None, facts, current["kind"])
        await plugin_validation(pm, write)
        at = writes.now()
        await write_role(db, new.pk, descriptor.lifecycle, kind, attrs, rows.get(kind), at, actor)
        await bump_version(db, new.pk, new.expected_version, at)
        initial = descriptor.lifecycle.initial
        await writes.record_change(
            db,
            "customer.role_added",
            ("Customer", new.pk),
            new.pk,
            writes.field_changes(
                None, {f"roles.{kind}.stage": initial, **attribute_fields(kind, attrs)}
            ),
            {"customerId": encode_id("Customer", new.pk), "kind": kind, "stage": initial}
            | ({"source": new.source} if new.source else {}),
        )
        return new.pk

    return await run_write(db, actor, work, then, problems=errors.problems)


async def write_role(
    db: Database,
    pk: int,
    lifecycle: Any,
    kind: str,
    attrs: dict[str, Any],
    previous: dict[str, Any] | None,
    at: Any,
    actor: Actor,
) -> None:
    """The role's row in its initial stage (a row left by a conversion or an
    ended role is taken up again, its history kept) and its history entry."""
    stage = lifecycle.stage(lifecycle.initial)
    values = {
        "stage": stage.key,
        "phase": stage.phase.value,
        "entered_at": at,
        "attributes": writes.dump_json(attrs),
        "added_at": at,
    }
    if previous is None:
        await writes.insert(db, "customer_role", {"customer": pk, "kind": kind, **values})
    else:
        await writes.run_or_queue(
            db,
            "customer_role",
            "UPDATE customer_role SET stage = {}, phase = {}, entered_at = {}, attributes = {}, "
            "added_at = {}, ended_at = NULL WHERE customer = {} AND kind = {}",
            (*values.values(), pk, kind),
        )
        await stays.leave_stage(db, pk, kind, stage.key, at)
    await writes.insert(
        db,
        "stage_change",
        {
            "customer": pk,
            "kind": kind,
            "from_stage": previous["stage"] if previous else None,
            "to_stage": stage.key,
            "at": at,
            "by": actor.user_id,
            "reason": "role added",
        },
    )
    await stays.record_phases(db, [pk])


async def further_role(
    db: Database, current: dict[str, Any], kind: str, primary_refusal: str
) -> dict[str, Any]:
    """:func:`held_role` for a write of a further role only; the primary kind
    is refused (INVALID), ``primary_refusal`` saying why."""
    if kind == current["kind"]:
        raise UserInputError.single(
            "kind", f"{kind.upper()} is the customer's primary kind: {primary_refusal}", "INVALID"
        )
    return await held_role(db, current, kind)


async def end_role(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    end: RoleEnd,
    *,
    then: Then = nothing,
) -> int:
    """End customer ``end.pk``'s further role of ``end.kind`` (not its primary
    kind): its row, stage and history stay, no longer held."""
    kind = end.kind
    errors = leading_problems(end.problems)

    async def work() -> int:
        current = await live(db, actor, end.pk, "customerId")
        writes.check_version(current, end.expected_version)
        role = await further_role(db, current, kind, "it cannot end")
        at = writes.now()
        await writes.run_or_queue(
            db,
            "customer_role",
            "UPDATE customer_role SET ended_at = {} WHERE customer = {} AND kind = {}",
            (at, end.pk, kind),
        )
        await bump_version(db, end.pk, end.expected_version, at)
        await writes.record_change(
            db,
            "customer.role_ended",
            ("Customer", end.pk),
            end.pk,
            {f"roles.{kind}.stage": [role["stage"], None]}
            | attribute_changes(kind, load_json(role["attributes"]), {}),
            {"customerId": encode_id("Customer", end.pk), "kind": kind, "stage": role["stage"]},
        )
        return end.pk

    return await run_write(db, actor, work, then, problems=errors.problems)


async def update_role(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    change: RoleChange,
    *,
    then: Then = nothing,
) -> int:
    """Change the attributes of customer ``change.pk``'s further role of
    ``change.kind``, checked as ``updateCustomer`` checks a primary kind's;
    refused if ``expected_version`` is stale."""
    kind = change.kind
    errors = leading_problems(change.problems)
    descriptor = catalog.customer_type(kind)
    if descriptor is None:
        errors.add("kind", f"no customer type {kind!r} is loaded", "INVALID_CHOICE")
    foreign_attribute_inputs(errors, change.attributes, kind)
    sent = dict(change.attributes.get(kind) or {})
    if descriptor is not None:
        errors.problems.extend(guarded_attribute_problems(actor, catalog, kind, sent, False))

    async def work() -> int:
        assert descriptor is not None
        current = await live(db, actor, change.pk, "customerId")
        writes.check_version(current, change.expected_version)
        role = await further_role(db, current, kind, "its attributes change with updateCustomer")
        old = load_json(role["attributes"])
        attr_errors = Errors()
        attrs = v.attributes(attr_errors, v.camel(kind), descriptor, sent, old)
        if attr_errors:
            raise UserInputError(attr_errors.problems)
        write = CustomerWrite(
            kind,
            descriptor,
            {},
            descriptor.decode_attributes(attrs),
            CustomerSnapshot.from_row(role, descriptor),
            Facts(db, change.pk, catalog),
            current["kind"],
        )
        await plugin_validation(pm, write)
        at = writes.now()
        await writes.run_or_queue(
            db,
            "customer_role",
            "UPDATE customer_role SET attributes = {} WHERE customer = {} AND kind = {}",
            (writes.dump_json(attrs), change.pk, kind),
        )
        await bump_version(db, change.pk, change.expected_version, at)
        changes = attribute_changes(kind, old, attrs)
        await writes.record_change(
            db,
            "customer.role_updated",
            ("Customer", change.pk),
            change.pk,
            changes,
            {
                "customerId": encode_id("Customer", change.pk),
                "kind": kind,
                "fields": sorted(changes),
            },
        )
        return change.pk

    return await run_write(db, actor, work, then, problems=errors.problems)
