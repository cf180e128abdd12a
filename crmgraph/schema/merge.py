"""Merging customers in GraphQL: ``mergeCustomers``, ``undoMerge``,
``Customer.merges`` and the ``CustomerMerge`` node.

The rules are :mod:`crmgraph.operations.dedupe`'s (the work on the tables
:mod:`crmgraph.dedupe.merge`'s and :mod:`crmgraph.dedupe.unmerge`'s); the
resolvers here are short adapters that turn input into those operations'
plain input and show the result.

No ``from __future__ import annotations``: the payloads are built per schema
around that schema's ``Customer`` interface, and strawberry must see real
classes in their annotations (see :mod:`crmgraph.schema.build`).
"""

import datetime
import enum
from collections.abc import Mapping
from typing import Any

import strawberry
from strawberry.types import Info

from crmgraph.db import queries
from crmgraph.operations import dedupe as ops
from crmgraph.schema import core_types as core
from crmgraph.schema.ids import encode_id
from crmgraph.schema.mutation_runner import actor_of, answer
from crmgraph.schema.mutations import decode, fresh_row, written_row
from crmgraph.schema.mutations.common import perform
from crmgraph.schema.user_errors import USER_ERRORS
from crmgraph.validation import Errors


@strawberry.enum(description="Whose value a merged field takes.")
class MergeSource(enum.Enum):
    SURVIVOR = strawberry.enum_value("SURVIVOR", description="The survivor keeps its own value.")
    MERGED = strawberry.enum_value(
        "MERGED", description="The survivor takes the merged customer's value."
    )


@strawberry.input(description="Which customer's value one field of the survivor takes.")
class MergeFieldChoice:
    field: str = strawberry.field(
        description="`name`, `email`, `phone`, `owner`, `team`, a typed attribute of the "
        "survivor's kind by its camelCase name (e.g. `segment`; when the merged customer holds "
        "that kind too), or an attribute of a further role both hold as `<kind>.<attribute>` "
        "(e.g. `guarantor.guaranteedAmount`)."
    )
    source: MergeSource = strawberry.field(description="Whose value it takes.")


@strawberry.type(description="A field choice a merge was made with.")
class MergeFieldChoiceRecord:
    field: str = strawberry.field(description="The field's API name.")
    source: MergeSource = strawberry.field(description="Whose value it took.")


@strawberry.type(description="How many rows of one kind a merge moved to the survivor.")
class MovedCount:
    what: str = strawberry.field(
        description="`contacts`, `interactions`, `needs`, `notes`, `tasks`, `stageChanges`, "
        "`relationships`, `relationshipsDropped` (self-links and repeats), or a plugin's name."
    )
    count: int = strawberry.field(description="How many.")


@strawberry.type(description="One customer merged into another; `undoMerge` reverses it.")
class CustomerMerge(core.Node):
    pk: strawberry.Private[int]
    by_pk: strawberry.Private[int | None]
    undone_by_pk: strawberry.Private[int | None]
    survivor_id: strawberry.ID = strawberry.field(description="The customer that absorbed.")
    merged_id: strawberry.ID = strawberry.field(
        description="The customer absorbed: its ID now resolves to the survivor."
    )
    merged_at: datetime.datetime = strawberry.field(description="When it was merged (UTC).")
    reason: str | None = strawberry.field(description="Why, as the user gave it.")
    field_choices: list[MergeFieldChoiceRecord] = strawberry.field(
        description="The choices made, per field."
    )
    moved_counts: list[MovedCount] = strawberry.field(description="What moved to the survivor.")
    undone_at: datetime.datetime | None = strawberry.field(
        description="When it was undone (UTC); null: it stands."
    )

    @strawberry.field(description="Who merged (null when done without a user).")
    async def merged_by(self, info: Info) -> core.User | None:
        return await _user(info, self.by_pk)

    @strawberry.field(description="Who undid it; null: not undone, or undone without a user.")
    async def undone_by(self, info: Info) -> core.User | None:
        return await _user(info, self.undone_by_pk)

    @strawberry.field(
        description="Why `undoMerge` would be refused now (empty: it would be accepted, "
        "unless a plugin refuses). Runs the checks: ask for it on one merge at a time."
    )
    async def undo_blockers(self, info: Info) -> list[str]:
        return await ops.undo_blockers(info.context.db, self.pk)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "CustomerMerge":
        choices = queries.load_json(row["field_choices"])
        counts = queries.load_json(row["moved_counts"])
        return cls(
            id=strawberry.ID(encode_id("CustomerMerge", row["id"])),
            pk=row["id"],
            by_pk=row["merged_by"],
            undone_by_pk=row["undone_by"],
            survivor_id=strawberry.ID(encode_id("Customer", row["survivor"])),
            merged_id=strawberry.ID(encode_id("Customer", row["merged"])),
            merged_at=row["merged_at"],
            reason=row["reason"],
            field_choices=[
                MergeFieldChoiceRecord(field=name, source=MergeSource(source))
                for name, source in sorted(choices.items())
            ],
            moved_counts=[MovedCount(what=k, count=n) for k, n in sorted(counts.items())],
            undone_at=row["undone_at"],
        )


async def _user(info: Info, pk: int | None) -> core.User | None:
    row = await info.context.loaders.user.load(pk) if pk is not None else None
    return core.User.from_row(row) if row else None


async def customer_merges(root: Any, info: Info) -> list[CustomerMerge]:
    """Customer.merges: ``root`` is a customer the caller may see."""
    rows = await info.context.loaders.merges.load(root.pk)
    return [CustomerMerge.from_row(row) for row in rows]


