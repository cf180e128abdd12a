"""Importing records that hang off a customer: contacts, interactions and needs.

Each row is checked on its own fields with the rules of the mutation that
creates one (``addContact``, ``logInteraction``: :mod:`crmgraph.input_checks`,
guarded fields for the caller), finds its customer (:mod:`.refs`) and is
rejected with every reason when anything is wrong; nothing of it is written.

Duplicates: a row that repeats a record already there (or an earlier row of
the file) is skipped under ``skip`` and written anyway under ``create``. A
row with a ``ref`` (:mod:`.references`) repeats the record an import made
from that ref (or, for this database's own refs, the record itself) and
nothing else, whatever the mode: the same export imported twice adds
nothing, and two records the source kept apart stay apart. A row without one
repeats what the entity's :meth:`RelatedImport.duplicate_key` says. There is
no ``merge``: merging folds one *party* into another, and a contact or an
interaction repeated is the same record twice, not two views of one party; it
is refused before any row is read.

A batch of good rows is one multi-row INSERT, then what the mutation leaves
per record: an audit entry and an outbox event (``contact.added``,
``interaction.logged``, with ``"source": "import"``), as for customers
(:mod:`.traces`): event handlers, webhooks and the audit trail work per
record, whatever wrote it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from crmgraph.db import writes
from crmgraph.db.bulk import insert_rows
from crmgraph.input_checks import camel_keys
from crmgraph.registry import Catalog
from crmgraph.transfer.coerce import cell
from crmgraph.transfer.importer import BatchOutcome, ImportContext, ImportOptions, Reject
from crmgraph.transfer.mapping import ColumnMap, Fields, MappingError
from crmgraph.transfer.references import REF, RefBook, known_origin
from crmgraph.transfer.refs import CUSTOMER_FIELDS, CustomerFinder, CustomerRef
from crmgraph.transfer.report import Rejection
from crmgraph.transfer.source import SourceRow
from crmgraph.transfer.traces import Trace, record
from crmgraph.validation import Errors


@dataclass
class Draft:
    """A row being imported: its own values, then its customer."""

    row: SourceRow
    cells: dict[str, str]
    errors: Errors
    values: dict[str, Any]
    customer: int = 0

    @property
    def ref(self) -> str | None:
        return cell(self.cells.get(REF))


class RelatedImport:
    """What contacts, interactions and needs share; subclasses give the fields, the
    checks, the duplicate key and the write."""

    name = ""
    what = ""  # "contact", "interaction": for messages
    type_name = ""  # "Contact", "Interaction": the GraphQL type, for refs
    own_fields: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    def __init__(self, ctx: ImportContext, options: ImportOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.catalog: Catalog = ctx.catalog
        access = ctx.access
        self.finder = CustomerFinder(
            ctx.db, access.sees if access is not None and access.scope is not None else None
        )
        self.columns = ColumnMap({})
        self.book = RefBook(ctx.db, self.type_name, None)

    def fields(self) -> Fields:
        return Fields(frozenset((*self.own_fields, *CUSTOMER_FIELDS, REF)), required=self.required)

    def bind(self, column_map: ColumnMap) -> None:
        if self.options.on_duplicate == "merge":
            raise MappingError(
                f"--on-duplicate merge is for customers: a repeated {self.what} is skipped "
                f"(skip) or written again (create)"
            )
        if not set(CUSTOMER_FIELDS) & set(column_map.columns.values()):
            raise MappingError(
                "no column names the customer: map one to customer (its ID), "
                "customer.ref, customer.email or customer.tax_id"
            )
        self.columns = column_map

    async def prepare(self) -> None:
        origin = await known_origin(self.ctx.db)
        self.book = RefBook(self.ctx.db, self.type_name, origin)
        await self.finder.prepare(RefBook(self.ctx.db, "Customer", origin))

    # ------------------------------------------------------------ subclasses

    def check(self, errors: Errors, cells: dict[str, str]) -> dict[str, Any]:
        """The row's own values, checked as the mutation checks its input."""
        raise NotImplementedError

    async def link(self, drafts: Sequence[Draft]) -> None:
        """Resolve what else a row names once its customer is known."""

    def duplicate_key(self, draft: Draft) -> Hashable | None:
        """What makes two records the same; None: never a duplicate."""
        raise NotImplementedError

    async def existing_keys(self, drafts: Sequence[Draft]) -> set[Hashable]:
        """The duplicate keys of records already written for these rows' customers."""
        raise NotImplementedError

    async def write(self, drafts: Sequence[Draft]) -> list[int]:
        """Write the rows; their new ids, in order."""
        raise NotImplementedError

    async def insert_recorded(
        self,
        table: str,
        drafts: Sequence[Draft],
        action: str,
        payload: Callable[[int, Draft], dict[str, Any]],
        stamps: Sequence[str] = ("created_at", "updated_at"),
    ) -> list[int]:
        """Insert the drafts' rows into ``table`` in one statement, ``stamps``
        set to now, and what the mutation leaves per record written
        (:mod:`.traces`): its fields as changes from nothing and the event
        ``payload`` gives. Their new ids, in order."""
        at = writes.now()
        times = dict.fromkeys(stamps, at)
        ids = await insert_rows(
            self.ctx.db, table, [{"customer": d.customer, **d.values, **times} for d in drafts]
        )
        traces = [
            Trace(pk, d.customer, writes.field_changes(None, camel_keys(d.values)), payload(pk, d))
            for pk, d in zip(ids, drafts, strict=True)
        ]
        await record(self.ctx.db, self.ctx.actor, action, self.type_name, traces, at)
        return ids

    # ------------------------------------------------------------ a batch

    async def run_batch(self, rows: list[SourceRow], reject: Reject) -> BatchOutcome:
        drafts = []
        for row in rows:
            cells = self.columns.project(row.values)
            errors = Errors()
            drafts.append(Draft(row, cells, errors, self.check(errors, cells)))
        # rows with bad fields are looked up too: a rejection names every reason
        found = await self.finder.find([CustomerRef.of(d.cells) for d in drafts])
        for draft, customer in zip(drafts, found, strict=True):
            if isinstance(customer, list):
                draft.errors.problems.extend(customer)
            else:
                draft.customer = customer["id"]
        await self.link([d for d in drafts if d.customer])
        good = []
        for draft in drafts:
            if draft.errors:
                reject(Rejection(draft.row.number, draft.row.values, tuple(draft.errors.problems)))
            else:
                good.append(draft)
        outcome = BatchOutcome()
        new = await self.unrepeated(good)
        outcome.skipped_duplicates = len(good) - len(new)
        if new:
            ids = await self.write(new)
            await self.book.remember(
                [(d.ref, pk) for d, pk in zip(new, ids, strict=True) if d.ref is not None]
            )
        outcome.created = len(new)
        return outcome

    async def unrepeated(self, drafts: Sequence[Draft]) -> list[Draft]:
        """The rows that repeat neither a record written before nor an earlier
        row: by ref for rows with one, else (unless ``create``) by duplicate key."""
        refs = await self.book.resolve(d.ref for d in drafts if d.ref is not None)
        keyed = [d for d in drafts if d.ref is None]
        by_key = self.options.on_duplicate != "create"
        seen = await self.existing_keys(keyed) if keyed and by_key else set()
        new = []
        for draft in drafts:
            if draft.ref is not None:
                if draft.ref not in refs:
                    refs[draft.ref] = 0  # an earlier row of the file now holds it
                    new.append(draft)
                continue
            if not by_key:
                new.append(draft)
                continue
            key = self.duplicate_key(draft)
            if key is not None and key in seen:
                continue
            if key is not None:
                seen.add(key)
            new.append(draft)
        return new


def given(cells: dict[str, str], names: Iterable[str]) -> list[str]:
    """The fields among ``names`` whose cell is not empty."""
    return [name for name in names if (cells.get(name) or "").strip()]
