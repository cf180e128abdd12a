"""Records as they were: a customer, its contacts, needs and interactions
rebuilt at a past moment from the audit trail (``customer(id:, asOf:)``,
``node(id:, asOf:)``); :mod:`crmgraph.operations.field_history` reads one
field's values over time from the same trail (``fieldHistory``).

Every write leaves an audit entry with each field's ``[old, new]`` value
(:func:`crmgraph.db.writes.field_changes`). A field's value at moment ``T``
is the new value of the last change at or before ``T``; with none, the old
value of the first change after ``T``; with none either, the value the row
holds now. Anchoring on the present means a field no entry ever named (a
creation records only the fields it set) reads as it is, and a record older
than a field's first entry reads with what is known.

Rules on top of that:

- a record created after ``T`` did not exist: None;
- a record with no entries (seeded, bulk-loaded, older than its trail) reads
  as it is, since its creation; which customer held it then follows from the
  rows each merge moved (``customer_merge.moved``);
- merges (``customer_merge``, undone ones until their undo) decide which
  customer a record belonged to at ``T``, and which customer an ID stood for:
  before a merge the merged customer reads as itself, after it as the survivor;
- ``isPrimary`` is replayed from the start, since making one contact primary
  demotes the others without an entry of theirs (and a merge demotes the
  merged customer's primary contacts when the survivor has one);
- a conversion's entry names the stage its old type left, not the new type's
  stage: the stage after it is the one the next entry starts from (or now);
- erased data stays erased: when a customer's personal data was erased
  (now), every value erasure anonymises reads as erasure left it, whatever
  the moment asked (:data:`crmgraph.privacy.erasure.ANONYMISED`);
- ``updatedAt`` and ``stageEnteredAt`` read the time of the audit entry that
  set them, which trails the row's own stamp by the write's duration.

Who may read what is the caller's business (the GraphQL resolvers apply the
present's row scope and field permissions); this module only rebuilds.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, NamedTuple

from crmgraph import core_fields
from crmgraph.core_fields import Value
from crmgraph.db import queries
from crmgraph.db.engine import Database
from crmgraph.db.text_keys import fold
from crmgraph.paging import STAGE_HISTORY_ORDER
from crmgraph.privacy import ERASED_NAME
from crmgraph.privacy.erasure import ANONYMISED, CUSTOMER_VALUES
from crmgraph.registry import Catalog
from crmgraph.validation import camel

MAX_MERGE_STEPS = 64  # merge chains are short; this bounds a corrupt cycle
UNKNOWN = object()  # a change whose new value the entry does not hold
CUSTOMER_COLUMNS = ("kind", "name", "email", "phone", "owner", "team", "deleted_at", "erased_at")
# the records a customer's history rebuilds, by audit entity type
RECORDS = {"Contact": "contact", "Need": "need", "Interaction": "interaction"}
# the entities whose entries a rebuild reads (an interaction never changes once
# logged: its row and merges say all; notes, tasks... are not rebuilt)
REBUILT = "'Customer', 'Contact', 'Need'"
TYPES = {table: type_name for type_name, table in RECORDS.items()}
RECORD_FIELDS = {"Contact": core_fields.CONTACT, "Need": core_fields.NEED}


def moment(value: Any) -> datetime.datetime | None:
    """A timestamp as stored or as the audit trail writes it, in UTC with the
    standard library's own zone: compared thousands of times a rebuild, and a
    driver's Python-level zone (dateutil's) costs a call per comparison."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    if value.tzinfo is not datetime.UTC:
        return value.astimezone(datetime.UTC)
    return value


class Change(NamedTuple):
    """One field's change in one audit entry (a tuple: a long trail makes
    thousands of them)."""

    at: datetime.datetime
    old: Any
    new: Any
    by: int | None
    action: str


# a Change made without the Python-level __new__ NamedTuple generates
new_change = functools.partial(tuple.__new__, Change)


