"""GraphQL face of the analytics (:mod:`crmgraph.analytics`): each customer's
``knowledge`` profile and the report types of the ``analytics`` query root
(built per schema in :mod:`crmgraph.schema.analytics_root`).
:mod:`crmgraph.plugins.analytics` adds them to the schema.

No ``from __future__ import annotations``: strawberry must see real classes in
the annotations of the fields these types add to the per-schema types.
"""

import datetime
import enum
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from crmgraph.analytics import funnel, revenue, rules, satisfaction
from crmgraph.schema import core_types as core
from crmgraph.validation import utc


def _enum(name: str, keys: tuple[str, ...], description: str) -> Any:
    return strawberry.enum(enum.Enum(name, {k: k for k in keys}), description=description)  # type: ignore[misc]


RfmSegment = _enum(
    "RfmSegment",
    tuple(s.key for s in rules.RFM_SEGMENTS),
    "RFM segment; rules in order, first match wins: "
    + "; ".join(f"{s.key}: {s.description}" for s in rules.RFM_SEGMENTS),
)
ChurnSignalCode = _enum(
    "ChurnSignalCode",
    tuple(s.code for s in rules.CHURN_SIGNALS),
    "; ".join(f"{s.code} (+{s.points}): {s.description}" for s in rules.CHURN_SIGNALS),
)
ChurnRiskLevel = _enum("ChurnRiskLevel", ("LOW", "MEDIUM", "HIGH"), "HIGH from 60, MEDIUM from 30.")
NextActionCode = _enum(
    "NextActionCode", rules.ACTION_CODES, "What to do next; see `NextBestAction.reason`."
)
SatisfactionTrend = _enum(
    "SatisfactionTrend",
    ("UP", "DOWN", "FLAT", "UNKNOWN"),
    f"Recent window's average against the one before: {rules.TREND_STEP} point or more "
    "up or down; UNKNOWN when either window has no rating.",
)
TimeBucket = _enum("TimeBucket", ("DAY", "MONTH", "YEAR"), "Calendar periods, in UTC.")
SatisfactionGrouping = _enum(
    "SatisfactionGrouping", tuple(satisfaction.GROUPINGS), "What satisfaction is broken down by."
)
RevenueSegmentation = _enum(
    "RevenueSegmentation", tuple(revenue.SEGMENTS), "What revenue is broken down by."
)


# Cost points (see crmgraph.schema.limits) of one aggregate over the scope's rows, so
# a query asking for many reports spends the caller's budget accordingly.
REPORT_COST = 100
KNOWLEDGE_COST = 5  # per customer: its share of two batched aggregates


def money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


@strawberry.type
class ChannelCount:
    channel: str
    interactions: int


@strawberry.type
class SatisfactionProfile:
    rated: int = strawberry.field(description="Interactions with a rating.")
    average: float | None
    recent_average: float | None = strawberry.field(
        description=f"Over the last {rules.SATISFACTION_WINDOW_DAYS} days."
    )
    previous_average: float | None = strawberry.field(
        description=f"Over the {rules.SATISFACTION_WINDOW_DAYS} days before those."
    )
    trend: SatisfactionTrend  # type: ignore[valid-type]


@strawberry.type
class PurchaseProfile:
    count: int
    total: Decimal
    last_at: datetime.datetime | None
    days_since_last: float | None


@strawberry.type(
    description="Recency, frequency and monetary scores, 1 (worst) to 5; 0: no purchase."
)
class RfmScores:
    recency: int
    frequency: int
    monetary: int
    segment: RfmSegment  # type: ignore[valid-type]


@strawberry.type
class ChurnSignal:
    code: ChurnSignalCode  # type: ignore[valid-type]
    points: int
    description: str


@strawberry.type(description="Sum of the points of the signals present, at most 100.")
class ChurnRisk:
    score: int
    level: ChurnRiskLevel  # type: ignore[valid-type]
    signals: list[ChurnSignal]


@strawberry.type(description="The first matching rule of a short documented list.")
class NextBestAction:
    code: NextActionCode  # type: ignore[valid-type]
    reason: str


@strawberry.type(description="What continuous tracking knows of a customer, as of a moment.")
class CustomerKnowledge:
    as_of: datetime.datetime
    interactions: int
    interactions_by_channel: list[ChannelCount]
    first_contact_at: datetime.datetime | None
    last_contact_at: datetime.datetime | None
    days_since_last_contact: float | None
    satisfaction: SatisfactionProfile
    purchases: PurchaseProfile
    rfm: RfmScores
    open_needs: int
    overdue_needs: int
    days_in_stage: float
    churn_risk: ChurnRisk
    next_best_action: NextBestAction


def churn_risk(facts: dict[str, Any]) -> ChurnRisk:
    return ChurnRisk(
        score=facts["churn_score"],
        level=ChurnRiskLevel(facts["churn_level"]),
        signals=[
            ChurnSignal(
                code=ChurnSignalCode(code),
                points=rules.CHURN_SIGNAL_BY_CODE[code].points,
                description=rules.CHURN_SIGNAL_BY_CODE[code].description,
            )
            for code in facts["signals"]
        ],
    )


def rfm_scores(facts: dict[str, Any]) -> RfmScores:
    return RfmScores(
        recency=facts["r"],
        frequency=facts["f"],
        monetary=facts["m"],
        segment=RfmSegment(facts["rfm_segment"]),
    )


