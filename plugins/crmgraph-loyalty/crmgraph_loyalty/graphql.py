"""The loyalty plugin's GraphQL: ``loyaltyAccount`` and ``awardLoyaltyPoints``.

No ``from __future__ import annotations``: the types are created inside
:func:`contribution` (they return the schema's own ``Customer`` interface,
which exists only per built schema) and strawberry must see real classes in
their annotations, not strings naming local variables.
"""

import datetime
import enum
from typing import Annotated, Any

import strawberry
from crmgraph import (
    CoreGraphQLTypes,
    GraphQLContribution,
    InvalidId,
    Problem,
    UserError,
    caller,
    decode_id,
    encode_id,
    live_customer,
    run_mutation,
)
from strawberry.types import Info

from crmgraph_loyalty import ledger

REASON_MAX_LENGTH = 200


@strawberry.enum(description="Loyalty tier, from the points held.")
class LoyaltyTier(enum.Enum):
    BRONZE = strawberry.enum_value("BRONZE", description="Under 500 points.")
    SILVER = strawberry.enum_value("SILVER", description="500 points or more.")
    GOLD = strawberry.enum_value("GOLD", description="2000 points or more.")


def contribution(types: CoreGraphQLTypes) -> GraphQLContribution:
    CustomerInterface = types.customer_interface

    @strawberry.type(description="A customer's loyalty-points balance.")
    class LoyaltyAccount:
        customer_pk: strawberry.Private[int]
        customer_id: strawberry.ID = strawberry.field(
            description="Global ID of the customer holding the points."
        )
        points: int = strawberry.field(description="The points held now.")
        tier: LoyaltyTier = strawberry.field(description="The tier the points give.")
        updated_at: datetime.datetime = strawberry.field(
            description="When the balance last changed (UTC)."
        )

        @strawberry.field(description="The customer holding the points.")
        async def customer(self, info: Info) -> CustomerInterface | None:  # type: ignore[valid-type]
            row = await visible_customer_row(info, self.customer_pk)
            return info.context.types.customer(row) if row else None

    async def visible_customer_row(info: Info, pk: int) -> dict[str, Any] | None:
        """The customer, unless the caller's role may not see it (an agent
        sees only their own and their teams' customers)."""
        row = await info.context.loaders.customer.load(pk)
        return row if row is not None and caller(info).sees(row) else None

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
        customer_id: strawberry.ID = strawberry.field(
            description="Global ID of the customer to award the points to."
        )
        points: int = strawberry.field(description=f"1 to {ledger.MAX_AWARD}.")
        reason: str = strawberry.field(
            description=f"Why (kept on the outbox event), at most {REASON_MAX_LENGTH} characters."
        )

    @strawberry.type(description="The result of `awardLoyaltyPoints`.")
    class AwardLoyaltyPointsPayload:
        account: LoyaltyAccount | None = strawberry.field(
            description="The account after the award; null when refused."
        )
        user_errors: list[UserError] = strawberry.field(
            description="What was refused and why; empty when the points were added."
        )

    @strawberry.type
    class LoyaltyQuery:
        @strawberry.field(description="A customer's loyalty account (null if it has none).")
        async def loyalty_account(
            self,
            info: Info,
            customer_id: Annotated[
                strawberry.ID, strawberry.argument(description="The customer's global ID.")
            ],
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
            problems: list[Problem] = []
            pk = 0
            try:
                _, pk = decode_id(input.customer_id, "Customer")
            except InvalidId as exc:
                problems.append(Problem("customerId", str(exc), "INVALID_ID"))
            if not 1 <= input.points <= ledger.MAX_AWARD:
                message = f"points must be 1 to {ledger.MAX_AWARD}"
                problems.append(Problem("points", message, "OUT_OF_RANGE"))
            reason = input.reason.strip()
            if not reason:
                problems.append(Problem("reason", "reason is required", "REQUIRED"))
            elif len(reason) > REASON_MAX_LENGTH:
                message = f"reason is at most {REASON_MAX_LENGTH} characters"
                problems.append(Problem("reason", message, "TOO_LONG"))
            db = info.context.db

            async def award() -> dict[str, Any]:
                # the customer as the core's writes take it: its party lock held
                # (a merge of it waits for the award, or has moved the points and
                # the award is refused, MERGED), visible to the caller (row scope:
                # one they may not see is NOT_FOUND), not deleted or erased
                await live_customer(db, pk, "customerId", caller(info).sees)
                before = await ledger.account(db, pk)
                row = await ledger.award(db, pk, input.points)
                await ledger.record_award(db, pk, input.points, reason, before, row)
                return row

            # the core's mutation runner: the permission (FORBIDDEN as a user
            # error), every input problem at once before touching the database,
            # one transaction acting as the caller (its audit entry names them),
            # input errors as userErrors, the event dispatched after the commit
            row, refused = await run_mutation(
                info,
                award,
                permission=ledger.AWARD_POINTS,
                forbidden_field="customerId",
                doing="award points",
                problems=problems,
            )
            if row is None:
                return AwardLoyaltyPointsPayload(account=None, user_errors=refused)
            return AwardLoyaltyPointsPayload(account=account_from_row(row), user_errors=[])

    return GraphQLContribution(query=[LoyaltyQuery], mutation=[LoyaltyMutation])
