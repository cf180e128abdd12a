"""Dismissing likely duplicates in GraphQL: ``dismissDuplicate`` and its
undo ``restoreDuplicate``, behind the ``customer.merge`` permission (deciding
that two records are or are not one party is the same judgement), each a short
adapter over its operation in :mod:`crmgraph.operations.dedupe` (the work on
the table is :mod:`crmgraph.dedupe.dismissals`').

No ``from __future__ import annotations``: strawberry reads the annotations.
"""

import datetime

import strawberry
from strawberry.types import Info

from crmgraph.operations import dedupe as ops
from crmgraph.schema import core_types as core
from crmgraph.schema.ids import encode_id
from crmgraph.schema.mutations import decode
from crmgraph.schema.mutations.common import no_rows, perform
from crmgraph.schema.user_errors import USER_ERRORS
from crmgraph.validation import Errors


@strawberry.type(description="A pair of customers a person found to be two parties.")
class DuplicateDismissal:
    left_id: strawberry.ID = strawberry.field(description="The customer with the lower ID.")
    right_id: strawberry.ID = strawberry.field(description="The customer with the higher ID.")
    reason: str | None = strawberry.field(
        description="Why they are not one party, as the user gave it."
    )
    dismissed_at: datetime.datetime = strawberry.field(
        description="When the pair was dismissed (UTC)."
    )


@strawberry.input(description="Two customers listed as likely duplicates that are not.")
class DismissDuplicateInput:
    customer_id: strawberry.ID = strawberry.field(
        description="Global ID of one customer of the pair."
    )
    other_id: strawberry.ID = strawberry.field(description="Global ID of the other.")
    reason: str | None = strawberry.field(
        default=None, description="Why they are two parties: kept with the dismissal and audited."
    )


@strawberry.input(description="A dismissed pair to list again.")
class RestoreDuplicateInput:
    customer_id: strawberry.ID = strawberry.field(
        description="Global ID of one customer of the pair."
    )
    other_id: strawberry.ID = strawberry.field(description="Global ID of the other.")


@strawberry.type(description="The result of `dismissDuplicate`.")
class DismissDuplicatePayload:
    dismissal: DuplicateDismissal | None = strawberry.field(
        description="The dismissal recorded; null when refused."
    )
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of `restoreDuplicate`.")
class RestoreDuplicatePayload:
    restored: bool = strawberry.field(
        description="The pair is listed as a possible duplicate again."
    )
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


def _pair(
    customer_id: strawberry.ID, other_id: strawberry.ID, reason: str | None = None
) -> ops.PairInput:
    errors = Errors()
    customer = decode(errors, "customerId", customer_id, "Customer") or 0
    other = decode(errors, "otherId", other_id, "Customer") or 0
    return ops.PairInput(customer, other, reason, errors.problems)


@strawberry.type
class DismissalMutation:
    @strawberry.mutation(
        description="Mark two customers as two parties after review: `duplicates` and "
        "`duplicateCandidates` no longer list the pair, whatever is later written to "
        "either. Audited on both customers. Needs customer.merge. NOT_FOUND, DELETED, "
        "MERGED, ERASED, SAME_CUSTOMER, ALREADY_DISMISSED."
    )
    async def dismiss_duplicate(
        self, info: Info, input: DismissDuplicateInput
    ) -> DismissDuplicatePayload:
        data = _pair(input.customer_id, input.other_id, input.reason)
        made, problems = await perform(
            info, info.context.catalog, ops.dismiss_duplicate, data, no_rows
        )
        if made is None:
            return DismissDuplicatePayload(dismissal=None, user_errors=problems)
        dismissal = DuplicateDismissal(
            left_id=strawberry.ID(encode_id("Customer", made["customer_a"])),
            right_id=strawberry.ID(encode_id("Customer", made["customer_b"])),
            reason=made["reason"],
            dismissed_at=made["dismissed_at"],
        )
        return DismissDuplicatePayload(dismissal=dismissal, user_errors=[])

    @strawberry.mutation(
        description="Take back a `dismissDuplicate`: the pair is listed again while it "
        "scores. Audited on both customers. Needs customer.merge. NOT_FOUND, SAME_CUSTOMER, "
        "NOT_DISMISSED."
    )
    async def restore_duplicate(
        self, info: Info, input: RestoreDuplicateInput
    ) -> RestoreDuplicatePayload:
        data = _pair(input.customer_id, input.other_id)
        done, problems = await perform(
            info, info.context.catalog, ops.restore_duplicate, data, no_rows
        )
        return RestoreDuplicatePayload(restored=done is not None, user_errors=problems)
