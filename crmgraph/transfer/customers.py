"""Importing customers.

A row is held to ``createCustomer``'s rules (:mod:`.customer_rows`); a bad
row is rejected with every reason and nothing of it is written. ``owner`` is
a user's e-mail (or id), ``team`` a team's name (or id). On the command line
(an import for no user) an owner e-mail or team name the database does not
know is created: the user as an ``agent`` (an owner works on their own
customers; never more, whatever the file says) with ``owner.name`` as name,
without any API key. A caller over GraphQL gets NOT_FOUND for them, as
``createCustomer`` does.

A row's ``stage``, ``stage_entered_at`` and ``roles`` are taken as history,
not as a move: no transition guard runs, and each role gets one stage change
with reason ``imported``.

A batch of good rows is written with one multi-row INSERT per table, leaving
what ``createCustomer`` leaves for each customer: its row, its role in its
stage and the first stage change (reason ``imported``), written by
:mod:`crmgraph.operations.new_customers` as for ``createCustomer``, an audit
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

Refs (:mod:`.references`): a row whose ``ref`` an earlier import took in
(or this database's own) repeats that customer, in every mode (``create``
included: a ref names one party). Otherwise the matcher decides, except that
a row never repeats a customer holding another ref of the row's origin, nor
an earlier row of the file with another such ref: the source kept them apart.
The ref of each row is kept for the customer it was written to, merged into
or found to repeat, so the contacts, interactions and needs of the same
export find it by ``customer.ref``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crmgraph import input_checks
from crmgraph.access import ADMIN, Policy
from crmgraph.auth import Principal
from crmgraph.db import queries, stays, writes
from crmgraph.dedupe import matching
from crmgraph.dedupe.merge import field_names, settle_fields
from crmgraph.extension_points import CustomerWrite
from crmgraph.hook_contexts import CustomerSnapshot, Facts
from crmgraph.ids import encode_id
from crmgraph.input_checks import attribute_fields, camel_keys
from crmgraph.operations.actor import Actor
from crmgraph.operations.new_customers import write_new_customers
from crmgraph.operations.roles import NewRole, add_role
from crmgraph.registry import Catalog
from crmgraph.transfer.customer_rows import Draft, RowCheck
from crmgraph.transfer.duplicates import Repeat, Within, find_repeats, pairs_within
from crmgraph.transfer.export import role_columns
from crmgraph.transfer.importer import BatchOutcome, ImportContext, ImportOptions, Reject
from crmgraph.transfer.lookups import People
from crmgraph.transfer.mapping import ColumnMap, Fields, MappingError
from crmgraph.transfer.references import REF, RefBook, known_origin, origin_of
from crmgraph.transfer.report import Rejection
from crmgraph.transfer.source import SourceRow
from crmgraph.transfer.traces import Trace, record
from crmgraph.validation import Problem, UserInputError

CORE_FIELDS = ("name", "email", "phone", "kind", "owner", "owner.name", "team", REF)
LIFECYCLE_FIELDS = ("stage", "stage_entered_at", "roles", "former_roles")
PHASES_PER_STATEMENT = 500
# rows checked between two turns given to the batch being written (~1 ms)
ROWS_BETWEEN_TURNS = 4


def role_fields(catalog: Catalog) -> list[str]:
    """A further role's columns, for every kind that may be one."""
    kinds = [d.key for d in catalog.customer_types if d.secondary_role]
    return role_columns(catalog, kinds)


def role_changes(kind: str, stage: str, attributes: Mapping[str, Any]) -> dict[str, list[Any]]:
    """A further role's audit changes, as ``addRole`` writes them."""
    return writes.field_changes(
        None, {f"roles.{kind}.stage": stage, **attribute_fields(kind, dict(attributes))}
    )


def apart(ref: str, other: str) -> bool:
    """Whether two refs name two records their origin keeps apart."""
    return bool(other) and other != ref and origin_of(other) == origin_of(ref)


