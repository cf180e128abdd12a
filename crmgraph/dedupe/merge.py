"""Merging two customers into one, and undoing a merge.

:func:`merge_customers` runs inside the caller's transaction (the GraphQL
mutation's ``run_write``) and either does everything or, raising
:class:`~crmgraph.validation.UserInputError` (or a plugin's failure), nothing:

1. lock both customers (:func:`crmgraph.db.writes.lock_parties`, in id
   order), then validate: both customers exist and the caller may see them, neither is
   deleted or already merged, they differ, the versions the caller read are
   current, every role the survivor would gain may join those it holds
   (:mod:`crmgraph.dedupe.merge_roles`: customers of different kinds merge,
   the survivor keeping its primary kind and gaining the other's roles), the
   field choices name real fields;
2. settle the survivor's fields: for each field (``name``, ``email``,
   ``phone``, ``owner``, ``team``, each typed attribute of the survivor's
   kind by its camelCase name when the merged party holds that kind too, and
   ``<kind>.<attribute>`` of a further role both hold) ``MERGED`` takes the
   merged customer's value and ``SURVIVOR`` keeps the survivor's; a field not
   chosen keeps the survivor's value, or takes the merged customer's when the
   survivor has none. Changing the owner or team needs ``customer.assign``;
   changing a guarded attribute (by a choice, a gap filled or a role gained
   with it) needs its permission (:func:`refuse_guarded`: FORBIDDEN);
   plugins' ``crmgraph_validate_customer`` checks the result like any update,
   and each role gained or changed as ``addRole`` would;
3. mark the merged customer (``merged_into``, soft-deleted: lists, matching and
   writes skip it; its global ID resolves to the survivor) and bump both
   versions (compare-and-set on the versions read, so two merges of the same
   customer cannot both win);
4. call every plugin's ``crmgraph_merge_customers`` with a :class:`MergeContext`
   (phase ``merge``): each may veto with reasons (all collected, reported as
   ``MERGE_VETOED`` naming the plugin) and may move its own rows;
5. write the survivor's roles, move the related rows
   (:mod:`crmgraph.dedupe.merge_rows`), record the merge in
   ``customer_merge``, write an audit entry for each customer (the
   survivor's names the roles gained) and one ``customer.merged`` outbox
   event, refresh both customers' match keys.

:func:`crmgraph.dedupe.unmerge.undo_merge` reverses it; the two share this
module's context, hook call and traces (:func:`record`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from crmgraph.db import queries, writes
from crmgraph.db.engine import Database
from crmgraph.db.party_roles import role_rows
from crmgraph.dedupe import matching
from crmgraph.dedupe.merge_roles import (
    RoleMerge,
    pick,
    plan_roles,
    settle_attributes,
    write_roles,
)
from crmgraph.dedupe.merge_rows import move_to_survivor
from crmgraph.extension_points import CustomerWrite
from crmgraph.hook_contexts import MERGE, CustomerSnapshot, Facts, MergeContext
from crmgraph.ids import encode_id
from crmgraph.input_checks import forbidden_problem, plugin_problems
from crmgraph.plugin_calls import call_each, reasons
from crmgraph.registry import Catalog
from crmgraph.validation import Problem, UserInputError, camel

CORE_FIELDS = ("name", "email", "phone", "owner", "team")


@dataclass(frozen=True)
class MergeRequest:
    survivor: int
    merged: int
    # field -> SURVIVOR|MERGED (crmgraph.dedupe.merge_roles.pick)
    field_choices: Mapping[str, str] = field(default_factory=dict)
    expected_survivor_version: int | None = None
    expected_merged_version: int | None = None
    reason: str | None = None


# (GraphQL type, {attribute: new value}) -> (type, field, permission) of each
# guarded field the caller may not write (``crmgraph.access.Access.denied_writes``)
DeniedWrites = Callable[[str, Mapping[str, Any]], list[tuple[str, str, str]]]


def nothing_denied(type_name: str, sent: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The :data:`DeniedWrites` of the system itself (an import's merge): none."""
    return []


@dataclass(frozen=True)
class Caller:
    """Who merges: the rows they may see, whether they may reassign, their
    user, and which guarded attributes they may not write (a person's rights:
    :func:`crmgraph.operations.dedupe.merge_caller`)."""

    sees: Callable[[Mapping[str, Any]], bool]
    may_assign: bool
    user_id: int | None
    denied_writes: DeniedWrites = nothing_denied


# ---------------------------------------------------------------- helpers


