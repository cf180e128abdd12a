"""Importing records that hang off a customer: contacts and interactions.

Each row is checked on its own fields with the rules of the mutation that
creates one (``addContact``, ``logInteraction``: :mod:`crmgraph.input_checks`,
guarded fields for the caller), finds its customer (:mod:`.refs`) and is
rejected with every reason when anything is wrong; nothing of it is written.

Duplicates: a row that repeats a record already there (or an earlier row of
the file) is skipped under ``skip`` and written anyway under ``create``. What
"repeats" means is the entity's :meth:`RelatedImport.duplicate_key`. There is
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

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from crmgraph.registry import Catalog
from crmgraph.transfer.importer import BatchOutcome, ImportContext, ImportOptions, Reject
from crmgraph.transfer.mapping import ColumnMap, Fields, MappingError
from crmgraph.transfer.refs import CUSTOMER_FIELDS, CustomerFinder, CustomerRef
from crmgraph.transfer.report import Rejection
from crmgraph.transfer.source import SourceRow
from crmgraph.validation import Errors


@dataclass
class Draft:
    """A row being imported: its own values, then its customer."""

    row: SourceRow
    cells: dict[str, str]
    errors: Errors
    values: dict[str, Any]
    customer: int = 0


class RelatedImport:
    """What contacts and interactions share; subclasses give the fields, the
    checks, the duplicate key and the write."""

    name = ""
    what = ""  # "contact", "interaction": for messages
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

    def fields(self) -> Fields:
        return Fields(frozenset((*self.own_fields, *CUSTOMER_FIELDS)), required=self.required)

    def bind(self, column_map: ColumnMap) -> None:
        if self.options.on_duplicate == "merge":
            raise MappingError(
                f"--on-duplicate merge is for customers: a repeated {self.what} is skipped "
                f"(skip) or written again (create)"
            )
        if not set(CUSTOMER_FIELDS) & set(column_map.columns.values()):
            raise MappingError(
                "no column names the customer: map one to customer (its ID), "
                "customer.email or customer.tax_id"
            )
        self.columns = column_map

    async def prepare(self) -> None:
        await self.finder.prepare()

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

    async def write(self, drafts: Sequence[Draft]) -> None:
        raise NotImplementedError

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
        new = good if self.options.on_duplicate == "create" else await self.unrepeated(good)
        outcome.skipped_duplicates = len(good) - len(new)
        if new:
            await self.write(new)
        outcome.created = len(new)
        return outcome

    async def unrepeated(self, drafts: Sequence[Draft]) -> list[Draft]:
        """The rows that repeat neither a record written before nor an earlier row."""
        seen = await self.existing_keys(drafts) if drafts else set()
        new = []
        for draft in drafts:
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