def knowledge_from_facts(facts: dict[str, Any]) -> CustomerKnowledge:
    action = facts["action"]
    return CustomerKnowledge(
        as_of=facts["as_of"],
        interactions=facts["interactions"],
        interactions_by_channel=[
            ChannelCount(channel=c, interactions=n) for c, n in facts["by_channel"]
        ],
        first_contact_at=facts["first_contact_at"],
        last_contact_at=facts["last_contact_at"],
        days_since_last_contact=facts["days_since_contact"],
        satisfaction=SatisfactionProfile(
            rated=facts["rated"],
            average=facts["satisfaction"],
            recent_average=facts["satisfaction_recent"],
            previous_average=facts["satisfaction_prior"],
            trend=SatisfactionTrend(
                rules.satisfaction_trend(facts["satisfaction_recent"], facts["satisfaction_prior"])
            ),
        ),
        purchases=PurchaseProfile(
            count=facts["purchases"],
            total=money(facts["purchase_total"]),
            last_at=facts["last_purchase_at"],
            days_since_last=facts["days_since_purchase"],
        ),
        rfm=rfm_scores(facts),
        open_needs=facts["open_needs"],
        overdue_needs=facts["overdue_needs"],
        days_in_stage=facts["days_in_stage"] or 0.0,
        churn_risk=churn_risk(facts),
        next_best_action=NextBestAction(code=NextActionCode(action.code), reason=action.reason),
    )


async def customer_knowledge(
    info: Info, pk: int, as_of: datetime.datetime | None
) -> CustomerKnowledge:
    # no moment given: the loader takes "now" once for the whole batch
    facts = await info.context.loaders.knowledge.load((pk, utc(as_of)))
    return knowledge_from_facts(facts)


async def knowledge(
    root: Any,
    info: Info,
    as_of: Annotated[
        datetime.datetime | None,
        strawberry.argument(description="The moment to compute it as of (default: now)."),
    ] = None,
) -> CustomerKnowledge:
    """Customer.knowledge: ``root`` is a customer the caller may see."""
    return await customer_knowledge(info, root.pk, as_of)


# ---------------------------------------------------------------- reports


@strawberry.type
class StageFlow:
    to_stage: str
    count: int
    rate: float = strawberry.field(description="Share of the stage's entries that went there.")


@strawberry.type
class StageFunnel:
    stage: str
    label: str
    phase: core.Phase
    entered: int = strawberry.field(description="Entries into the stage in the period.")
    current: int = strawberry.field(description="Customers in the stage at the period's end.")
    advanced: int = strawberry.field(
        description="Entries whose next move went further on (a later, not ended stage, "
        "or a conversion)."
    )
    dropped_off: int = strawberry.field(description="Entries whose next move ended the lifecycle.")
    conversion_rate: float | None
    drop_off_rate: float | None
    median_days: float | None = strawberry.field(description="Over stays that ended.")
    transitions: list[StageFlow]


@strawberry.type
class KindFunnel:
    kind: str
    stages: list[StageFunnel]


@strawberry.type
class PhaseFunnel:
    phase: core.Phase
    entered: int
    current: int
    advanced: int = strawberry.field(description="Later reached a further phase or converted.")
    dropped_off: int = strawberry.field(description="Later ended without reaching a further one.")
    conversion_rate: float | None
    drop_off_rate: float | None


@strawberry.type
class LifecycleFunnel:
    kinds: list[KindFunnel]
    phases: list[PhaseFunnel]


@strawberry.type
class CohortMonth:
    month_offset: int
    active: int = strawberry.field(description="Cohort members with an interaction that month.")
    rate: float


@strawberry.type
class Cohort:
    month: str = strawberry.field(description="Month of acquisition (creation), YYYY-MM.")
    size: int
    months: list[CohortMonth]


@strawberry.type
class SatisfactionRow:
    key: str | None
    period: str | None
    rated: int
    average: float
    satisfied_share: float = strawberry.field(description="Share of ratings of 4 or 5.")


@strawberry.type
class SatisfactionReport:
    overall: list[SatisfactionRow]
    over_time: list[SatisfactionRow]


@strawberry.type
class RevenueRow:
    segment: str | None = strawberry.field(
        description="The segment's key (a User or Team ID for OWNER/TEAM; null: none)."
    )
    customers: int
    purchases: int
    revenue: Decimal
    average_order_value: Decimal


@strawberry.type
class NeedGroup:
    category: str | None
    unit: str | None
    needs: int
    open: int
    overdue: int
    volume: float | None
    open_volume: float | None


@strawberry.type
class NeedsReport:
    total: int
    open: int
    overdue: int = strawberry.field(description="Open needs past their due date.")
    by_category: list[NeedGroup]


@strawberry.type
class AnalyticsMetric:
    key: str
    description: str
    value: float | None


@strawberry.input(
    description="From (inclusive) to (exclusive); `to` defaults to now and is "
    "also the moment scores are computed as of."
)
class PeriodInput:
    from_: datetime.datetime | None = strawberry.field(default=None, name="from")
    to: datetime.datetime | None = None


@strawberry.type
class Period:
    from_: datetime.datetime = strawberry.field(name="from")
    to: datetime.datetime


def funnel_type(result: funnel.Funnel) -> LifecycleFunnel:
    return LifecycleFunnel(
        kinds=[
            KindFunnel(
                kind=k.kind,
                stages=[
                    StageFunnel(
                        **{
                            **s.__dict__,
                            "phase": core.Phase(s.phase),
                            "transitions": [StageFlow(**t.__dict__) for t in s.transitions],
                        }
                    )
                    for s in k.stages
                ],
            )
            for k in result.kinds
        ],
        phases=[PhaseFunnel(**{**p.__dict__, "phase": core.Phase(p.phase)}) for p in result.phases],
    )
