"""Moving a merged customer's related rows to the survivor, and exactly those
rows back when the merge is undone.

Every table keyed by customer moves wholesale: contacts, interactions, needs,
notes (their mentions hang off the note and follow it), tasks, consent
statements (the person's word stays theirs: a withdrawal on the merged record
keeps binding the survivor) and the stage history (each change keeps its
``kind``). Three adjustments keep the survivor
consistent, each recorded so undo reverses it:

- relationships move at whichever end names the merged customer; one that
  would link the survivor to itself, or repeat a link the survivor already
  has (same other party, direction and kind), is deleted instead, its row kept
  whole in the record;
- when the survivor has a primary contact, the merged customer's primary
  contacts stop being primary (one primary per customer);
- the merged customer's open stays (``stage_change.left_at`` NULL) are closed
  at the merge, so the survivor has one current stage per type: its own;
  except in the kinds whose role the survivor takes over from it
  (``continued``, :mod:`crmgraph.dedupe.merge_roles`): there its stay goes on,
  and the survivor's own open stay of such a kind, a history row's, ends.

Untouched on purpose: ``customer_role`` (the merged customer's lifecycle state
stays on its own, deleted, row, ready for an undo; the survivor's roles are
:mod:`crmgraph.dedupe.merge_roles`'), the outbox, the audit
trail and webhook deliveries (history of what happened to whom), and plugin
tables (each plugin moves its own through ``crmgraph_merge_customers``).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crmgraph.db import queries, stays, writes
from crmgraph.db.engine import Database

# table -> its name in movedCounts
MOVED_TABLES = {
    "contact": "contacts",
    "interaction": "interactions",
    "need": "needs",
    "note": "notes",
    "task": "tasks",
    "consent_change": "consents",
    "stage_change": "stageChanges",
}
RELATIONSHIP_ENDS = ("from_customer", "to_customer")
CHUNK = 500  # ids bound per statement: well under SQLite's and PostgreSQL's limits


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


def _marks(ids: Sequence[int]) -> str:
    return ", ".join("{}" for _ in ids)


@dataclass
class MovedRows:
    """What a merge did to related rows, kept as JSON in ``customer_merge.moved``."""

    rows: dict[str, list[int]] = field(default_factory=dict)  # table -> ids moved
    relationship_ends: dict[str, list[int]] = field(default_factory=dict)  # end -> ids
    dropped_relationships: list[dict[str, Any]] = field(default_factory=list)
    unprimaried_contacts: list[int] = field(default_factory=list)
    closed_stays: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        found = {MOVED_TABLES[table]: len(ids) for table, ids in self.rows.items()}
        found["relationships"] = sum(len(ids) for ids in self.relationship_ends.values())
        found["relationshipsDropped"] = len(self.dropped_relationships)
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "relationshipEnds": self.relationship_ends,
            "droppedRelationships": self.dropped_relationships,
            "unprimariedContacts": self.unprimaried_contacts,
            "closedStays": self.closed_stays,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> MovedRows:
        return cls(
            rows=value.get("rows", {}),
            relationship_ends=value.get("relationshipEnds", {}),
            dropped_relationships=value.get("droppedRelationships", []),
            unprimaried_contacts=value.get("unprimariedContacts", []),
            closed_stays=value.get("closedStays", []),
        )


async def _ids(db: Database, table: str, where: str, *args: Any) -> list[int]:
    rows = await db.fetch(f"SELECT id FROM {table} WHERE {where} ORDER BY id", *args)
    return [row["id"] for row in rows]


async def _set_column(
    db: Database, table: str, assignment: str, value: Any, ids: Sequence[int]
) -> None:
    for chunk in _chunks(ids):
        await db.fetch(
            f"UPDATE {table} SET {assignment} = {{}} WHERE id IN ({_marks(chunk)})", value, *chunk
        )


async def move_to_survivor(
    db: Database,
    survivor: int,
    merged: int,
    at: datetime.datetime,
    stays_kept: tuple[Sequence[str], Sequence[str]] = ((), ()),
) -> MovedRows:
    """Give every row of ``merged`` to ``survivor``; return what moved.
    ``stays_kept``: the merged customer's kinds whose open stay goes on at the
    survivor, and the survivor's kinds whose open stay ends."""
    moved = MovedRows()
    moved.closed_stays = await _stays_to_close(db, survivor, merged, *stays_kept)
    await _set_column(db, "stage_change", "left_at", at, moved.closed_stays)
    if await _ids(db, "contact", "customer = {} AND is_primary = {}", survivor, True):
        moved.unprimaried_contacts = await _ids(
            db, "contact", "customer = {} AND is_primary = {}", merged, True
        )
        await _set_column(db, "contact", "is_primary", False, moved.unprimaried_contacts)
    for table in MOVED_TABLES:
        moved.rows[table] = await _ids(db, table, "customer = {}", merged)
        await db.fetch(
            f"UPDATE {table} SET customer = {{}} WHERE customer = {{}}", survivor, merged
        )
    await _move_relationships(db, survivor, merged, moved)
    await stays.record_phases(db, [survivor])  # the funnel's columns, over both histories
    return moved


