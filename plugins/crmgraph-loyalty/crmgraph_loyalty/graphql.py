"""The loyalty plugin's GraphQL: ``loyaltyAccount`` and ``awardLoyaltyPoints``.

No ``from __future__ import annotations``: the types are created inside
:func:`contribution` (they return the schema's own ``Customer`` interface,
which exists only per built schema) and strawberry must see real classes in
their annotations, not strings naming local variables.
"""

import datetime
import enum
from typing import Any

import strawberry
from crmgraph.db import writes
from crmgraph.extension_points import GraphQLContribution
from crmgraph.schema.core_types import UserError, UserErrorCode
from crmgraph.schema.ids import InvalidId, decode_id, encode_id
from crmgraph.validation import UserInputError
from strawberry.types import Info

from crmgraph_loyalty import ledger

REASON_MAX_LENGTH = 200


def problem(field: str, message: str, code: UserErrorCode) -> UserError:
    return UserError(field=field, message=message, code=code)


@strawberry.enum(description="Loyalty tier, from the points held.")
class LoyaltyTier(enum.Enum):
    BRONZE = "BRONZE"
    SILVER = "SILVER"
    GOLD = "GOLD"


def contribution(types: Any) -> GraphQLContribution:
    CustomerInterface = types.customer_interface

    @strawberry.type(description="A customer's loyalty-points balance.")
    class LoyaltyAccount:
        customer_pk: strawberry.Private[int]
        customer_id: strawberry.ID
        points: int
        tier: LoyaltyTier
        updated_at: datetime.datetime

        @strawberry.field(description="The customer holding the points.")
        async def customer(self, info: Info) -> CustomerInterface | None:  # type: ignore[valid-type]
            row = await visible_customer_row(info, self.customer_pk)
            return info.context.types.customer(row) if row else None

    async def visible_customer_row(info: Info, pk: int) -> dict[str, Any] | None:
        """The customer, unless the caller's role may not see it (an agent
        sees only their own and their teams' customers)."""
        row = await info.context.loaders.customer.load(pk)
        return row if row is not None and info.context.access.sees(row) else None

    def account_from_row(row: dict[str, Any]) -> LoyaltyAccount:
        return LoyaltyAccount(
            customer_pk=row["customer_id"],
            customer_id=strawberry.ID(encode_id("Customer", row["customer_id"])),
            points=row["points"],
            tier=LoyaltyTier(row["tier"]),
            updated_at=row["updated_at"],
        )

    @strawberry.input(description="Points to add to a customer's loyalty account.")
    class AwardLoyaltyPointsInput:
        customer_id: strawberry.ID
        points: int = strawberry.field(description=f"1 to {ledger.MAX_AWARD}.")
        reason: str = strawberry.field(
            description=f"Why (kept on the outbox event), at most {REASON_MAX_LENGTH} characters."
        )

    @strawberry.type
    class AwardLoyaltyPointsPayload:
        account: LoyaltyAccount | None
        user_errors: list[UserError]

    @strawberry.type
    class LoyaltyQuery:
        @strawberry.field(description="A customer's loyalty account (null if it has none).")
        async def loyalty_account(
            self, info: Info, customer_id: strawberry.ID
        ) -> LoyaltyAccount | None:
            try:
                _, pk = decode_id(customer_id, "Customer")
            except InvalidId:
                return None
            if await visible_customer_row(info, pk) is None:
                return None
            row = await ledger.account(info.context.db, pk)
            return account_from_row(row) if row else None

    @strawberry.type
    class LoyaltyMutation:
        @strawberry.mutation(
            description="Add loyalty points to a customer, opening its account if needed."
        )
        async def award_loyalty_points(
            self, info: Info, input: AwardLoyaltyPointsInput
        ) -> AwardLoyaltyPointsPayload:
            if not info.context.access.can(ledger.AWARD_POINTS):
                message = f"your role may not award points: it needs {ledger.AWARD_POINTS}"
                forbidden = problem("customerId", message, UserErrorCode.FORBIDDEN)
                return AwardLoyaltyPointsPayload(account=None, user_errors=[forbidden])
            errors: list[UserError] = []
            pk = 0
            try:
                _, pk = decode_id(input.customer_id, "Customer")
            except InvalidId as exc:
                errors.append(problem("customerId", str(exc), UserErrorCode.INVALID_ID))
            if not 1 <= input.points <= ledger.MAX_AWARD:
                message = f"points must be 1 to {ledger.MAX_AWARD}"
                errors.append(problem("points", message, UserErrorCode.OUT_OF_RANGE))
            reason = input.reason.strip()
            if not reason:
                errors.append(problem("reason", "reason is required", UserErrorCode.REQUIRED))
            elif len(reason) > REASON_MAX_LENGTH:
                message = f"reason is at most {REASON_MAX_LENGTH} characters"
                errors.append(problem("reason", message, UserErrorCode.TOO_LONG))
            if errors:  # every input problem at once, before touching the database
                return AwardLoyaltyPointsPayload(account=None, user_errors=errors)

            db = info.context.db

            async def award() -> dict[str, Any]:
                # the customer as the core's writes take it: its party lock held
                # (a merge of it waits for the award, or has moved the points and
                # the award is refused, MERGED), visible, not deleted or erased
                await writes.live_customer(db, pk, "customerId", info.context.access.sees)
                row = await ledger.award(db, pk, input.points)
                await ledger.record_award(db, pk, input.points, reason, row)
                return row

            try:  # the core's transaction runner: rerun after a deadlock
                row = await db.run_transaction(award)
            except UserInputError as exc:
                refused = [problem(p.field, p.message, UserErrorCode(p.code)) for p in exc.problems]
                return AwardLoyaltyPointsPayload(account=None, user_errors=refused)
            # committed: hand the event to handlers, subscribers and webhooks now
            # rather than at their next poll
            info.context.events.wake()
            return AwardLoyaltyPointsPayload(account=account_from_row(row), user_errors=[])

    return GraphQLContribution(query=[LoyaltyQuery], mutation=[LoyaltyMutation])
