"""Deciding whether two records are one party, as operations: merge two
customers, undo a merge, dismiss a likely duplicate pair and restore it, all
behind ``customer.merge``. The work on the tables is :mod:`crmgraph.dedupe`'s
(:mod:`~crmgraph.dedupe.merge`, :mod:`~crmgraph.dedupe.unmerge`,
:mod:`~crmgraph.dedupe.dismissals`); these hold the input checks, the
permission and the transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from crmgraph.access import CUSTOMER_ASSIGN, CUSTOMER_MERGE
from crmgraph.db.engine import Database
from crmgraph.dedupe import dismissals, unmerge
from crmgraph.dedupe import merge as merging
from crmgraph.operations.actor import Actor
from crmgraph.operations.runner import Then, nothing, run_showing, run_write
from crmgraph.registry import Catalog
from crmgraph.validation import Errors, Problem

MERGE_REASON_LENGTH = 2000

# Awaited with the undone merge's row as the last step inside the transaction
# (it names both customers, which the caller reads there).
MergeThen = Callable[[Mapping[str, Any]], Awaitable[object]]


async def no_merge_rows(row: Mapping[str, Any]) -> None:
    """The default :data:`MergeThen`: read nothing more."""


@dataclass
class MergeInput:
    """Merge customer ``merged`` into ``survivor``; ``field_choices``:
    (field, ``SURVIVOR`` or ``MERGED``) pairs in the order sent."""

    survivor: int
    merged: int
    field_choices: Sequence[tuple[str, str]] = ()
    expected_survivor_version: int | None = None
    expected_merged_version: int | None = None
    reason: str | None = None
    problems: Sequence[Problem] = ()


@dataclass
class UndoInput:
    """Undo merge ``merge``."""

    merge: int
    problems: Sequence[Problem] = ()


@dataclass
class PairInput:
    """Two customers (``customer``, ``other``) a person judged; ``reason``
    only for a dismissal."""

    customer: int
    other: int
    reason: str | None = None
    problems: Sequence[Problem] = ()


def merge_caller(actor: Actor) -> merging.Caller:
    """Who merges, as :mod:`crmgraph.dedupe.merge` takes them: a merge or an
    undo that changes a guarded attribute of the survivor needs its permission
    as ``updateCustomer`` does (:func:`crmgraph.dedupe.merge.refuse_guarded`)."""
    return merging.Caller(
        actor.sees, actor.can(CUSTOMER_ASSIGN), actor.user_id, actor.access.denied_writes
    )


def field_choices(errors: Errors, choices: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Field -> source; a field chosen twice is a DUPLICATE (the last wins)."""
    found: dict[str, str] = {}
    for index, (field, source) in enumerate(choices):
        name = field.strip()
        if name in found:
            errors.add(f"fieldChoices.{index}.field", f"{name} is chosen twice", "DUPLICATE")
        found[name] = source
    return found


def reason_text(errors: Errors, reason: str | None, length: int) -> str | None:
    """A reason as kept: stripped, None when blank; INVALID when longer than
    ``length`` or holding a NUL."""
    cleaned = (reason or "").strip() or None
    if cleaned is not None and (len(cleaned) > length or "\x00" in cleaned):
        errors.add("reason", f"reason must be at most {length} characters of text", "INVALID")
    return cleaned


async def merge_customers(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    data: MergeInput,
    *,
    then: Then = nothing,
) -> int:
    """Merge two customers, of one kind or two, in one transaction; the merge's pk.
    Refused (FORBIDDEN, nothing written) when the outcome changes a guarded
    attribute of the survivor (by a field choice, by filling a gap, by a
    role gained with it) that the actor may not write; values the survivor
    keeps need nothing."""
    errors = Errors(list(data.problems))
    choices = field_choices(errors, data.field_choices)
    reason = reason_text(errors, data.reason, MERGE_REASON_LENGTH)
    request = merging.MergeRequest(
        data.survivor,
        data.merged,
        choices,
        data.expected_survivor_version,
        data.expected_merged_version,
        reason,
    )

    async def work() -> int:
        return await merging.merge_customers(db, pm, catalog, request, merge_caller(actor))

    return await run_write(
        db, actor, work, then, problems=errors.problems, permission=CUSTOMER_MERGE
    )


async def undo_merge(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    data: UndoInput,
    *,
    then: MergeThen = no_merge_rows,
) -> dict[str, Any]:
    """Undo a merge while nothing was written to the survivor since; the
    merge's row as the undo left it. The undo writes the survivor's guarded
    attributes back as they were (a role gained leaves with its values), so
    it needs their permission wherever that changes a value, as the merge
    did: FORBIDDEN otherwise, nothing written."""

    async def work() -> dict[str, Any]:
        return await unmerge.undo_merge(db, pm, catalog, data.merge, merge_caller(actor))

    return await run_showing(
        db, actor, work, then, lambda row: row, permission=CUSTOMER_MERGE, problems=data.problems
    )


async def undo_blockers(db: Database, merge_id: int) -> list[str]:
    """Why undoing merge ``merge_id`` would be refused now (empty: it would
    be accepted, unless a plugin refuses or the caller lacks the permission
    of a guarded attribute the undo writes back): the checks of
    ``undoMerge`` that do not depend on the caller, run."""
    rows = await db.fetch("SELECT * FROM customer_merge WHERE id = {}", merge_id)
    return await unmerge.undo_refusals(db, rows[0])


async def dismiss_duplicate(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    data: PairInput,
    *,
    then: Then = nothing,
) -> dict[str, Any]:
    """Mark two customers as two parties; the dismissal's row."""
    errors = Errors(list(data.problems))
    reason = reason_text(errors, data.reason, dismissals.REASON_LENGTH)
    request = dismissals.PairRequest(data.customer, data.other)

    async def work() -> dict[str, Any]:
        return await dismissals.dismiss_pair(db, request, reason, actor.sees)

    def first(made: dict[str, Any]) -> int:
        return int(made["customer_a"])

    return await run_showing(
        db, actor, work, then, first, permission=CUSTOMER_MERGE, problems=errors.problems
    )


async def restore_duplicate(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    data: PairInput,
    *,
    then: Then = nothing,
) -> int:
    """Take a dismissal back; the first customer's pk."""
    request = dismissals.PairRequest(data.customer, data.other)

    async def work() -> int:
        await dismissals.restore_pair(db, request, actor.sees)
        return request.customer_id

    return await run_write(db, actor, work, then, problems=data.problems, permission=CUSTOMER_MERGE)