@dataclass
class Entity:
    """One audited record's entries: when each was made, and its changes per
    field, oldest first (sorted out by field when first asked for: a read of
    a customer needs the changes of few of the trail's records)."""

    origin: int | None = None  # the customer it was created on
    created: datetime.datetime | None = None
    times: list[datetime.datetime] = field(default_factory=list)
    entries: list[tuple[datetime.datetime, int | None, str, dict]] = field(default_factory=list)

    @cached_property
    def fields(self) -> dict[str, list[Change]]:
        found: dict[str, list[Change]] = defaultdict(list)
        for at, by, action, changes in self.entries:
            conversion = action == "customer.stage_changed" and "kind" in changes
            for name, (old, new) in changes.items():
                if conversion and name == "stage":
                    new = UNKNOWN  # the new type's stage is not in the entry
                found[name].append(new_change((at, old, new, by, action)))
        return found


def value_at(changes: Sequence[Change], at: datetime.datetime, present: Any) -> Any:
    """The value at ``at`` (see the module's docstring)."""
    last = None
    for change in changes:
        if change.at > at:
            if last is None or last.new is UNKNOWN:
                return change.old
            return last.new
        last = change
    if last is None or last.new is UNKNOWN:
        return present
    return last.new


@dataclass(frozen=True)
class Merge:
    survivor: int
    merged: int
    at: datetime.datetime
    undone: datetime.datetime | None
    unprimaried: tuple[int, ...]
    moved: dict[str, frozenset[int]]  # table -> the ids of its rows the merge moved

    def active(self, at: datetime.datetime) -> bool:
        return self.at <= at and (self.undone is None or self.undone > at)


@dataclass
class Trail:
    """What a rebuild reads: the merge component of a customer (every party
    merged with it, at any time), their merges, their audit entries by
    entity, and their present rows."""

    customers: dict[int, dict[str, Any]]
    merges: list[Merge]
    entities: dict[tuple[str, int], Entity]

    def holder(self, pk: int, at: datetime.datetime) -> int:
        """The customer ``pk`` stood for at ``at``: itself, or the survivor its
        merges then in force lead to."""
        for _ in range(MAX_MERGE_STEPS):
            step = next((m for m in self.merges if m.merged == pk and m.active(at)), None)
            if step is None:
                break
            pk = step.survivor
        return pk

    @cached_property
    def primary_events(self) -> list[tuple[datetime.datetime, int, bool]]:
        """Every change of a contact's ``isPrimary`` (by merges too), oldest first."""
        events = [
            (c.at, pk, c.new is True)
            for (kind, pk), entity in self.entities.items()
            if kind == "Contact"
            for c in entity.fields.get("isPrimary", ())
        ]
        for merge in self.merges:
            events += [(merge.at, pk, False) for pk in merge.unprimaried]
            if merge.undone is not None:
                events += [(merge.undone, pk, True) for pk in merge.unprimaried]
        return sorted(events, key=lambda e: e[0])

    def origin(self, table: str, row: dict[str, Any]) -> tuple[int, datetime.datetime]:
        """The customer a row was created on, and when: its first audit entry's,
        or for a row that has none (seeded, or older than the trail) the one
        the earliest merge still in force moved it from (else its customer
        now) and its own creation time."""
        entity = self.entities.get((TYPES.get(table, ""), row["id"]))
        if entity is not None and entity.origin is not None and entity.created is not None:
            return entity.origin, entity.created
        origin = next(
            (
                m.merged
                for m in self.merges
                if m.undone is None and row["id"] in m.moved.get(table, ())
            ),
            row["customer"],
        )
        return origin, moment(row.get("created_at", row.get("at")))  # type: ignore[return-value]


MERGE_COLUMNS = "id, survivor, merged, merged_at, undone_at, moved"


