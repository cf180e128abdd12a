"""The crmgraph hooks of the loyalty plugin (registered through the
``crmgraph`` entry point ``loyalty``)."""

from __future__ import annotations

import datetime
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crmgraph import (
    Attribute,
    CustomerType,
    CustomerWrite,
    Event,
    GraphQLContribution,
    Lifecycle,
    Metric,
    Permission,
    Phase,
    RelationshipKind,
    Stage,
    Transition,
    TransitionContext,
    hookimpl,
)

from crmgraph_loyalty import demo, ledger, merging, privacy

if TYPE_CHECKING:
    import random

    from crmgraph import CoreGraphQLTypes, Database, MergeContext

logger = logging.getLogger("crmgraph_loyalty")

# The plugin's stable name: its key in personal data exports and erasure
# counts, the same whether it is loaded by entry point or by module name.
PLUGIN_NAME = "loyalty"

AWARD_POINTS = ledger.AWARD_POINTS
# A discount this high is a commitment the contract must bound in time.
LONG_DISCOUNT_FLOOR = Decimal("30")


def needs_a_territory(ctx: TransitionContext) -> list[str]:
    if not (ctx.customer.attributes.get("territory") or "").strip():
        return ["authorising a distributor needs a territory"]
    return []


async def needs_a_purchase(ctx: TransitionContext) -> list[str]:
    count, _ = await ctx.facts.purchases()
    if count == 0:
        return ["activating a distributor needs a purchase: log an interaction with an amount"]
    return []


def contract_in_force(ctx: TransitionContext) -> list[str]:
    ends = ctx.customer.attributes.get("contract_ends_on")
    if ends is not None and ends < datetime.date.today():
        return [f"the distributor's contract ended on {ends.isoformat()}; renew it first"]
    return []


DISTRIBUTOR = CustomerType(
    key="distributor",
    graphql_name="Distributor",
    description="A company that resells our products in a territory, at a negotiated discount.",
    attributes=(
        Attribute("territory", str, "Region the distributor may sell in.", max_length=100),
        Attribute(
            "discount_percent",
            Decimal,
            "Discount on list price, 0 to 50 %.",
            min_value=0,
            max_value=50,
        ),
        Attribute("contract_ends_on", datetime.date, "Last day of the distribution contract."),
    ),
    relationship_kinds=("resells_to",),
    lifecycle=Lifecycle(
        stages=(
            Stage("applicant", "Applicant", Phase.ENGAGEMENT),
            Stage("authorised", "Authorised", Phase.ACQUISITION),
            Stage("active", "Active", Phase.RETENTION),
            Stage("suspended", "Suspended", Phase.RETENTION, detour=True),
            Stage("terminated", "Terminated", Phase.ENDED),
        ),
        initial="applicant",
        transitions=(
            Transition("applicant", "authorised", guards=(needs_a_territory,)),
            Transition("applicant", "terminated", description="Application rejected."),
            Transition("authorised", "active", guards=(needs_a_purchase, contract_in_force)),
            Transition("authorised", "terminated"),
            Transition("active", "suspended"),
            Transition("suspended", "active", guards=(contract_in_force,)),
            Transition("active", "terminated"),
            Transition("suspended", "terminated"),
        ),
    ),
)

RESELLS_TO = RelationshipKind(
    "resells_to",
    "Resells to",
    description="The distributor serves this client on our behalf.",
    from_kinds=("distributor",),
    to_kinds=("client",),
)


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [DISTRIBUTOR]


@hookimpl
def crmgraph_relationship_kinds() -> list[RelationshipKind]:
    return [RESELLS_TO]


@hookimpl
def crmgraph_validate_customer(write: CustomerWrite) -> list[Any] | None:
    if write.kind != "distributor":
        return None
    # ``write.attributes`` holds the values in their stored (JSON) form: a
    # Decimal arrives as a string, so compare as Decimal.
    discount = write.attributes.get("discount_percent")
    if (
        discount is not None
        and Decimal(str(discount)) > LONG_DISCOUNT_FLOOR
        and write.attributes.get("contract_ends_on") is None
    ):
        return [
            (
                "distributor.contractEndsOn",
                f"a discount above {LONG_DISCOUNT_FLOOR} % needs a contract end date",
            )
        ]
    return None


