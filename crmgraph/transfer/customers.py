"""Importing customers.

A row is held to ``createCustomer``'s rules: name, e-mail and phone through
:mod:`crmgraph.input_checks`, the kind's typed attributes through
:func:`crmgraph.validation.attributes` (after :mod:`.coerce` reads the
cells), guarded attributes and the assignment rule for the caller, then
every plugin's ``crmgraph_validate_customer``. ``owner`` is a user's e-mail
(or id), ``team`` a team's name (or id). A bad row is rejected with every
reason and nothing of it is written.

A batch of good rows is written with one multi-row INSERT per table, leaving
what ``createCustomer`` leaves for each customer: its row, its role in the
type's initial stage, the first stage change (reason ``imported``), an audit
entry ``customer.created`` per customer (not one per batch: the trail is read
per customer), a ``customer.created`` outbox event (``source: import``) and
its match keys.

Duplicates (:mod:`.duplicates`): ``skip`` leaves the row out; ``create``
writes it anyway (without looking); ``merge`` folds it into the customer it
repeats with the merge rule of :func:`crmgraph.dedupe.merge.settle_fields`
(the existing record keeps its values and takes the row's where it has
none), one UPDATE per customer changed, audited and announced as
``customer.updated``. A row repeating a customer of another kind is rejected
under ``merge`` (merges keep one type) and skipped under ``skip``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from crmgraph import input_checks
from crmgraph import validation as v
from crmgraph.access import CUSTOMER_ASSIGN
from crmgraph.customer_types import CustomerType
from crmgraph.db import queries, writes
from crmgraph.db.bulk import insert_rows
from crmgraph.dedupe import matching
from crmgraph.dedupe.matching import Probe
from crmgraph.dedupe.merge import field_names, settle_fields
from crmgraph.extension_points import CustomerWrite
from crmgraph.lifecycle import CustomerSnapshot, Facts
from crmgraph.schema.ids import encode_id
from crmgraph.schema.mutations import (
    attribute_fields,
    camel_keys,
    forbidden_problem,
    guarded_problems,
)
from crmgraph.transfer.coerce import cell, typed
from crmgraph.transfer.duplicates import find_repeats
from crmgraph.transfer.importer import BatchOutcome, ImportContext, ImportOptions, Reject
from crmgraph.transfer.lookups import People
from crmgraph.transfer.mapping import ATTRIBUTE_PREFIX, ColumnMap, Fields, MappingError
from crmgraph.transfer.report import Rejection
from crmgraph.transfer.source import SourceRow
from crmgraph.transfer.traces import Trace, record
from crmgraph.validation import Errors, Problem

CORE_FIELDS = ("name", "email", "phone", "kind", "owner", "team")


@dataclass
class Draft:
    """A good row, ready to write."""

    row: SourceRow
    kind: str
    descriptor: CustomerType
    values: dict[str, Any]  # name, email, phone, owner, team
    attributes: dict[str, Any]  # validated, JSON-storable

    def probe(self) -> Probe:
        return Probe(
            name=self.values["name"],
            email=self.values["email"],
            phone=self.values["phone"],
            tax_id=self.attributes.get("tax_id"),
            kind=self.kind,
        )

    def as_row(self) -> dict[str, Any]:
        """Shaped like a customer row, for the merge rule."""
        return {**self.values, "attributes": self.attributes}


class CustomerImport:
    name = "customers"

    def __init__(self, ctx: ImportContext, options: ImportOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.catalog = ctx.catalog
        self.people = People()
        self.columns = ColumnMap({})

    def fields(self) -> Fields:
        attributes = {a.name for d in self.catalog.customer_types for a in d.attributes}
        return Fields(frozenset(CORE_FIELDS), frozenset(attributes), required=("name",))

    def bind(self, column_map: ColumnMap) -> None:
        kind = self.options.kind
        if kind is not None and self.catalog.customer_type(kind) is None:
            known = ", ".join(d.key for d in self.catalog.customer_types)
            raise MappingError(f"unknown kind {kind!r} (known: {known})")
        if kind is None and "kind" not in column_map.columns.values():
            raise MappingError("no column gives kind: map one, or give --kind for every row")
        self.columns = column_map

    async def prepare(self) -> None:
        self.people = await People.load(self.ctx.db)

    # ------------------------------------------------------------ checking

    def check(self, row: SourceRow) -> Draft | list[Problem]:
        cells = self.columns.project(row.values)
        errors = Errors()
        kind = (cell(cells.get("kind")) or self.options.kind or "").lower()
        descriptor = self.catalog.customer_type(kind) if kind else None
        if not kind:
            errors.add("kind", "kind is required", "REQUIRED")
        elif descriptor is None:
            known = ", ".join(d.key for d in self.catalog.customer_types)
            errors.add("kind", f"unknown kind {kind!r} (known: {known})", "INVALID_CHOICE")
        party = {"name": cell(cells.get("name"))}
        party |= {f: cell(cells[f]) for f in ("email", "phone") if f in cells}
        values = {"email": None, "phone": None}
        values |= input_checks.party_fields(errors, party, self.ctx.phone_region)
        values["owner"] = self.people.user(errors, "owner", cells.get("owner"))
        values["team"] = self.people.team(errors, "team", cells.get("team"))
        self.check_assignment(errors, values)
        attributes = self.check_attributes(errors, kind, descriptor, cells)
        if errors or descriptor is None:
            return errors.problems
        return Draft(row, kind, descriptor, values, attributes)

    def check_assignment(self, errors: Errors, values: dict[str, Any]) -> None:
        """As createCustomer: without customer.assign, only to yourself and
        your teams; a caller who sees only their own customers owns the rest."""
        access = self.ctx.access
        if access is None:
            return
        principal = access.principal
        if values["owner"] is None and access.scope is not None:
            values["owner"] = principal.user_id
        if access.can(CUSTOMER_ASSIGN):
            return
        if values["owner"] not in (None, principal.user_id):
            errors.problems.append(
                forbidden_problem("owner", "give a customer to another user", CUSTOMER_ASSIGN)
            )
        if values["team"] is not None and values["team"] not in principal.team_ids:
            errors.problems.append(
                forbidden_problem(
                    "team", "give a customer to a team you are not in", CUSTOMER_ASSIGN
                )
            )

    def check_attributes(
        self, errors: Errors, kind: str, descriptor: CustomerType | None, cells: dict[str, str]
    ) -> dict[str, Any]:
        sent: dict[str, Any] = {}
        for target, text in cells.items():
            if not target.startswith(ATTRIBUTE_PREFIX) or cell(text) is None:
                continue
            name = target.removeprefix(ATTRIBUTE_PREFIX)
            path = f"{v.camel(kind)}.{v.camel(name)}"
            attr = descriptor.attribute(name) if descriptor else None
            if attr is None:
                if descriptor is not None:
                    errors.add(path, f"{name} does not apply to a customer of kind {kind.upper()}")
                continue
            value = typed(errors, path, attr.type, text)
            if value is not None:
                sent[name] = value
        if descriptor is None:
            return {}
        if self.ctx.access is not None:
            errors.problems.extend(
                guarded_problems(
                    self.ctx.access, descriptor.graphql_name, f"{v.camel(kind)}.", sent
                )
            )
        return v.attributes(errors, v.camel(kind), descriptor, sent)

    async def plugin_check(self, draft: Draft) -> list[Problem]:
        write = CustomerWrite(
            draft.kind,
            draft.descriptor,
            {k: val for k, val in draft.values.items() if val is not None},
            draft.descriptor.decode_attributes(draft.attributes),
            existing=None,
            facts=None,
        )
        return await input_checks.plugin_problems(self.ctx.plugin_manager, write)

    # ------------------------------------------------------------ a batch

    async def run_batch(self, rows: list[SourceRow], reject: Reject) -> BatchOutcome:
        good: list[Draft] = []
        for row in rows:
            checked = self.check(row)
            if isinstance(checked, Draft):
                checked = await self.plugin_check(checked) or checked
            if isinstance(checked, Draft):
                good.append(checked)
            else:
                reject(Rejection(row.number, row.values, tuple(checked)))
        outcome = BatchOutcome()
        mode = self.options.on_duplicate
        if mode == "create" or not good:
            await self.create(good)
            outcome.created = len(good)
            return outcome
        access = self.ctx.access
        repeats = await find_repeats(
            self.ctx.db,
            [draft.probe() for draft in good],
            self.ctx.phone_region,
            access.sees if access is not None and access.scope is not None else None,
        )
        new: list[Draft] = []
        into_existing: dict[int, list[Draft]] = defaultdict(list)
        for draft, repeat in zip(good, repeats, strict=True):
            if repeat is None:
                new.append(draft)
            elif mode == "skip":
                outcome.skipped_duplicates += 1
            elif repeat.customer_id is not None:
                into_existing[repeat.customer_id].append(draft)
            else:
                first = good[repeat.row_index]  # type: ignore[index]
                if not self.fold(first, draft, reject):
                    continue
                outcome.merged += 1
        await self.create(new)
        outcome.created = len(new)
        outcome.merged += await self.merge(into_existing, reject)
        return outcome

    def fold(self, first: Draft, later: Draft, reject: Reject) -> bool:
        """Merge a row into an earlier row of the batch, not written yet."""
        if first.kind != later.kind:
            reject(self.other_kind(later, first.kind, f"row {first.row.number}"))
            return False
        values, attributes = settle_fields(
            field_names(self.catalog, first.kind), {}, first.as_row(), later.as_row()
        )
        first.values, first.attributes = values, attributes
        return True

    @staticmethod
    def other_kind(draft: Draft, kind: str, what: str) -> Rejection:
        problem = Problem(
            "kind",
            f"repeats {what}, a customer of kind {kind.upper()}: merging keeps one kind",
            "DUPLICATE",
        )
        return Rejection(draft.row.number, draft.row.values, (problem,))

    # ------------------------------------------------------------ writing

    async def create(self, drafts: list[Draft]) -> list[int]:
        if not drafts:
            return []
        db, actor, at = self.ctx.db, self.ctx.actor, writes.now()
        ids = await insert_rows(
            db,
            "customer",
            [
                {
                    "kind": d.kind,
                    **{column: d.values[column] for column in writes.UPDATABLE_CUSTOMER_COLUMNS},
                    "attributes": writes.dump_json(d.attributes),
                    "version": 1,
                    "created_at": at,
                    "updated_at": at,
                }
                for d in drafts
            ],
        )
        pairs = list(zip(ids, drafts, strict=True))
        await insert_rows(
            db,
            "customer_role",
            [
                {"customer": pk, "kind": d.kind, "stage": d.descriptor.lifecycle.initial,
                 "phase": d.descriptor.lifecycle.initial_phase, "entered_at": at}
                for pk, d in pairs
            ],
            returning=False,
        )  # fmt: skip
        await insert_rows(
            db,
            "stage_change",
            [
                {"customer": pk, "kind": d.kind, "from_stage": None,
                 "to_stage": d.descriptor.lifecycle.initial,
                 "at": at, "by": actor, "reason": "imported"}
                for pk, d in pairs
            ],
            returning=False,
        )  # fmt: skip
        await self.record(
            "customer.created",
            [
                (
                    pk,
                    writes.field_changes(
                        None,
                        {
                            "kind": d.kind,
                            **camel_keys(d.values),
                            **attribute_fields(d.kind, d.attributes),
                        },
                    ),
                    {"kind": d.kind},
                )
                for pk, d in pairs
            ],
            at,
        )
        await matching.insert_match_keys(
            db, {pk: d.probe() for pk, d in pairs}, self.ctx.phone_region
        )
        return ids

    async def record(
        self,
        action: str,
        entries: list[tuple[int, dict[str, list[Any]], dict[str, Any]]],
        at: Any,
    ) -> None:
        """An audit entry and an outbox event per customer: (pk, changes, payload)."""
        traces = [
            Trace(pk, pk, changes, {"customerId": encode_id("Customer", pk), **payload})
            for pk, changes, payload in entries
        ]
        await record(self.ctx.db, self.ctx.actor, action, "Customer", traces, at)

    async def merge(self, into: dict[int, list[Draft]], reject: Reject) -> int:
        """Fold rows into the existing customers they repeat; how many rows."""
        if not into:
            return 0
        db = self.ctx.db
        merged_rows = 0
        changed_ids: list[int] = []
        entries = []
        for current in await queries.customers_by_ids(db, sorted(into)):
            pk, kind = current["id"], current["kind"]
            drafts = into[pk]
            fitting = [d for d in drafts if d.kind == kind]
            for draft in drafts:
                if draft.kind != kind:
                    reject(self.other_kind(draft, kind, encode_id("Customer", pk)))
            if not fitting:
                continue
            names = field_names(self.catalog, kind)
            after: dict[str, Any] = dict(current)
            for draft in fitting:
                values, attributes = settle_fields(names, {}, after, draft.as_row())
                after |= values | {"attributes": attributes}
            descriptor = self.catalog.customer_type(kind)
            assert descriptor is not None  # a candidate is of a loaded kind
            before_attrs = queries.load_json(current["attributes"])
            changes = {
                c: after[c] for c in writes.UPDATABLE_CUSTOMER_COLUMNS if after[c] != current[c]
            }
            attrs_changed = after["attributes"] != before_attrs
            if changes or attrs_changed:
                write = CustomerWrite(
                    kind,
                    descriptor,
                    changes,
                    descriptor.decode_attributes(after["attributes"]),
                    CustomerSnapshot.from_row(current, descriptor),
                    Facts(db, pk),
                )
                problems = await input_checks.plugin_problems(self.ctx.plugin_manager, write)
                if problems:
                    for draft in fitting:
                        reject(Rejection(draft.row.number, draft.row.values, tuple(problems)))
                    continue
                await writes.update_customer(
                    db,
                    pk,
                    current["version"],
                    changes,
                    after["attributes"] if attrs_changed else None,
                )
                diff = writes.field_changes(
                    camel_keys({k: current[k] for k in changes}), camel_keys(changes)
                )
                diff |= writes.field_changes(
                    attribute_fields(kind, before_attrs),
                    attribute_fields(kind, after["attributes"]),
                )
                entries.append((pk, diff, {"kind": kind, "fields": sorted(diff)}))
                changed_ids.append(pk)
            merged_rows += len(fitting)
        if entries:
            await self.record("customer.updated", entries, writes.now())
            await matching.refresh_match_keys(db, changed_ids)
        return merged_rows