def merge_of(row: Sequence[Any]) -> Merge:
    """A ``customer_merge`` row's facts (its columns in MERGE_COLUMNS' order)."""
    _, survivor, merged, merged_at, undone_at, moved_text = row
    moved = queries.load_json(moved_text or "{}")
    return Merge(
        survivor,
        merged,
        moment(merged_at),  # type: ignore[arg-type]
        moment(undone_at),
        tuple(moved.get("unprimariedContacts", ())),
        {table: frozenset(ids) for table, ids in moved.get("rows", {}).items()},
    )


async def merge_component(db: Database, pk: int) -> set[int]:
    """Every customer joined to ``pk`` by merges (done or undone)."""
    seen, frontier = {pk}, [pk]
    for _ in range(MAX_MERGE_STEPS):
        if not frontier:
            break
        marks = ", ".join("{}" for _ in frontier)
        rows = await db.fetch(
            f"SELECT survivor, merged FROM customer_merge WHERE survivor IN ({marks}) "
            f"OR merged IN ({marks})",
            *frontier,
            *frontier,
        )
        frontier = [end for row in rows for end in row.values() if end not in seen]
        seen.update(frontier)
    return seen


# reads customer rows by id (a request's DataLoader, whose cache the present
# read of the same customer has filled)
CustomerLoad = Callable[[int], Awaitable[dict[str, Any] | None]]


async def load_trail(db: Database, pk: int, load: CustomerLoad | None = None) -> Trail | None:
    """Everything a rebuild of customer ``pk`` (or of a record of its) reads:
    its merges and audit entries (one statement; for a customer merged with
    others, a walk of the merges and one statement for all of them), and the
    customers' rows (through ``load`` when given)."""
    ids = [pk]
    found = await fetch_trail(db, ids)
    merges = [merge_of(row) for row in found[0]]
    if any(end != pk for m in merges for end in (m.survivor, m.merged)):
        ids = sorted(await merge_component(db, pk))
        found = await fetch_trail(db, ids)
        merges = [merge_of(row) for row in found[0]]
    if load is None:
        rows = await queries.customers_by_ids(db, ids)
    else:
        rows = [row for row in await asyncio.gather(*map(load, ids)) if row is not None]
    if not any(row["id"] == pk for row in rows):
        return None
    return Trail({row["id"]: row for row in rows}, merges, entities_of(found[1]))


async def fetch_trail(db: Database, ids: Sequence[int]) -> tuple[list[list], list[list]]:
    """The merges touching customers ``ids`` and their audit entries, oldest
    first: each a JSON array built by the database, one text to parse rather
    than a row and a JSON text per entry (a third of a 1,000-entry rebuild's
    time went to those). An entry is ``[at, by, action, entity_type,
    entity_id, customer, changes]``."""
    marks = ", ".join("{}" for _ in ids)
    merges = f"survivor IN ({marks}) OR merged IN ({marks})"
    entries = f"customer IN ({marks}) AND entity_type IN ({REBUILT})"
    entry = "at, by, action, entity_type, entity_id, customer"
    if db.is_sqlite:
        sql = (
            f"SELECT (SELECT json_group_array(json_array({MERGE_COLUMNS})) FROM (SELECT * "
            f"FROM customer_merge WHERE {merges} ORDER BY id)) AS merges, "
            f"(SELECT json_group_array(json_array({entry}, json(changes))) FROM (SELECT * "
            f"FROM audit_entry WHERE {entries} ORDER BY id)) AS entries"
        )
    else:
        sql = (
            f"SELECT (SELECT json_agg(json_build_array({MERGE_COLUMNS}) ORDER BY id)::text "
            f"FROM customer_merge WHERE {merges}) AS merges, "
            f"(SELECT json_agg(json_build_array({entry}, changes) ORDER BY id)::text "
            f"FROM audit_entry WHERE {entries}) AS entries"
        )
    (row,) = await db.fetch(sql, *ids, *ids, *ids)
    return queries.load_json(row["merges"] or "[]"), queries.load_json(row["entries"] or "[]")


