"""Dismissing likely duplicates in GraphQL: ``dismissDuplicate`` and its
undo ``restoreDuplicate``, behind the ``customer.merge`` permission (deciding
that two records are or are not one party is the same judgement), each one
transaction through :func:`crmgraph.schema.mutations.run_write`. The work is
:mod:`crmgraph.dedupe.dismissals`'.

No ``from __future__ import annotations``: strawberry reads the annotations.
"""

import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from crmgraph.access import CUSTOMER_MERGE
from crmgraph.dedupe import dismissals
from crmgraph.schema import core_types as core
from crmgraph.schema.ids import encode_id
from crmgraph.schema.mutations import decode, run_write
from crmgraph.validation import Errors


@strawberry.type(description="A pair of customers a person found to be two parties.")
class DuplicateDismissal:
    left_id: strawberry.ID = strawberry.field(description="The customer with the lower ID.")
    right_id: strawberry.ID
    reason: str | None
    dismissed_at: datetime.datetime


@strawberry.input(description="Two customers listed as likely duplicates that are not.")
class DismissDuplicateInput:
    customer_id: strawberry.ID
    other_id: strawberry.ID
    reason: str | None = strawberry.field(
        default=None, description="Why they are two parties: kept with the dismissal and audited."
    )


@strawberry.input(description="A dismissed pair to list again.")
class RestoreDuplicateInput:
    customer_id: strawberry.ID
    other_id: strawberry.ID


@strawberry.type
class DismissDuplicatePayload:
    dismissal: DuplicateDismissal | None
    user_errors: list[core.UserError]


@strawberry.type
class RestoreDuplicatePayload:
    restored: bool
    user_errors: list[core.UserError]


def _pair_request(
    errors: Errors, customer_id: strawberry.ID, other_id: strawberry.ID
) -> dismissals.PairRequest:
    return dismissals.PairRequest(
        decode(errors, "customerId", customer_id, "Customer") or 0,
        decode(errors, "otherId", other_id, "Customer") or 0,
    )


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
        errors = Errors()
        request = _pair_request(errors, input.customer_id, input.other_id)
        reason = (input.reason or "").strip() or None
        if reason is not None and (len(reason) > dismissals.REASON_LENGTH or "\x00" in reason):
            errors.add(
                "reason",
                f"reason must be at most {dismissals.REASON_LENGTH} characters of text",
                "INVALID",
            )
        made: dict[str, Any] = {}

        async def work() -> int:
            made.update(
                await dismissals.dismiss_pair(
                    info.context.db, request, reason, info.context.access.sees
                )
            )
            return int(made["customer_a"])

        done, problems = await run_write(info, errors, work, CUSTOMER_MERGE, lambda _: [])
        if done is None:
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
        errors = Errors()
        request = _pair_request(errors, input.customer_id, input.other_id)

        async def work() -> int:
            await dismissals.restore_pair(info.context.db, request, info.context.access.sees)
            return request.customer_id

        done, problems = await run_write(info, errors, work, CUSTOMER_MERGE, lambda _: [])
        return RestoreDuplicatePayload(restored=done is not None, user_errors=problems)