async def _stays_to_close(
    db: Database, survivor: int, merged: int, continued: Sequence[str], ended: Sequence[str]
) -> list[int]:
    """The open stays a merge closes: the merged customer's, but in the kinds
    whose role the survivor takes over, and the survivor's in ``ended``."""
    theirs = "customer = {}"
    args: list[Any] = [merged]
    if continued:
        theirs += f" AND kind NOT IN ({_marks(continued)})"
        args += continued
    conditions = [f"({theirs})"]
    if ended:
        conditions.append(f"(customer = {{}} AND kind IN ({_marks(ended)}))")
        args += [survivor, *ended]
    return await _ids(db, "stage_change", f"left_at IS NULL AND ({' OR '.join(conditions)})", *args)


async def _move_relationships(db: Database, survivor: int, merged: int, moved: MovedRows) -> None:
    rows = await db.fetch(
        "SELECT * FROM relationship WHERE from_customer IN ({}, {}) OR to_customer IN ({}, {}) "
        "ORDER BY id",
        survivor,
        merged,
        survivor,
        merged,
    )
    links = {
        (r["from_customer"], r["to_customer"], r["kind"])
        for r in rows
        if merged not in (r["from_customer"], r["to_customer"])
    }
    ends: dict[str, list[int]] = {end: [] for end in RELATIONSHIP_ENDS}
    for row in rows:
        end = next((e for e in RELATIONSHIP_ENDS if row[e] == merged), None)
        if end is None:
            continue
        after = {e: survivor if row[e] == merged else row[e] for e in RELATIONSHIP_ENDS}
        link = (after["from_customer"], after["to_customer"], row["kind"])
        if link[0] == link[1] or link in links:
            moved.dropped_relationships.append({k: writes.jsonable(v) for k, v in row.items()})
            await db.fetch("DELETE FROM relationship WHERE id = {}", row["id"])
            continue
        links.add(link)
        ends[end].append(row["id"])
    for end, ids in ends.items():
        await _set_column(db, "relationship", end, survivor, ids)
    moved.relationship_ends = ends


async def all_still_with(db: Database, moved: MovedRows, survivor: int) -> bool:
    """Whether every moved row still exists and still belongs to ``survivor``
    (an undo moves back exactly these, so none may have gone elsewhere)."""
    checks = [(table, "customer", ids) for table, ids in moved.rows.items()]
    checks += [("relationship", end, ids) for end, ids in moved.relationship_ends.items()]
    for table, column, ids in checks:
        for chunk in _chunks(ids):
            rows = await db.fetch(
                f"SELECT COUNT(*) AS n FROM {table} WHERE {column} = {{}} "
                f"AND id IN ({_marks(chunk)})",
                survivor,
                *chunk,
            )
            if int(rows[0]["n"]) != len(chunk):
                return False
    return True


async def move_back(db: Database, moved: MovedRows, merged: int) -> None:
    """Undo :func:`move_to_survivor`: the same rows, back as they were."""
    # the survivor, whose history loses the moved entries (all still with it)
    history = moved.rows.get("stage_change") or []
    survivors = (
        await _ids(
            db, "customer", "id IN (SELECT customer FROM stage_change WHERE id = {})", *history[:1]
        )
        if history
        else []
    )
    for table, ids in moved.rows.items():
        await _set_column(db, table, "customer", merged, ids)
    for end, ids in moved.relationship_ends.items():
        await _set_column(db, "relationship", end, merged, ids)
    for row in moved.dropped_relationships:
        await _restore_relationship(db, row)
    await _set_column(db, "contact", "is_primary", True, moved.unprimaried_contacts)
    await _set_column(db, "stage_change", "left_at", None, moved.closed_stays)
    await stays.record_phases(db, [merged, *survivors])  # each history's funnel columns again


async def _restore_relationship(db: Database, row: dict[str, Any]) -> None:
    values = {
        "from_customer": row["from_customer"],
        "to_customer": row["to_customer"],
        "kind": row["kind"],
        "attributes": writes.dump_json(queries.load_json(row["attributes"])),
        "created_at": queries.read_timestamp(row["created_at"]),
    }
    # its own id again, unless SQLite handed that id to a newer row meanwhile
    # (it reuses the highest id once deleted; PostgreSQL's sequence never does)
    if not await writes.row_exists(db, "relationship", row["id"]):
        values = {"id": row["id"], **values}
    await writes.insert(db, "relationship", values)