def entities_of(entries: Iterable[list[Any]]) -> dict[tuple[str, int], Entity]:
    """Audit entries (as :func:`fetch_trail` lists them) by entity."""
    entities: dict[tuple[str, int], Entity] = defaultdict(Entity)
    for text, by, action, entity_type, entity_id, customer, changes in entries:
        at = moment(text)
        assert at is not None
        entity = entities[(entity_type, entity_id)]
        if entity.created is None:
            entity.origin, entity.created = customer, at
        entity.times.append(at)
        entity.entries.append((at, by, action, changes))
    return entities


# ---------------------------------------------------------------- customers


def customer_at(
    catalog: Catalog, trail: Trail, pk: int, at: datetime.datetime
) -> dict[str, Any] | None:
    """Customer ``pk``'s row as it was at ``at`` (the shape
    :func:`crmgraph.db.queries.customers_by_ids` gives), or None if it did not
    exist yet. An ID merged away by then stands for its survivor."""
    pk = trail.holder(pk, at)
    now = trail.customers.get(pk)
    if now is None or moment(now["created_at"]) > at:  # type: ignore[operator]
        return None
    entity = trail.entities.get(("Customer", pk), Entity())
    row = dict(now)
    for column in CUSTOMER_COLUMNS:
        row[column] = value_at(entity.fields.get(camel(column), ()), at, now[column])
    for column in ("deleted_at", "erased_at"):
        row[column] = moment(row[column])
    row["merged_into"] = None
    stage_changes = entity.fields.get("stage", ())
    row["stage"] = value_at(stage_changes, at, now["stage"])
    descriptor = catalog.customer_type(row["kind"])
    stage = descriptor.lifecycle.stage(row["stage"]) if descriptor else None
    row["phase"] = stage.phase.value if stage else now["phase"]
    row["stage_entered_at"] = last_time(stage_changes, at, now["stage_entered_at"], now)
    row["attributes"] = attributes_at(catalog, entity, row["kind"], now, at)
    later = [t for t in entity.times if t > at]
    row["version"] = max(1, now["version"] - len(later))
    row["updated_at"] = max((t for t in entity.times if t <= at), default=now["created_at"])
    if later == [] and entity.times:
        row["updated_at"] = now["updated_at"]
    if now["erased_at"] is not None:
        row.update(dict.fromkeys(CUSTOMER_VALUES), name=ERASED_NAME, attributes={})
    return row


def last_time(
    changes: Sequence[Change], at: datetime.datetime, present: Any, now: dict[str, Any]
) -> Any:
    """When the last change at or before ``at`` was made (the present value
    when no change came after it; the creation time when none came before)."""
    if not any(c.at > at for c in changes):
        return present
    return max((c.at for c in changes if c.at <= at), default=now["created_at"])


def attributes_at(
    catalog: Catalog, entity: Entity, kind: str, now: dict[str, Any], at: datetime.datetime
) -> dict[str, Any]:
    """The typed attributes of type ``kind`` at ``at`` (audited as ``client.segment``)."""
    descriptor = catalog.customer_type(kind)
    if descriptor is None:
        return {}
    present = queries.load_json(now["attributes"]) if now["kind"] == kind else {}
    values = {}
    for attr in descriptor.attributes:
        path = f"{camel(kind)}.{camel(attr.name)}"
        value = value_at(entity.fields.get(path, ()), at, present.get(attr.name))
        if value is not None:
            values[attr.name] = value
    return values


# ---------------------------------------------------------------- records


# per rebuilt type: the columns the audit trail names (camelCase) and how
# each is typed (the trail keeps dates, times and money as text)
KEPT_COLUMNS = frozenset(("id", "customer", "created_at", "updated_at", "is_primary"))
AUDITED = {
    type_name: tuple(
        (f.row_key, camel(f.row_key), f.value) for f in fields if f.row_key not in KEPT_COLUMNS
    )
    for type_name, fields in RECORD_FIELDS.items()
}