async def merge_node(info: Info, pk: int) -> CustomerMerge | None:
    """``node(id:)`` for a merge: visible with its survivor."""
    row = await info.context.loaders.row.load(("CustomerMerge", pk))
    if row is None:
        return None
    survivor = await info.context.loaders.customer.load(row["survivor"])
    if survivor is None or not info.context.access.sees(survivor):
        return None
    return CustomerMerge.from_row(row)


@strawberry.input(
    description="Merge `mergedId` into `survivorId`. Fields not chosen keep the survivor's "
    "value, or take the merged customer's where the survivor has none."
)
class MergeCustomersInput:
    survivor_id: strawberry.ID = strawberry.field(
        description="Global ID of the customer that stays and absorbs the other."
    )
    merged_id: strawberry.ID = strawberry.field(
        description="Global ID of the customer absorbed (it stays readable, marked merged)."
    )
    field_choices: list[MergeFieldChoice] | None = strawberry.field(
        default=None, description="At most one choice per field."
    )
    expected_survivor_version: int | None = strawberry.field(
        default=None, description="The survivor's version you read; a stale one is refused."
    )
    expected_merged_version: int | None = strawberry.field(
        default=None, description="The merged customer's version you read."
    )
    reason: str | None = strawberry.field(
        default=None, description="Why: kept in the merge, the audit trail and the event."
    )


@strawberry.input(description="Undo a merge: the merged customer comes back with what it brought.")
class UndoMergeInput:
    merge_id: strawberry.ID = strawberry.field(
        description="The merge's global ID (`CustomerMerge.id`)."
    )


def build_merge_mutation(customer_interface: type) -> type:
    """The merge mutations, whose payloads show this schema's customers."""
    CustomerBase = customer_interface

    @strawberry.type(description="The result of `mergeCustomers`.")
    class MergeCustomersPayload:
        customer: CustomerBase | None = strawberry.field(  # type: ignore[valid-type]
            description="The survivor, as the merge left it."
        )
        merge: CustomerMerge | None = strawberry.field(
            description="The merge, as recorded; null when refused."
        )
        user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)

    @strawberry.type(description="The result of `undoMerge`.")
    class UndoMergePayload:
        survivor: CustomerBase | None = strawberry.field(
            description="The survivor, as the undo left it; null when refused."
        )  # type: ignore[valid-type]
        merged: CustomerBase | None = strawberry.field(  # type: ignore[valid-type]
            description="The customer the merge absorbed, back on its own."
        )
        merge: CustomerMerge | None = strawberry.field(
            description="The merge, now undone; null when refused."
        )
        user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)

    async def customer(info: Info, pk: int) -> Any:
        return info.context.types.customer(await written_row(info, "customer", pk))

    @strawberry.type
    class MergeMutation:
        @strawberry.mutation(
            description="Merge two customers, of one kind or two: every contact, interaction, "
            "need, relationship, note, task, consent statement and stage change of "
            "`mergedId` moves to "
            "`survivorId` in one transaction; the merged customer's ID then resolves to "
            "the survivor. The survivor keeps its primary kind and gains each role the other "
            "held and it did not, with its stage, attributes and history (a role both hold "
            "keeps the survivor's); a kind that may not be combined refuses the merge "
            "(NOT_COMBINABLE). Needs customer.merge. Plugins may refuse (MERGE_VETOED)."
        )
        async def merge_customers(
            self, info: Info, input: MergeCustomersInput
        ) -> MergeCustomersPayload:
            errors = Errors()
            survivor = decode(errors, "survivorId", input.survivor_id, "Customer") or 0
            merged = decode(errors, "mergedId", input.merged_id, "Customer") or 0
            data = ops.MergeInput(
                survivor,
                merged,
                [(choice.field, choice.source.value) for choice in input.field_choices or ()],
                input.expected_survivor_version,
                input.expected_merged_version,
                input.reason,
                errors.problems,
            )
            merge_id, problems = await perform(
                info,
                info.context.catalog,
                ops.merge_customers,
                data,
                lambda pk: [("customer", survivor), ("row", ("CustomerMerge", pk))],
            )
            if merge_id is None:
                return MergeCustomersPayload(customer=None, merge=None, user_errors=problems)
            row = await written_row(info, "row", ("CustomerMerge", merge_id))
            return MergeCustomersPayload(
                customer=await customer(info, survivor),
                merge=CustomerMerge.from_row(row),
                user_errors=[],
            )

        @strawberry.mutation(
            description="Undo a merge while nothing has been written to the survivor since "
            "(else MERGE_NOT_UNDOABLE with the reasons): both customers get their fields and "
            "roles back and exactly the moved rows return to the merged customer. Needs "
            "customer.merge."
        )
        async def undo_merge(self, info: Info, input: UndoMergeInput) -> UndoMergePayload:
            errors = Errors()
            pk = decode(errors, "mergeId", input.merge_id, "CustomerMerge") or 0

            async def then(undone: Mapping[str, Any]) -> None:
                # the payload's rows, read in the undo's transaction
                await fresh_row(info, "customer", undone["survivor"])
                await fresh_row(info, "customer", undone["merged"])
                await fresh_row(info, "row", ("CustomerMerge", pk))

            ctx = info.context
            undo = ops.undo_merge(
                ctx.db,
                ctx.catalog,
                ctx.plugin_manager,
                actor_of(info),
                ops.UndoInput(pk, errors.problems),
                then=then,
            )
            result, problems = await answer(info, undo)
            if result is None:
                return UndoMergePayload(
                    survivor=None, merged=None, merge=None, user_errors=problems
                )
            row = await written_row(info, "row", ("CustomerMerge", pk))
            return UndoMergePayload(
                survivor=await customer(info, result["survivor"]),
                merged=await customer(info, result["merged"]),
                merge=CustomerMerge.from_row(row),
                user_errors=[],
            )

    return MergeMutation
