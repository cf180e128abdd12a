"""Undoing a merge (:mod:`crmgraph.dedupe.merge`), in the caller's transaction.

:func:`undo_merge` reverses a merge while nothing has been written to the
survivor since (:func:`undo_refusals` says exactly what counts): both
customers get their fields back from the before-images the merge kept,
exactly the moved rows move back (:func:`crmgraph.dedupe.merge_rows.move_back`),
the survivor's role rows are as they were (roles gained leave it, a role
whose attributes were settled gets them back:
:func:`crmgraph.dedupe.merge_roles.restore_roles`),
plugins are called again (phase ``undo``, with what they saved, and may
refuse), and it leaves an audit entry per customer and a
``customer.unmerged`` event. Putting a guarded attribute's value back (one
the merge changed, or one a gained role takes away) is a write of it: it
needs the attribute's permission, as the merge did
(:func:`crmgraph.dedupe.merge.refuse_guarded`, FORBIDDEN on ``mergeId``).
Versions keep increasing: an undo is a new change, not a rewind.
"""

from __future__ import annotations

from typing import Any

import pluggy

from crmgraph.db import queries, writes
from crmgraph.db.engine import Database
from crmgraph.db.party_roles import role_rows
from crmgraph.dedupe.merge import (
    CORE_FIELDS,
    Caller,
    audited_changes,
    call_plugins,
    compare_and_set,
    record,
    refuse_guarded,
    snapshot,
)
from crmgraph.dedupe.merge_roles import restore_roles, role_changes
from crmgraph.dedupe.merge_rows import MovedRows, all_still_with, move_back
from crmgraph.hook_contexts import UNDO, MergeContext
from crmgraph.ids import encode_id
from crmgraph.registry import Catalog
from crmgraph.validation import Problem, UserInputError


async def undo_refusals(db: Database, merge: dict[str, Any]) -> list[str]:
    """Why a merge can no longer be undone (empty: it can).

    A merge is undoable while it is not undone yet and nothing has been written
    to the survivor since: its version is still the one the merge left (every
    change of the customer itself bumps it), the merged customer is still
    merged into it, no audit entry naming either customer was written after
    the merge's own (contacts, interactions, needs, notes, tasks, links made
    from the survivor), no relationship to or from the survivor was created or
    deleted since (those naming it as the other party are audited under that
    party), and every moved row still belongs to the survivor. Plugins may add
    their own reasons when called for the undo."""
    if merge["undone_at"] is not None:
        return ["the merge was already undone"]
    found = []
    survivor, merged = merge["survivor"], merge["merged"]
    rows = await queries.customers_by_ids(db, [survivor, merged])
    by_id = {row["id"]: row for row in rows}
    if by_id[survivor]["version"] != merge["survivor_version"]:
        found.append(
            f"the survivor was changed since the merge (version {merge['survivor_version']} "
            f"then, {by_id[survivor]['version']} now)"
        )
    if by_id[merged].get("merged_into") != survivor:
        found.append("the merged customer is no longer merged into the survivor")
    later = await db.fetch(
        "SELECT action, entity_type, changes FROM audit_entry WHERE id > {} "
        "AND (customer IN ({}, {}) OR entity_type = 'Relationship') ORDER BY id",
        merge["audit_mark"],
        survivor,
        merged,
    )
    survivor_id = encode_id("Customer", survivor)
    writes_since = sorted(
        {
            row["action"]
            for row in later
            if row["entity_type"] != "Relationship"
            or _names(queries.load_json(row["changes"]), survivor_id)
        }
    )
    if writes_since:
        found.append(
            f"the survivor has been written to since the merge ({', '.join(writes_since)})"
        )
    moved = MovedRows.from_json(queries.load_json(merge["moved"]))
    if not writes_since and not await all_still_with(db, moved, survivor):
        found.append("some rows moved by the merge no longer belong to the survivor")
    return found


