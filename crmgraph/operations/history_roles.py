"""A past customer's roles (``customer(id:, asOf:) { roles }``): the further
roles it held at its moment, each in the stage and with the attributes it had.

Every write of a further role leaves its stage in the customer's audit
entries as ``roles.<kind>.stage``: ``addRole`` from nothing to the initial
stage, a move of the role to the next, ``endRole`` to nothing, a merge or an
import what it gave the party. So the stage at a moment is that field's value
then (:func:`crmgraph.operations.history.value_at`), held when it is not
null, and its attributes are their audited values (``guarantor.limit``), as
a primary kind's are. A role older than the trail reads as it is now. The
primary role is the past customer itself (its kind, stage and attributes,
rebuilt by :func:`crmgraph.operations.history.customer_at`).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from typing import Any

from crmgraph.operations.history import (
    Change,
    Entity,
    PastCustomer,
    attributes_at,
    moment,
    value_at,
)
from crmgraph.operations.roles import is_held
from crmgraph.registry import Catalog

ROLE_STAGE = re.compile(r"roles\.([a-z0-9_]+)\.stage")
FOREVER = 2**62  # the order of a role with no row (its row came after the moment)


def primary_role(past: PastCustomer, moves: Sequence[datetime.datetime]) -> dict[str, Any]:
    """The past customer's primary kind as a ``customer_role`` row."""
    row = past.row
    return {
        "id": 0,
        "customer": row["id"],
        "kind": row["kind"],
        "stage": row["stage"],
        "phase": row["phase"],
        "entered_at": move_at(moves, past.at, row["stage_entered_at"]),
        "attributes": "{}",  # the primary role's are the customer's own
        "added_at": None,
        "ended_at": None,
    }


def move_at(moves: Sequence[datetime.datetime], by: datetime.datetime, present: Any) -> Any:
    """The time of the role's last move at or before ``by`` (its stage
    history's own stamp, which the audit entry of the same write trails by
    the time the write took), or ``present`` when it has none."""
    return max((t for t in moves if t <= by), default=present)


def added_at(
    changes: Sequence[Change], moves: Sequence[datetime.datetime], at: datetime.datetime
) -> Any:
    """When the role was last taken up by ``at``: the move of the last change
    from nothing to a stage (None when the trail has none)."""
    taken = [c.at for c in changes if c.at <= at and c.old is None and c.new is not None]
    return move_at(moves, max(taken), None) if taken else None


def further_role(
    catalog: Catalog,
    past: PastCustomer,
    entity: Entity,
    kind: str,
    now: dict[str, Any] | None,
    moves: Sequence[datetime.datetime],
) -> dict[str, Any] | None:
    """Further role ``kind`` at the moment (``now``: its row today, if any;
    ``moves``: the times of its stage history then), or None when it was not
    held then."""
    descriptor = catalog.customer_type(kind)
    if descriptor is None:
        return None
    customer = past.trail.customers[past.row["id"]]
    # the party's primary kind now (a conversion's) was no further role: its
    # row's stage says nothing of one; only its roles.<kind>.stage entries do
    present = now if now is not None and kind != customer["kind"] else None
    held_now = present is not None and is_held(present, customer["kind"])
    changes = entity.fields.get(f"roles.{kind}.stage", ())
    stage_key = value_at(changes, past.at, present["stage"] if held_now and present else None)
    stage = descriptor.lifecycle.stage(stage_key) if stage_key else None
    if stage is None:
        return None
    present = present or {}
    # attributes_at reads a row's present attributes when its kind is the one asked
    shaped = {"kind": kind, "attributes": present.get("attributes")}
    return {
        "id": present.get("id", FOREVER),
        "customer": past.row["id"],
        "kind": kind,
        "stage": stage.key,
        "phase": stage.phase.value,
        "entered_at": move_at(moves, past.at, present.get("entered_at")),
        "attributes": attributes_at(catalog, entity, kind, shaped, past.at),
        "added_at": added_at(changes, moves, past.at) or present.get("added_at"),
        "ended_at": None,
    }


def roles_at(
    catalog: Catalog,
    past: PastCustomer,
    rows_now: Sequence[dict[str, Any]],
    history: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The roles the past customer held at its moment, as ``customer_role``
    rows: its primary kind's first, then the further ones in the order
    their rows were made. ``rows_now``: its ``customer_role`` rows today;
    ``history``: its stage history at the moment (``stage_history_at``)."""
    entity = past.trail.entities.get(("Customer", past.row["id"]), Entity())
    by_kind = {row["kind"]: row for row in rows_now}
    kinds = {m.group(1) for name in entity.fields if (m := ROLE_STAGE.fullmatch(name))}
    kinds |= set(by_kind)
    kinds.discard(past.row["kind"])
    moves: dict[str, list[datetime.datetime]] = {}
    for move in history:
        moves.setdefault(move["kind"], []).append(moment(move["at"]))  # type: ignore[arg-type]
    found = [
        further_role(catalog, past, entity, kind, by_kind.get(kind), moves.get(kind, []))
        for kind in kinds
    ]
    further = sorted((row for row in found if row is not None), key=lambda r: (r["id"], r["kind"]))
    return [primary_role(past, moves.get(past.row["kind"], [])), *further]