def typed(kind: Value, value: Any) -> Any:
    """An audited value (dates, times and money are text) typed as the row holds it."""
    if not isinstance(value, str):
        return value
    if kind is Value.TIMESTAMP:
        return moment(value)
    if kind is Value.DATE:
        return datetime.date.fromisoformat(value)
    if kind is Value.MONEY:
        return Decimal(value)
    return value


def record_at(
    trail: Trail, type_name: str, now: dict[str, Any], at: datetime.datetime
) -> dict[str, Any] | None:
    """A contact's, need's or interaction's row as it was at ``at``; None if
    it did not exist yet. Its ``customer`` is the one it belonged to then."""
    origin, created = trail.origin(RECORDS[type_name], now)
    if created > at:
        return None
    row = dict(now)
    erased = trail.customers.get(origin, {}).get("erased_at") is not None
    anonymised = ANONYMISED.get(RECORDS[type_name], {}) if erased else {}
    entity = trail.entities.get((type_name, now["id"]))
    if entity is not None:  # interactions have none: never changed once logged
        changed = entity.fields
        for column, name, kind in AUDITED[type_name]:
            if name in changed and column in now and column not in anonymised:
                row[column] = typed(kind, value_at(changed[name], at, now[column]))
        if entity.times[-1] > at and "updated_at" in row:
            row["updated_at"] = max(t for t in entity.times if t <= at)
    row["customer"] = trail.holder(origin, at)
    if type_name == "Contact":
        row["is_primary"] = primary_at(trail, now, at)
    row.update(anonymised)  # as erasure left them, whatever the moment
    return row


def primary_at(trail: Trail, contact: dict[str, Any], at: datetime.datetime) -> bool:
    """Replayed: set by its own entries, cleared when another contact of the
    same customer became primary, or by a merge (and back on its undo). A
    contact with no entries (seeded) starts as it is now."""
    pk, (origin, _) = contact["id"], trail.origin("contact", contact)
    primary = ("Contact", pk) not in trail.entities and bool(contact["is_primary"])
    for when, other, new in trail.primary_events:
        if when > at:
            break
        if other == pk:
            primary = new
        elif new and primary:
            promoted = trail.entities[("Contact", other)].origin
            if promoted is not None and trail.holder(promoted, when) == trail.holder(origin, when):
                primary = False
    return primary


async def records_at(
    db: Database, trail: Trail, type_name: str, pk: int, at: datetime.datetime
) -> list[dict[str, Any]]:
    """Customer ``pk``'s contacts, needs or interactions as they were at ``at``."""
    rows = await queries.rows_by_column(db, RECORDS[type_name], "customer", sorted(trail.customers))
    found = [record_at(trail, type_name, row, at) for row in rows]
    return [row for row in found if row is not None and row["customer"] == pk]


async def rows_held_at(
    db: Database, past: PastCustomer, table: str, order: str = "id"
) -> list[dict[str, Any]]:
    """The rows of ``table`` (never updated once written: stage moves, consent
    statements) the customer had at its moment, whichever customer holds them
    now: a row a merge moved counts for the customer it came from until that
    merge. Each read as the past customer's."""
    trail, at, pk = past.trail, past.at, past.row["id"]
    rows = await queries.rows_by_column(db, table, "customer", sorted(trail.customers), order)
    kept = []
    for row in rows:
        origin, made = trail.origin(table, row)
        if made <= at and trail.holder(origin, at) == pk:
            kept.append(row if row["customer"] == pk else {**row, "customer": pk})
    return kept


async def stage_history_at(db: Database, past: PastCustomer) -> list[dict[str, Any]]:
    """The customer's lifecycle moves made by its moment."""
    return await rows_held_at(db, past, "stage_change", STAGE_HISTORY_ORDER)