def field_names(catalog: Catalog, kind: str) -> dict[str, str]:
    """Field choice name -> where it lives: ``core`` or ``attr:<name>``."""
    descriptor = catalog.customer_type(kind)
    names = {name: "core" for name in CORE_FIELDS}
    for attr in descriptor.attributes if descriptor else ():
        names[camel(attr.name)] = f"attr:{attr.name}"
    return names


def _image(row: dict[str, Any]) -> dict[str, Any]:
    """A customer's before-image, as kept in the merge record."""
    return {
        **{column: row[column] for column in CORE_FIELDS},
        "attributes": queries.load_json(row["attributes"]),
        "deletedAt": writes.jsonable(row["deleted_at"]),
        "mergedInto": row.get("merged_into"),
        "version": row["version"],
    }


def _check_version(row: dict[str, Any], expected: int | None, path: str) -> None:
    if expected is not None and row["version"] != expected:
        raise UserInputError.single(
            path,
            f"customer was changed by someone else since version {expected} (it is now at "
            f"version {row['version']}); reload it and merge again",
            "VERSION_CONFLICT",
        )


def settle_fields(
    names: dict[str, str],
    choices: Mapping[str, str],
    survivor: dict[str, Any],
    merged: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The survivor's core values and attributes after the merge."""
    values = {column: survivor[column] for column in CORE_FIELDS}
    for name in (n for n, place in names.items() if place == "core"):
        values[name] = pick(choices.get(name), values[name], merged[name])
    attributes = settle_attributes(
        {name: place[5:] for name, place in names.items() if place != "core"},
        choices,
        queries.load_json(survivor["attributes"]),
        queries.load_json(merged["attributes"]),
    )
    return values, attributes


def audited_changes(
    kind: str, row: dict[str, Any], changed: dict[str, Any], attributes: dict[str, Any]
) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` of a customer whose core fields become ``changed``
    and whose attributes become ``attributes``, named as the API names them."""
    before = {camel(column): row[column] for column in changed}
    changes = writes.field_changes(before, {camel(c): value for c, value in changed.items()})
    prefix, old = camel(kind), queries.load_json(row["attributes"])
    keys = sorted(set(old) | set(attributes))
    return changes | writes.field_changes(
        {f"{prefix}.{camel(k)}": old.get(k) for k in keys},
        {f"{prefix}.{camel(k)}": attributes.get(k) for k in keys},
    )


async def record(
    db: Database,
    action: str,
    parties: tuple[dict[str, Any], dict[str, Any], int],
    survivor_changes: dict[str, list[Any]],
    merged_changes: dict[str, list[Any]],
    payload: dict[str, Any],
) -> None:
    """The traces of a merge or an undo (``parties``: the survivor's and the
    merged customer's rows, the merge's id): an audit entry on each customer,
    one ``action`` event on the survivor, both customers' match keys anew."""
    survivor, merged, merge_id = parties
    await writes.audit(db, action, "Customer", survivor["id"], survivor["id"], survivor_changes)
    await writes.audit(db, action, "Customer", merged["id"], merged["id"], merged_changes)
    await writes.outbox(
        db,
        action,
        survivor["id"],
        {
            "mergeId": encode_id("CustomerMerge", merge_id),
            "survivorId": encode_id("Customer", survivor["id"]),
            "mergedId": encode_id("Customer", merged["id"]),
            "kind": survivor["kind"],
            **payload,
        },
    )
    await matching.refresh_match_keys(db, [survivor["id"], merged["id"]])


def refuse_guarded(
    catalog: Catalog,
    kinds: Sequence[str],
    changes: Mapping[str, list[Any]],
    caller: Caller,
    where: Callable[[str], tuple[str, str]],
) -> None:
    """FORBIDDEN, before anything is written, for each attribute of ``kinds``
    (the survivor's primary kind and the roles written) whose value
    ``changes`` (the audit entry's ``{<kind>.<attribute>: [old, new]}``)
    alters while it is guarded by a permission the caller lacks: a merge or
    an undo writes it as ``updateCustomer`` would. ``where(kind)``: the
    problem's input field and what the write does (``your role may not
    <that>: it needs the <permission> permission``), a template of ``path``
    (``employee.salary``) and ``name`` (``salary``)."""
    problems = []
    for kind in kinds:
        descriptor, prefix = catalog.customer_type(kind), camel(kind)
        if descriptor is None:  # a kind no longer loaded: no declared guard
            continue
        written = {
            attr.name: changes[path][1]
            for attr in descriptor.attributes
            if (path := f"{prefix}.{camel(attr.name)}") in changes
        }
        field_path, doing = where(kind)
        problems.extend(
            forbidden_problem(
                field_path, doing.format(path=f"{prefix}.{name}", name=name), permission
            )
            for _, name, permission in caller.denied_writes(descriptor.graphql_name, written)
        )
    if problems:
        raise UserInputError(problems)


def merging_input(primary: str, gained: Sequence[str], kind: str) -> tuple[str, str]:
    """Where a merge's change of a ``kind`` attribute comes from, for
    :func:`refuse_guarded`: a role gained brings its values along
    (``mergedId``); a kind both hold has them settled by ``fieldChoices``,
    where ``SURVIVOR`` keeps the survivor's value (``primary``: the
    survivor's kind, whose attributes are chosen by their own name)."""
    if kind in gained:
        return "mergedId", f"take on {{path}} with the {kind.upper()} role the survivor gains"
    choice = "{name}" if kind == primary else "{path}"
    return "fieldChoices", f"change {{path}} by merging (choose SURVIVOR for {choice} to keep it)"


async def call_plugins(pm: pluggy.PluginManager, ctx: MergeContext) -> None:
    """Every plugin's ``crmgraph_merge_customers``; their vetoes, all at once."""
    vetoes = [
        Problem(None, f"plugin {plugin!r} refuses to {ctx.phase}: {reason}", "MERGE_VETOED")
        for plugin, result in await call_each(pm, "crmgraph_merge_customers", ctx=ctx)
        for reason in reasons(result)
    ]
    if vetoes:
        raise UserInputError(vetoes)


async def compare_and_set(db: Database, pk: int, version: int, values: dict[str, Any]) -> int:
    """Update a customer, deleted or not, only if it is still at ``version``
    (what this merge read); the new version."""
    found = await writes.compare_and_set(db, pk, version, values, live_only=False)
    if found is None:
        raise UserInputError.single(
            None, "a customer was changed by someone else meanwhile; try again", "VERSION_CONFLICT"
        )
    return found


async def _last_audit_id(db: Database, customers: tuple[int, int], action: str) -> int:
    """The id of the last audit entry ``action`` wrote for either customer."""
    rows = await db.fetch(
        "SELECT MAX(id) AS id FROM audit_entry WHERE customer IN ({}, {}) AND action = {}",
        *customers,
        action,
    )
    return int(rows[0]["id"] or 0)


# ---------------------------------------------------------------- merge


async def merge_customers(
    db: Database,
    pm: pluggy.PluginManager,
    catalog: Catalog,
    request: MergeRequest,
    caller: Caller,
) -> int:
    """Merge ``request.merged`` into ``request.survivor``; the merge's id."""
    if request.survivor == request.merged:
        raise UserInputError.single(
            "mergedId", "a customer cannot be merged into itself", "INVALID"
        )
    # both parties, in id order, before either is read: a write to the merged
    # customer lands before its rows move, or reads it merged and is refused,
    # and a merge the other way round waits for this one instead of deadlocking
    await writes.lock_parties(db, [request.survivor, request.merged])
    survivor = await writes.live_customer(db, request.survivor, "survivorId", caller.sees)
    merged = await writes.live_customer(db, request.merged, "mergedId", caller.sees)
    _check_version(survivor, request.expected_survivor_version, "expectedSurvivorVersion")
    _check_version(merged, request.expected_merged_version, "expectedMergedVersion")
    rows = (await role_rows(db, survivor["id"]), await role_rows(db, merged["id"]))
    roles = plan_roles(catalog, survivor, merged, rows, request.field_choices)
    values, attributes = _settle(catalog, request.field_choices, survivor, merged, roles)
    changed = {c: values[c] for c in CORE_FIELDS if values[c] != survivor[c]}
    if ({"owner", "team"} & set(changed)) and not caller.may_assign:
        raise UserInputError.single(
            "fieldChoices",
            "your role may not give the survivor another owner or team: it needs the "
            "customer.assign permission",
            "FORBIDDEN",
        )
    changes = audited_changes(survivor["kind"], survivor, changed, attributes)
    changes |= roles.audited(survivor["kind"])
    where = functools.partial(merging_input, survivor["kind"], roles.gained)
    refuse_guarded(catalog, [survivor["kind"], *roles.after], changes, caller, where)
    before = await _validate(db, pm, catalog, (survivor, changed, attributes), roles)

    at = writes.now()
    await compare_and_set(
        db,
        merged["id"],
        merged["version"],
        {"merged_into": survivor["id"], "deleted_at": at, "updated_at": at},
    )
    survivor_version = await compare_and_set(
        db,
        survivor["id"],
        survivor["version"],
        {**changed, "attributes": writes.dump_json(attributes), "updated_at": at},
    )
    await write_roles(db, survivor["id"], roles)
    merge_id = await writes.insert(
        db,
        "customer_merge",
        {
            "survivor": survivor["id"],
            "merged": merged["id"],
            "merged_by": caller.user_id,
            "merged_at": at,
            "reason": request.reason,
            "field_choices": writes.dump_json(dict(request.field_choices)),
            "survivor_before": writes.dump_json({**_image(survivor), "roles": roles.before_json()}),
            "merged_before": writes.dump_json(_image(merged)),
            "survivor_version": survivor_version,
        },
    )
    ctx = MergeContext(
        db,
        MERGE,
        merge_id,
        before,
        snapshot(catalog, merged),
        caller.user_id,
        request.reason,
    )
    await call_plugins(pm, ctx)
    stays_kept = (roles.continued, roles.ended)
    moved = await move_to_survivor(db, survivor["id"], merged["id"], at, stays_kept)
    counts = {**moved.counts(), **ctx.moved}

    extra = {"reason": [None, request.reason]} if request.reason else {}
    merged_id = encode_id("Customer", merged["id"])
    await record(
        db,
        "customer.merged",
        (survivor, merged, merge_id),
        changes | {"mergedFrom": [None, merged_id], "mergeId": [None, merge_id]} | extra,
        {
            "mergedInto": [None, encode_id("Customer", survivor["id"])],
            "deletedAt": [None, at.isoformat()],
        }
        | extra,
        {
            "fields": sorted(changes),
            "movedCounts": counts,
            "rolesGained": roles.gained,
            "reason": request.reason,
        },
    )
    await writes.update_row(
        db,
        "customer_merge",
        merge_id,
        {
            "moved": writes.dump_json(moved.to_json()),
            "moved_counts": writes.dump_json(counts),
            "plugin_state": writes.dump_json(ctx.saved),
            "audit_mark": await _last_audit_id(
                db, (survivor["id"], merged["id"]), "customer.merged"
            ),
        },
    )
    return merge_id


def snapshot(catalog: Catalog, row: dict[str, Any]) -> CustomerSnapshot:
    """A customer as plugins see it, by its own kind's type."""
    descriptor = catalog.customer_type(row["kind"])
    if descriptor is None:
        raise UserInputError.single(None, f"type {row['kind']!r} is not loaded", "INVALID")
    return CustomerSnapshot.from_row(row, descriptor)


def _settle(
    catalog: Catalog,
    choices: Mapping[str, str],
    survivor: dict[str, Any],
    merged: dict[str, Any],
    roles: RoleMerge,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The survivor's core values and attributes after the merge; an
    INVALID_CHOICE for a choice naming no field the two share."""
    names = field_names(catalog, survivor["kind"])
    if roles.primary_attributes is None:  # the merged party holds no such kind
        names = {name: place for name, place in names.items() if place == "core"}
    known = [*names, *roles.choices]
    unknown = sorted(set(choices) - set(known))
    if unknown:
        raise UserInputError.single(
            "fieldChoices",
            f"unknown field(s) {', '.join(unknown)} (fields: {', '.join(known)})",
            "INVALID_CHOICE",
        )
    theirs = {**merged, "attributes": roles.primary_attributes or {}}
    return settle_fields(names, choices, survivor, theirs)


async def _validate(
    db: Database,
    pm: pluggy.PluginManager,
    catalog: Catalog,
    settled: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
    roles: RoleMerge,
) -> CustomerSnapshot:
    """Plugins' ``crmgraph_validate_customer`` on the survivor as settled
    (``settled``: its row, the core fields changed, its attributes) and on
    each further role it gains or whose attributes change, as ``addRole``
    asks; the survivor's snapshot before the merge."""
    survivor, changed, attributes = settled
    kind = survivor["kind"]
    before = snapshot(catalog, survivor)
    facts = Facts(db, survivor["id"], catalog)
    descriptor = catalog.customer_type(kind)
    assert descriptor is not None  # snapshot() found it
    checked = [
        CustomerWrite(
            kind, descriptor, changed, descriptor.decode_attributes(attributes), before, facts
        )
    ]
    for role in roles.roles_written():
        role_type = catalog.customer_type(role)
        if role_type is not None:
            typed = role_type.decode_attributes(roles.after[role]["attributes"])
            checked.append(CustomerWrite(role, role_type, {}, typed, None, facts, kind))
    problems = [problem for write in checked for problem in await plugin_problems(pm, write)]
    if problems:
        raise UserInputError(problems)
    return before