@hookimpl
async def crmgraph_validate_transition(ctx: TransitionContext) -> list[str] | None:
    # A rule about another plugin's type: the client plugin knows nothing of points.
    if ctx.customer.kind != "client" or ctx.to_stage != "loyal":
        return None
    held = await ledger.points(ctx.facts, ctx.customer.pk)
    if held < ledger.LOYAL_THRESHOLD:
        return [f"becoming loyal needs {ledger.LOYAL_THRESHOLD} loyalty points; it has {held}"]
    return None


@hookimpl
async def crmgraph_after_transition(ctx: TransitionContext) -> None:
    # ctx.db is inside the transition's transaction: if anything later fails the
    # account is not opened either.
    if ctx.customer.kind != "client" or ctx.to_stage != "active":
        return
    if await ledger.open_account(ctx.db, ctx.customer.pk):
        # an event of the plugin's own, in the same transaction as the move
        await ctx.emit(
            ledger.ACCOUNT_OPENED, {"customerId": ctx.customer.id, "points": ledger.WELCOME_BONUS}
        )


@hookimpl
async def crmgraph_merge_customers(ctx: MergeContext) -> list[str]:
    # crmgraph moves its own rows; a plugin table keyed by customer is ours to move
    if ctx.is_undo:
        return await merging.undo_merge(ctx)
    await merging.merge_accounts(ctx)
    return []


@hookimpl
async def crmgraph_personal_data_export(
    db: Database, customer_pks: tuple[int, ...]
) -> dict[str, Any] | None:
    # the party's accounts, under plugins.loyalty in the export document
    return await privacy.export_section(db, customer_pks)


@hookimpl
async def crmgraph_erase_personal_data(
    db: Database, customer_pks: tuple[int, ...]
) -> dict[str, int]:
    # in the erasure's transaction; raising here would abort the whole erasure
    return await privacy.erase(db, customer_pks)


@hookimpl
async def crmgraph_seed_demo(
    db: Database, customer_pks: list[int], rng: random.Random, now: datetime.datetime
) -> None:
    # `crmgraph demo`: the accounts this plugin would have opened, drawn from `rng`
    await demo.seed(db, customer_pks, rng, now)


@hookimpl
def crmgraph_graphql(types: CoreGraphQLTypes) -> GraphQLContribution:
    # Imported here: the GraphQL module builds strawberry types per schema.
    from crmgraph_loyalty.graphql import contribution

    return contribution(types)


@hookimpl
def crmgraph_piccolo_apps() -> list[str]:
    return ["crmgraph_loyalty.piccolo_app"]


@hookimpl
def crmgraph_interaction_channels() -> list[str]:
    return ["LOYALTY_APP"]


def on_stage_changed(event: Event) -> None:
    # Runs after the commit: the place for talking to the outside world.
    if event.payload.get("kind") == "distributor" and event.payload.get("toStage") == "terminated":
        logger.info("distributor %s terminated: revoke its partner-portal access", event.payload)


@hookimpl
def crmgraph_event_handlers() -> dict[str, Any]:
    return {"customer.stage_changed": on_stage_changed}


@hookimpl
def crmgraph_analytics_metrics() -> list[Metric]:
    # `analytics_customer` is the core's: the customers the caller's filter selects and
    # their role lets them see, so these metrics follow `analytics(filter:)` like the core's
    in_scope = "FROM loyalty_account a JOIN analytics_customer c ON c.id = a.customer_id"
    return [
        Metric(
            "loyalty_points_total",
            "Loyalty points held by the customers in scope",
            sql=f"SELECT COALESCE(SUM(a.points), 0) AS value {in_scope}",
        ),
        Metric(
            "loyalty_gold_accounts",
            "Loyalty accounts in the GOLD tier among the customers in scope",
            sql=f"SELECT COUNT(*) AS value {in_scope} WHERE a.tier = {{}}",
            params=("GOLD",),
        ),
        Metric(
            "loyalty_member_share",
            "Share of the customers in scope that hold a loyalty account",
            sql="SELECT CASE WHEN COUNT(*) = 0 THEN NULL ELSE "
            "1.0 * COUNT(a.customer_id) / COUNT(*) END AS value FROM analytics_customer c "
            "LEFT JOIN loyalty_account a ON a.customer_id = c.id",
        ),
    ]


@hookimpl
def crmgraph_permissions() -> list[Permission]:
    return [Permission(AWARD_POINTS, "Award loyalty points by hand", roles=("admin", "manager"))]