async def _undo_changes(
    db: Database, survivor: dict[str, Any], before: dict[str, Any]
) -> dict[str, list[Any]]:
    """What undoing gives back to ``survivor`` (its row now; ``before``: its
    image the merge kept), as the undo's audit entry records it."""
    restored = {c: before[c] for c in CORE_FIELDS}
    changes = audited_changes(survivor["kind"], survivor, restored, before["attributes"])
    roles_before, roles_now = before.get("roles", {}), await role_rows(db, survivor["id"])
    return changes | role_changes(
        survivor["kind"], {k: roles_now.get(k) for k in roles_before}, roles_before
    )


def _undoing(kind: str) -> tuple[str, str]:
    """Where an undo's change of a ``kind`` attribute comes from (see
    :func:`crmgraph.dedupe.merge.refuse_guarded`)."""
    return "mergeId", "put {path} back as it was before the merge"


def _names(changes: dict[str, Any], customer_id: str) -> bool:
    """Whether a relationship's audited change has ``customer_id`` at an end."""
    return any(customer_id in (changes.get(end) or ()) for end in ("fromId", "toId"))


async def undo_merge(
    db: Database,
    pm: pluggy.PluginManager,
    catalog: Catalog,
    merge_id: int,
    caller: Caller,
) -> dict[str, Any]:
    """Undo merge ``merge_id``; the merge's row as it is left."""
    rows = await db.fetch("SELECT * FROM customer_merge WHERE id = {}", merge_id)
    if not rows:
        raise UserInputError.single("mergeId", "merge not found", "NOT_FOUND")
    # both parties locked (in id order) before anything about them is read,
    # the merge's own row again after: a concurrent undo has finished by then
    await writes.lock_parties(db, [rows[0]["survivor"], rows[0]["merged"]])
    merge = (await db.fetch("SELECT * FROM customer_merge WHERE id = {}", merge_id))[0]
    survivor = await writes.visible_customer(db, merge["survivor"], "mergeId", caller.sees)
    refused = await undo_refusals(db, merge)
    if refused:
        raise UserInputError(
            [Problem("mergeId", reason, "MERGE_NOT_UNDOABLE") for reason in refused]
        )
    merged = (await queries.customers_by_ids(db, [merge["merged"]]))[0]
    survivor_before = queries.load_json(merge["survivor_before"])
    merged_before = queries.load_json(merge["merged_before"])
    roles_before = survivor_before.get("roles", {})
    restored = {c: survivor_before[c] for c in CORE_FIELDS}
    changes = await _undo_changes(db, survivor, survivor_before)
    refuse_guarded(catalog, [survivor["kind"], *roles_before], changes, caller, _undoing)
    ctx = MergeContext(
        db,
        UNDO,
        merge_id,
        snapshot(catalog, {**survivor, **survivor_before, "id": survivor["id"]}),
        snapshot(catalog, {**merged, **merged_before, "id": merged["id"]}),
        caller.user_id,
        merge["reason"],
        saved=queries.load_json(merge["plugin_state"]),
    )
    await call_plugins(pm, ctx)
    await move_back(db, MovedRows.from_json(queries.load_json(merge["moved"])), merged["id"])
    await restore_roles(db, survivor["id"], roles_before)

    at = writes.now()
    await compare_and_set(
        db,
        survivor["id"],
        survivor["version"],
        {
            **restored,
            "attributes": writes.dump_json(survivor_before["attributes"]),
            "updated_at": at,
        },
    )
    await compare_and_set(
        db,
        merged["id"],
        merged["version"],
        {
            "merged_into": None,
            "deleted_at": queries.read_timestamp(merged_before["deletedAt"]),
            "updated_at": at,
        },
    )
    await writes.update_row(
        db, "customer_merge", merge_id, {"undone_at": at, "undone_by": caller.user_id}
    )
    await record(
        db,
        "customer.unmerged",
        (survivor, merged, merge_id),
        changes
        | {"mergedFrom": [encode_id("Customer", merged["id"]), None], "mergeId": [merge_id, None]},
        {
            "mergedInto": [encode_id("Customer", survivor["id"]), None],
            "deletedAt": [writes.jsonable(merged["deleted_at"]), None],
        },
        {"fields": sorted(changes)},
    )
    return (await db.fetch("SELECT * FROM customer_merge WHERE id = {}", merge_id))[0]