async def consents_at(db: Database, past: PastCustomer) -> list[dict[str, Any]]:
    """The consent statements dated (``at``) by the customer's moment, a
    statement recorded later but dated earlier included, in the order they
    were recorded: :func:`crmgraph.privacy.consent.in_force` of them is what
    was in force then."""
    return await rows_held_at(db, past, "consent_change")


def contact_order(row: dict[str, Any]) -> tuple:
    """As :data:`crmgraph.paging.CONTACT_ORDER`: the primary first, by name."""
    return (not row["is_primary"], fold(row["name"] or ""), row["id"])


def need_order(row: dict[str, Any]) -> tuple:
    """As :data:`crmgraph.paging.NEED_ORDER`, newest first."""
    return (-moment(row["created_at"]).timestamp(), -row["id"])  # type: ignore[union-attr]


# ---------------------------------------------------------------- entry points


@dataclass(frozen=True)
class PastCustomer:
    """A customer rebuilt at ``at``, with what its lists need."""

    row: dict[str, Any]
    at: datetime.datetime
    trail: Trail


async def customer_as_of(
    db: Database,
    catalog: Catalog,
    pk: int,
    at: datetime.datetime,
    load: CustomerLoad | None = None,
) -> PastCustomer | None:
    """Customer ``pk`` at ``at`` with what its lists need (``load``: see
    :func:`load_trail`), or None if it did not exist then."""
    trail = await load_trail(db, pk, load)
    if trail is None:
        return None
    at = moment(at)  # type: ignore[assignment]
    row = customer_at(catalog, trail, pk, at)
    return PastCustomer(row, at, trail) if row is not None else None


async def lists_as_of(past: PastCustomer, db: Database, type_name: str) -> list[dict[str, Any]]:
    """The customer's contacts (in their order) or needs (newest first) at its moment."""
    rows = await records_at(db, past.trail, type_name, past.row["id"], past.at)
    if type_name == "Contact":
        rows.sort(key=contact_order)
    elif type_name == "Need":
        rows.sort(key=need_order)
    return rows


async def record_as_of(
    db: Database, type_name: str, pk: int, at: datetime.datetime
) -> dict[str, Any] | None:
    """One contact, need or interaction at ``at`` (``customer``: the one it
    belonged to then), or None."""
    now = await queries.rows_by_column(db, RECORDS[type_name], "id", [pk])
    if not now:
        return None
    trail = await load_trail(db, now[0]["customer"])
    return record_at(trail, type_name, now[0], moment(at)) if trail is not None else None  # type: ignore[arg-type]


async def interactions_at(
    db: Database,
    past: PastCustomer,
    limit: int,
    match: queries.InteractionMatch,
    before: tuple[Any, int] | None,
) -> list[dict[str, Any]]:
    """A page of a past customer's interactions, cut as
    :func:`crmgraph.db.queries.interaction_pages` cuts one (newest first,
    filtered, after the cursor's (occurred_at, id), at most ``limit``): those
    logged by its moment, on a customer that stood for it then. In SQL but
    for the parties' merges, which are followed here."""
    trail, at = past.trail, past.at
    where = queries.Where()
    where.add_in("i.customer", sorted(trail.customers))
    where.add("i.created_at <= {}", at)
    queries.interaction_conditions(where, match, "i")
    if before is not None:
        queries.after_key(where, "i.occurred_at", "i.id", True, before)
    cut = "" if trail.merges else f" LIMIT {int(limit)}"
    rows = await db.fetch(
        f"SELECT * FROM interaction i WHERE {where.sql()} "
        f"ORDER BY i.occurred_at DESC, i.id DESC{cut}",
        *where.args,
    )
    found = (record_at(trail, "Interaction", row, at) for row in rows)
    return [row for row in found if row is not None and row["customer"] == past.row["id"]][:limit]
