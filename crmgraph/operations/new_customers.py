"""Writing new customers: what a new customer leaves in the database, written
once for the API's ``createCustomer``, the CSV import and the demo seed.

A new customer is its ``customer`` row (with the folded copies of its name
and e-mail, :mod:`crmgraph.db.text_keys`), a ``customer_role`` per customer
type it holds (the stage it is in, its phase and since when) and the
``stage_change`` rows of its history: an entry into its first stage (reason
``created`` from the API, ``imported`` from an import, which may also place
it further along and in other types), or a whole walk along its lifecycle
(the demo's). Of the other types, those in ``held`` are further roles the
party holds (:mod:`crmgraph.operations.roles`: the row carries the role's
attributes and when it was added); the rest are history (a type a
conversion left). A batch is written with one multi-row INSERT per table (a
single customer is a batch of one: three statements) and the new ids come
back in the batch's order. On PostgreSQL a batch by COPY brings the
rollups its triggers keep up to date once, after the three tables
(:mod:`crmgraph.db.batch_rollups`), not once per table.

The rest of what a write leaves stays with its caller, as before: the audit
entries and outbox events (the API's and the import's; the demo seed writes
none), the match keys (:mod:`crmgraph.dedupe.matching`) and the stays and
phases of a history past its first entry (:mod:`crmgraph.db.stays`).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crmgraph.customer_types import CustomerType
from crmgraph.db import batch_rollups, writes
from crmgraph.db.bulk import insert_rows
from crmgraph.db.engine import Database
from crmgraph.hook_contexts import CustomerTypeLookup

Row = dict[str, Any]


@dataclass(frozen=True)
class StageEntry:
    """One row of a new customer's stage history: it entered ``stage`` of
    type ``kind`` (from ``from_stage`` of that type, or from nothing)."""

    kind: str
    stage: str
    at: datetime.datetime
    reason: str | None
    by: int | None = None
    from_stage: str | None = None


@dataclass(frozen=True)
class HeldRole:
    """A further role a new customer holds from the start: its kind's typed
    attributes (encoded, as stored) and when it entered its stage (None:
    when written), which is also when it was added."""

    attributes: Mapping[str, Any] = field(default_factory=dict)
    entered_at: datetime.datetime | None = None


@dataclass(frozen=True)
class NewCustomer:
    """A customer to create, its values already checked.

    Without ``history`` it enters ``stage`` of its kind (None: the initial
    one) at ``entered_at`` (None: when written), and each of ``roles``, the
    other types it holds as ``(kind, stage)``, when written (a held role's
    at its ``entered_at``). ``history`` is a whole stage history instead, in
    the order it happened. ``held``: which other types are further roles."""

    kind: str
    fields: Mapping[str, Any]  # name, and any of email, phone, owner, team
    attributes: Mapping[str, Any]  # encoded: as the kind's descriptor stores them
    stage: str | None = None
    entered_at: datetime.datetime | None = None
    roles: Sequence[tuple[str, str]] = ()
    history: Sequence[StageEntry] = ()
    held: Mapping[str, HeldRole] = field(default_factory=dict)
    version: int = 1
    created_at: datetime.datetime | None = None  # None: when written
    updated_at: datetime.datetime | None = None  # None: its created_at

    def entries(
        self, catalog: CustomerTypeLookup, at: datetime.datetime, by: int | None, reason: str
    ) -> Sequence[StageEntry]:
        """Its stage history, as written (``at``, ``by``, ``reason``: the write's)."""
        if self.history:
            return self.history
        stage = self.stage or descriptor_of(catalog, self.kind).lifecycle.initial
        first = StageEntry(self.kind, stage, self.entered_at or at, reason, by)
        return [first, *(StageEntry(kind, st, self.role_time(kind, at), reason, by)
                         for kind, st in self.roles)]  # fmt: skip

    def role_time(self, kind: str, at: datetime.datetime) -> datetime.datetime:
        held = self.held.get(kind)
        return (held.entered_at if held else None) or at


def descriptor_of(catalog: CustomerTypeLookup, kind: str) -> CustomerType:
    descriptor = catalog.customer_type(kind)
    if descriptor is None:
        raise ValueError(f"unknown customer type {kind!r}")
    return descriptor


def current_stages(entries: Sequence[StageEntry]) -> list[StageEntry]:
    """The last entry in each type, in the order the types were first entered:
    where the customer stands in each (its ``customer_role`` rows)."""
    last: dict[str, StageEntry] = {}
    for entry in entries:
        last[entry.kind] = entry
    return list(last.values())


def customer_row(customer: NewCustomer, at: datetime.datetime) -> Row:
    created = customer.created_at or at
    return {
        "kind": customer.kind,
        **{column: customer.fields.get(column) for column in writes.UPDATABLE_CUSTOMER_COLUMNS},
        "attributes": writes.dump_json(dict(customer.attributes)),
        "version": customer.version,
        "created_at": created,
        "updated_at": customer.updated_at or created,
    }


def role_row(catalog: CustomerTypeLookup, pk: int, entry: StageEntry, customer: NewCustomer) -> Row:
    stage = descriptor_of(catalog, entry.kind).lifecycle.stage(entry.stage)
    if stage is None:
        raise ValueError(f"{entry.stage!r} is not a stage of {entry.kind!r}")
    held = customer.held.get(entry.kind) if entry.kind != customer.kind else None
    return {
        "customer": pk,
        "kind": entry.kind,
        "stage": stage.key,
        "phase": stage.phase.value,
        "entered_at": entry.at,
        "attributes": writes.dump_json(dict(held.attributes) if held else {}),
        # a held role was added when its history starts; the rest are no roles
        "added_at": first_entry(customer, entry.kind, entry.at) if held else None,
    }


def first_entry(customer: NewCustomer, kind: str, at: datetime.datetime) -> datetime.datetime:
    """When the customer first entered type ``kind`` (``at`` without a history)."""
    return next((e.at for e in customer.history if e.kind == kind), at)


def change_row(pk: int, entry: StageEntry) -> Row:
    return {
        "customer": pk,
        "kind": entry.kind,
        "from_stage": entry.from_stage,
        "to_stage": entry.stage,
        "at": entry.at,
        "by": entry.by,
        "reason": entry.reason,
    }


async def write_new_customers(
    db: Database,
    catalog: CustomerTypeLookup,
    customers: Sequence[NewCustomer],
    *,
    by: int | None = None,
    reason: str = "created",
    at: datetime.datetime | None = None,
) -> list[int]:
    """Write the customers, their roles and their stage histories (three
    multi-row INSERTs per batch); their new ids, in order. ``by`` (the
    acting user: ``writes.current_actor.get()`` in a mutation), ``reason``
    and ``at`` (default: now) are those of the entries the write makes up."""
    if not customers:
        return []
    at = at or writes.now()
    deferred = await batch_rollups.defer(db, len(customers))
    ids = await insert_rows(db, "customer", [customer_row(c, at) for c in customers])
    histories = [
        (pk, c.entries(catalog, at, by, reason)) for pk, c in zip(ids, customers, strict=True)
    ]
    roles = [
        role_row(catalog, pk, entry, customer)
        for (pk, entries), customer in zip(histories, customers, strict=True)
        for entry in current_stages(entries)
    ]
    await insert_rows(db, "customer_role", roles, returning=False)
    changes = [change_row(pk, entry) for pk, entries in histories for entry in entries]
    await insert_rows(db, "stage_change", changes, returning=False)
    if deferred:  # before anything else: the rows are counted
        await batch_rollups.catch_up(db, ids)
    return ids


async def write_new_customer(
    db: Database,
    catalog: CustomerTypeLookup,
    customer: NewCustomer,
    *,
    by: int | None = None,
    reason: str = "created",
) -> int:
    """One customer (``createCustomer``): its new id."""
    (pk,) = await write_new_customers(db, catalog, [customer], by=by, reason=reason)
    return pk