@dataclass
class CheckedRows:
    """A batch's good rows, checked, with what the writing needs of them
    that was found without the database: their normal forms and the pairs
    among them (:func:`.duplicates.pairs_within`, by index in ``good``)."""

    good: list[Draft]
    normals: matching.Normals
    within: list[Within]

    def within_part(self, drafts: list[Draft]) -> list[Within]:
        """The pairs among ``drafts`` (some of ``good``, in its order), by index
        in ``drafts``: those of the whole batch between two of them."""
        position = {id(draft): index for index, draft in enumerate(drafts)}
        found = []
        for first, later, value, reasons in self.within:
            one, other = position.get(id(self.good[first])), position.get(id(self.good[later]))
            if one is not None and other is not None:
                found.append((one, other, value, reasons))
        return found


class CustomerImport:
    name = "customers"

    def __init__(self, ctx: ImportContext, options: ImportOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.catalog = ctx.catalog
        self.people = People()
        self.columns = ColumnMap({})
        self.book = RefBook(ctx.db, "Customer", None)
        self.taken: list[tuple[str | None, int]] = []  # a batch's (ref, customer) to remember
        # the batch being written, with its probes' normal forms
        self.batch = CheckedRows([], matching.Normals(), [])

    def fields(self) -> Fields:
        attributes = {a.name for d in self.catalog.customer_types for a in d.attributes}
        core = frozenset((*CORE_FIELDS, *LIFECYCLE_FIELDS, *role_fields(self.catalog)))
        return Fields(core, frozenset(attributes), required=("name",))

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
        self.book = RefBook(self.ctx.db, "Customer", await known_origin(self.ctx.db))

    # ------------------------------------------------------------ a batch

    async def run_batch(self, rows: list[SourceRow], reject: Reject) -> BatchOutcome:
        return await self.write_batch(await self.check_batch(rows, reject), reject)

    @property
    def checks_offline(self) -> bool:
        """Only the command line's owners and teams the database lacks are
        created (written) while the rows are checked."""
        mapped = set(self.columns.columns.values())
        return self.ctx.access is not None or not mapped & {"owner", "owner.name", "team"}

    async def check_batch(self, rows: list[SourceRow], reject: Reject) -> CheckedRows:
        """The good rows, with what the writing needs of them that reads
        nothing: their normal forms (for the screening and the keys), the
        pairs among them and their audit entries' changes, computed here,
        where the batch before is being written (the writing waits on
        PostgreSQL; this side is what Python does meanwhile)."""
        good = await self.check_rows(rows, reject)
        normals = matching.Normals()
        region = self.ctx.phone_region
        for number, draft in enumerate(good, 1):
            if number % ROWS_BETWEEN_TURNS == 0:
                await asyncio.sleep(0)
            normals.of(draft.probe(), region)
            draft.created_changes()  # kept on the draft
        within = []
        if self.options.on_duplicate != "create":
            within = pairs_within([d.probe() for d in good], region, normals)
        return CheckedRows(good, normals, within)

    async def write_batch(self, checked: CheckedRows, reject: Reject) -> BatchOutcome:
        """Screen the checked rows and write them (importer.Pipelined)."""
        self.batch = checked
        good = checked.good
        outcome = BatchOutcome()
        self.taken = []
        known, hidden = await self.known_customers(good)
        sorted_rows = await self.sort_rows(good, known, outcome, reject)
        new, later, into_existing, roles = sorted_rows
        created = dict(zip(map(id, new), await self.create(new), strict=True))
        outcome.created = len(new)
        outcome.merged += await self.merge(into_existing, reject)
        parties = [(d, p if isinstance(p, int) else created[id(p)]) for d, p in roles]
        outcome.roles_added, held = await self.add_roles(parties, reject)
        outcome.skipped_duplicates += held
        self.taken += [(d.ref, pk) for d, pk in zip(new, created.values(), strict=True)]
        self.taken += [(d.ref, created[id(first)]) for d, first in later if id(first) in created]
        kept = [(ref, pk) for ref, pk in self.taken if ref is not None and ref not in hidden]
        await self.book.remember(kept)
        return outcome

    async def check_rows(self, rows: list[SourceRow], reject: Reject) -> list[Draft]:
        """The batch's good rows; the others rejected with every reason."""
        await self.add_missing_people(rows)
        rows_check = RowCheck(self.ctx, self.options.kind, self.columns, self.people)
        good: list[Draft] = []
        for number, row in enumerate(rows, 1):
            if number % ROWS_BETWEEN_TURNS == 0:
                # the batch written meanwhile (importer.pipeline) sends its next statement
                await asyncio.sleep(0)
            checked = rows_check.check(row)
            if isinstance(checked, Draft):
                checked = await rows_check.plugin_check(checked) or checked
            if isinstance(checked, Draft):
                good.append(checked)
            else:
                reject(Rejection(row.number, row.values, tuple(checked)))
        return good

    async def sort_rows(
        self,
        good: list[Draft],
        known: dict[str | None, int | None],
        outcome: BatchOutcome,
        reject: Reject,
    ) -> tuple[list[Draft], list[tuple[Draft, Draft]], dict[int, list[Draft]], list[Any]]:
        """What each good row becomes: a new customer; a repeat of an earlier
        row (``later``: skipped or folded into it); a merge into an existing
        customer; or, with ``add_roles``, a further role of the party it
        repeats when its kind is another (the party's pk, or the earlier row)."""
        into_existing: dict[int, list[Draft]] = defaultdict(list)
        rest = [d for d in good if d.ref not in known]
        repeats = await self.repeats(rest)
        kinds = await self.party_kinds([*known.values(), *(r.customer_id for r in repeats if r)])
        roles: list[tuple[Draft, int | Draft]] = []
        for draft in good:
            if draft.ref not in known:
                continue
            party = known[draft.ref]
            if party is not None and self.adds_role(draft, kinds.get(party)):
                roles.append((draft, party))
            elif self.options.on_duplicate == "merge" and party is not None:
                into_existing[party].append(draft)
            else:  # a ref names one party, whatever the mode
                outcome.skipped_duplicates += 1
        new: list[Draft] = []
        later: list[tuple[Draft, Draft]] = []  # (row, the earlier row of the batch it repeats)
        for draft, repeat in zip(rest, repeats, strict=True):
            first = rest[repeat.row_index] if repeat and repeat.row_index is not None else None
            if repeat is None:
                new.append(draft)
            elif self.adds_role(draft, first.kind if first else kinds.get(repeat.customer_id)):
                roles.append((draft, first or repeat.customer_id))  # type: ignore[arg-type]
            elif first is None:
                assert repeat.customer_id is not None
                if self.options.on_duplicate == "merge":
                    into_existing[repeat.customer_id].append(draft)
                else:
                    outcome.skipped_duplicates += 1
                    self.taken.append((draft.ref, repeat.customer_id))
            elif self.options.on_duplicate != "merge":
                outcome.skipped_duplicates += 1
                later.append((draft, first))
            elif self.fold(first, draft, reject):
                outcome.merged += 1
                later.append((draft, first))
        return new, later, into_existing, roles

    def adds_role(self, draft: Draft, party_kind: str | None) -> bool:
        """Whether a row repeating a party of ``party_kind`` adds its own kind
        to it as a further role: asked for (``add_roles``), and another kind."""
        return self.options.add_roles and party_kind not in (None, draft.kind)

    async def party_kinds(self, pks: list[int | None]) -> dict[int, str]:
        """The primary kind of each customer a row repeats (with ``add_roles``)."""
        wanted = sorted({pk for pk in pks if pk is not None})
        if not self.options.add_roles or not wanted:
            return {}
        rows = await queries.customers_by_ids(self.ctx.db, wanted)
        return {row["id"]: row["kind"] for row in rows}

    async def add_missing_people(self, rows: list[SourceRow]) -> None:
        """On the command line, the owners and teams the database lacks."""
        if self.ctx.access is not None:
            return
        for row in rows:
            cells = self.columns.project(row.values)
            await self.people.add_user(self.ctx.db, cells.get("owner"), cells.get("owner.name"))
            await self.people.add_team(self.ctx.db, cells.get("team"))

    async def known_customers(
        self, drafts: list[Draft]
    ) -> tuple[dict[str | None, int | None], set[str]]:
        """For rows whose ref names a customer already: the live customer it
        stands for (its survivor), or None when that one is deleted; and the
        refs of customers the caller may not see, which are as unknown to
        them (writes reveal nothing reads hide) and keep naming their own."""
        known = await self.book.resolve(d.ref for d in drafts if d.ref is not None)
        if not known:
            return {}, set()
        rows = {
            r["id"]: r
            for r in await queries.customers_by_ids(self.ctx.db, sorted(set(known.values())))
        }

        async def load(pk: int) -> dict[str, Any] | None:
            if pk not in rows:
                rows.update({r["id"]: r for r in await queries.customers_by_ids(self.ctx.db, [pk])})
            return rows.get(pk)

        access = self.ctx.access
        sees = access.sees if access is not None else (lambda row: True)
        found: dict[str | None, int | None] = {}
        hidden: set[str] = set()
        for ref, pk in known.items():
            standing = await writes.survivor(rows.get(pk), load)
            if standing is not None and not sees(standing):
                hidden.add(ref)
                continue
            live = standing is not None and standing["deleted_at"] is None
            found[ref] = standing["id"] if live and standing.get("erased_at") is None else None  # type: ignore[index]
        return found, hidden

    async def repeats(self, drafts: list[Draft]) -> list[Repeat | None]:
        """What each row repeats: the duplicate matcher's answer (none under
        ``create``), then a repeated ref; two records one origin keeps apart
        are never one."""
        if not drafts:
            return []
        repeats: list[Repeat | None] = [None] * len(drafts)
        if self.options.on_duplicate != "create":
            access = self.ctx.access
            repeats = await find_repeats(
                self.ctx.db,
                [draft.probe() for draft in drafts],
                self.ctx.phone_region,
                access.sees if access is not None and access.scope is not None else None,
                self.batch.normals,
                self.batch.within_part(drafts),
            )
            holders: dict[int, set[str]] = {}
            if any(draft.ref is not None for draft in drafts):  # only rows with a ref ask
                holders = await self.book.refs_of(
                    {r.customer_id for r in repeats if r is not None and r.customer_id is not None}
                )
            for index, (draft, repeat) in enumerate(zip(drafts, repeats, strict=True)):
                if repeat is None or draft.ref is None:
                    continue
                if repeat.customer_id is not None:
                    others = holders.get(repeat.customer_id, set())
                else:
                    others = {drafts[repeat.row_index].ref or ""}  # type: ignore[index]
                if any(apart(draft.ref, other) for other in others):
                    repeats[index] = None
        first_with: dict[str, int] = {}
        for index, draft in enumerate(drafts):
            if draft.ref is None:
                continue
            if draft.ref not in first_with:
                first_with[draft.ref] = index
            elif repeats[index] is None:
                first = first_with[draft.ref]
                above = repeats[first]
                repeats[index] = above or Repeat(None, first, "the same ref")
        return repeats

    def fold(self, first: Draft, later: Draft, reject: Reject) -> bool:
        """Merge a row into an earlier row of the batch, not written yet."""
        if first.kind != later.kind:
            reject(self.other_kind(later, first.kind, f"row {first.row.number}"))
            return False
        values, attributes = settle_fields(
            field_names(self.catalog, first.kind), {}, first.as_row(), later.as_row()
        )
        first.values, first.attributes = values, attributes
        first.changed()
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
        db, at = self.ctx.db, writes.now()
        ids = await write_new_customers(
            db,
            self.catalog,
            [d.new_customer() for d in drafts],
            by=self.ctx.actor,
            reason="imported",
            at=at,
        )
        pairs = list(zip(ids, drafts, strict=True))
        # entries past a type's first stage, or in several types, need the funnel's
        # phase columns (an initial entry alone keeps their defaults, as createCustomer's)
        placed = [pk for pk, d in pairs if d.lifecycle_fields()]
        for start in range(0, len(placed), PHASES_PER_STATEMENT):
            await stays.record_phases(db, placed[start : start + PHASES_PER_STATEMENT])
        await self.record(
            "customer.created", [(pk, d.created_changes(), {"kind": d.kind}) for pk, d in pairs], at
        )
        await self.record(
            "customer.role_added",
            [
                (
                    pk,
                    role_changes(kind, stage, d.held[kind].attributes),
                    {"kind": kind, "stage": stage},
                )
                for pk, d in pairs
                for kind, stage in d.roles
                if kind in d.held
            ],
            at,
        )
        await matching.insert_match_keys(
            db, {pk: d.probe() for pk, d in pairs}, self.ctx.phone_region, self.batch.normals
        )
        return ids

    async def add_roles(self, rows: list[tuple[Draft, int]], reject: Reject) -> tuple[int, int]:
        """Give each party the kind of the row repeating it as a further role,
        by ``addRole``'s own operation (:func:`crmgraph.operations.roles.add_role`,
        joining the import's transaction): its checks, audit entry and event.
        How many were added, and how many the party held already (skipped)."""
        if not rows:
            return 0, 0
        db, actor = self.ctx.db, self.actor()
        await writes.lock_parties(db, {pk for _, pk in rows})
        added = held = 0
        for draft, pk in rows:
            initial = draft.descriptor.lifecycle.initial
            if draft.stage != initial:
                reject(self.not_initial(draft, initial))
                continue
            (current,) = await queries.customers_by_ids(db, [pk])
            typed = draft.descriptor.decode_attributes(draft.attributes)
            sent = {name: value for name, value in typed.items() if value is not None}
            new = NewRole(pk, draft.kind, current["version"], {draft.kind: sent}, source="import")
            try:
                await add_role(db, self.catalog, self.ctx.plugin_manager, actor, new)
            except UserInputError as exc:
                if [p.code for p in exc.problems] != ["ROLE_HELD"]:
                    reject(Rejection(draft.row.number, draft.row.values, tuple(exc.problems)))
                    continue
                held += 1
            else:
                added += 1
            self.taken.append((draft.ref, pk))
        return added, held

    def actor(self) -> Actor:
        """Who a role is added for: the caller, or on the command line (no
        caller) an administrator who is no user, as the import's own writes."""
        access = self.ctx.access
        if access is None:
            policy = Policy.from_catalog(self.catalog)
            access = policy.access(Principal(None, "command line", ADMIN))
        return Actor(access, self.ctx.phone_region)

    @staticmethod
    def not_initial(draft: Draft, initial: str) -> Rejection:
        problem = Problem(
            "stage",
            f"a {draft.kind.upper()} role added to an existing party starts in its first "
            f"stage, {initial!r}, as addRole adds it (not {draft.stage!r}): move it afterwards",
            "INVALID",
        )
        return Rejection(draft.row.number, draft.row.values, (problem,))

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
        # the party lock before reading them (crmgraph.db.writes.lock_parties):
        # a merge of one waits for the batch; one merged meanwhile is not
        # written to (update_customer's compare-and-set refuses it)
        await writes.lock_parties(db, into)
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
                    Facts(db, pk, self.catalog),
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
            self.taken += [(draft.ref, pk) for draft in fitting]
        if entries:
            await self.record("customer.updated", entries, writes.now())
            await matching.refresh_match_keys(db, changed_ids)
        return merged_rows
