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
from crmgraph.schema import described
from crmgraph.validation import utc


def _enum(name: str, keys: tuple[str, ...], description: str, values: dict[str, str]) -> Any:
    py_enum = enum.Enum(name, {k: k for k in keys})  # type: ignore[misc]
    return described.enum_type(py_enum, description, values)


RfmSegment = _enum(
    "RfmSegment",
    tuple(s.key for s in rules.RFM_SEGMENTS),
    "RFM segment; rules in order, first match wins: "
    + "; ".join(f"{s.key}: {s.description}" for s in rules.RFM_SEGMENTS),
    {s.key: s.description for s in rules.RFM_SEGMENTS},
)
ChurnSignalCode = _enum(
    "ChurnSignalCode",
    tuple(s.code for s in rules.CHURN_SIGNALS),
    "; ".join(f"{s.code} (+{s.points}): {s.description}" for s in rules.CHURN_SIGNALS),
    {s.code: f"+{s.points} points: {s.description}" for s in rules.CHURN_SIGNALS},
)
ChurnRiskLevel = _enum(
    "ChurnRiskLevel",
    ("LOW", "MEDIUM", "HIGH"),
    "HIGH from 60, MEDIUM from 30.",
    {"LOW": "Score under 30.", "MEDIUM": "Score 30 to 59.", "HIGH": "Score 60 or more."},
)
NextActionCode = _enum(
    "NextActionCode",
    rules.ACTION_CODES,
    "What to do next; see `NextBestAction.reason`.",
    {
        "WIN_BACK": "The lifecycle ended after a purchase: try to win the customer back.",
        "FOLLOW_UP_NEED": "Open needs are past their due date.",
        "RETENTION_CALL": "High churn risk: call to keep the customer.",
        "SERVICE_RECOVERY": "Satisfaction is low or falling: fix what went wrong.",
        "FOLLOW_UP_LEAD": "A lead not contacted for over 14 days.",
        "PROPOSE_UPSELL": "A champion or loyal customer: propose more.",
        "CHECK_IN": "No recent contact: get in touch.",
        "NONE": "Nothing due (or the lifecycle ended without a purchase).",
    },
)
SatisfactionTrend = _enum(
    "SatisfactionTrend",
    ("UP", "DOWN", "FLAT", "UNKNOWN"),
    f"Recent window's average against the one before: {rules.TREND_STEP} point or more "
    "up or down; UNKNOWN when either window has no rating.",
    {
        "UP": "The recent average is higher.",
        "DOWN": "The recent average is lower.",
        "FLAT": "Within the step either way.",
        "UNKNOWN": "A window has no rating to compare.",
    },
)
TimeBucket = _enum(
    "TimeBucket",
    ("DAY", "MONTH", "YEAR"),
    "Calendar periods, in UTC.",
    {"DAY": "Per day (YYYY-MM-DD).", "MONTH": "Per month (YYYY-MM).", "YEAR": "Per year (YYYY)."},
)
SatisfactionGrouping = _enum(
    "SatisfactionGrouping",
    tuple(satisfaction.GROUPINGS),
    "What satisfaction is broken down by.",
    {
        "CHANNEL": "The interaction's channel.",
        "OUTCOME": "The interaction's outcome (free text, as logged).",
        "DIRECTION": "INBOUND or OUTBOUND.",
    },
)
RevenueSegmentation = _enum(
    "RevenueSegmentation",
    tuple(revenue.SEGMENTS),
    "What revenue is broken down by.",
    {
        "KIND": "The customer's type.",
        "STAGE": "The customer's current stage key.",
        "PHASE": "The customer's current lifecycle phase.",
        "OWNER": "The customer's owner.",
        "TEAM": "The customer's team.",
        "CHANNEL": "The purchase's channel.",
        "RFM_SEGMENT": "The customer's RFM segment now.",
    },
)


# Cost points (see crmgraph.schema.limits) of one aggregate over the scope's rows, so
# a query asking for many reports spends the caller's budget accordingly.
REPORT_COST = 100
KNOWLEDGE_COST = 5  # per customer: its share of two batched aggregates


def money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


@strawberry.type(description="How many interactions a customer had on one channel.")
class ChannelCount:
    channel: str = strawberry.field(description="The channel (an InteractionChannel value).")
    interactions: int = strawberry.field(
        description="How many interactions on it, up to the moment asked."
    )


@strawberry.type(
    description="A customer's satisfaction ratings (1 to 5) and where they are heading."
)
class SatisfactionProfile:
    rated: int = strawberry.field(description="Interactions with a rating.")
    average: float | None = strawberry.field(
        description="Average of every rating; null: never rated."
    )
    recent_average: float | None = strawberry.field(
        description=f"Over the last {rules.SATISFACTION_WINDOW_DAYS} days."
    )
    previous_average: float | None = strawberry.field(
        description=f"Over the {rules.SATISFACTION_WINDOW_DAYS} days before those."
    )
    trend: SatisfactionTrend = strawberry.field(
        description="The recent window's average against the one before."
    )  # type: ignore[valid-type]


@strawberry.type(description="A customer's purchases: interactions with an amount.")
class PurchaseProfile:
    count: int = strawberry.field(description="How many purchases.")
    total: Decimal = strawberry.field(description="Their total amount.")
    last_at: datetime.datetime | None = strawberry.field(
        description="When the last one happened (UTC); null: never bought."
    )
    days_since_last: float | None = strawberry.field(
        description="Days from the last purchase to the moment asked; null: never bought."
    )


@strawberry.type(
    description="Recency, frequency and monetary scores, 1 (worst) to 5; 0: no purchase."
)
class RfmScores:
    recency: int = strawberry.field(
        description="5 if the last purchase is at most 30 days old, 4 at most 90, 3 at most 180, 2"
        " at most 365, else 1; 0: no purchase."
    )
    frequency: int = strawberry.field(
        description="Purchase count scored 1 to 5 (more is better); 0: no purchase."
    )
    monetary: int = strawberry.field(
        description="Purchase total scored 1 (any) to 5 (10,000 or more); 0: no purchase."
    )
    segment: RfmSegment = strawberry.field(
        description="The RFM segment the scores place the customer in."
    )  # type: ignore[valid-type]


@strawberry.type(description="One sign that a customer may leave.")
class ChurnSignal:
    code: ChurnSignalCode = strawberry.field(description="Which sign.")  # type: ignore[valid-type]
    points: int = strawberry.field(description="What it adds to the churn-risk score.")
    description: str = strawberry.field(description="The sign, explained.")


@strawberry.type(description="Sum of the points of the signals present, at most 100.")
class ChurnRisk:
    score: int = strawberry.field(
        description="Churn-risk score, 0 to 100: the points of the signals present."
    )
    level: ChurnRiskLevel = strawberry.field(description="The score's band.")  # type: ignore[valid-type]
    signals: list[ChurnSignal] = strawberry.field(description="The signs present.")


@strawberry.type(description="The first matching rule of a short documented list.")
class NextBestAction:
    code: NextActionCode = strawberry.field(
        description="What to do (the action's code; there is no `action` field)."
    )  # type: ignore[valid-type]
    reason: str = strawberry.field(description="Why, with this customer's facts.")


@strawberry.type(description="What continuous tracking knows of a customer, as of a moment.")
class CustomerKnowledge:
    as_of: datetime.datetime = strawberry.field(
        description="The moment the figures hold for (UTC)."
    )
    interactions: int = strawberry.field(description="Interactions up to that moment.")
    interactions_by_channel: list[ChannelCount] = strawberry.field(
        description="Interactions per channel, most first."
    )
    first_contact_at: datetime.datetime | None = strawberry.field(
        description="The first interaction (UTC); null: none."
    )
    last_contact_at: datetime.datetime | None = strawberry.field(
        description="The last interaction (UTC); null: none."
    )
    days_since_last_contact: float | None = strawberry.field(
        description="Days since the last interaction; null: none."
    )
    satisfaction: SatisfactionProfile = strawberry.field(description="Its ratings and their trend.")
    purchases: PurchaseProfile = strawberry.field(description="Its purchases.")
    rfm: RfmScores = strawberry.field(description="Its recency, frequency and monetary scores.")
    open_needs: int = strawberry.field(description="Needs OPEN or IN_PROGRESS.")
    overdue_needs: int = strawberry.field(description="Open needs past their due date.")
    days_in_stage: float = strawberry.field(description="Days since it entered its current stage.")
    churn_risk: ChurnRisk = strawberry.field(description="How likely it is to leave, and why.")
    next_best_action: NextBestAction = strawberry.field(
        description="What to do next, by the first matching rule."
    )


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


@strawberry.type(description="Where entries into a stage went next.")
class StageFlow:
    to_stage: str = strawberry.field(description="The stage key they moved to.")
    count: int = strawberry.field(description="How many moves.")
    rate: float = strawberry.field(description="Share of the stage's entries that went there.")


@strawberry.type(description="One stage of a customer type's funnel over the period.")
class StageFunnel:
    stage: str = strawberry.field(description="The stage's key.")
    label: str = strawberry.field(description="The stage's label.")
    phase: core.Phase = strawberry.field(description="The stage's lifecycle phase.")
    entered: int = strawberry.field(description="Entries into the stage in the period.")
    current: int = strawberry.field(description="Customers in the stage at the period's end.")
    advanced: int = strawberry.field(
        description="Entries whose next move went further on (a later, not ended stage, "
        "or a conversion)."
    )
    dropped_off: int = strawberry.field(description="Entries whose next move ended the lifecycle.")
    conversion_rate: float | None = strawberry.field(
        description="advanced / entered; null when none entered."
    )
    drop_off_rate: float | None = strawberry.field(
        description="droppedOff / entered; null when none entered."
    )
    median_days: float | None = strawberry.field(description="Over stays that ended.")
    transitions: list[StageFlow] = strawberry.field(description="Where its entries went next.")


@strawberry.type(description="The funnel of one customer type: its stages in lifecycle order.")
class KindFunnel:
    kind: str = strawberry.field(description="The customer type's key, e.g. `client`.")
    stages: list[StageFunnel] = strawberry.field(
        description="Its stages, each with its entries and exits."
    )


@strawberry.type(description="The funnel of one lifecycle phase, across every customer type.")
class PhaseFunnel:
    phase: core.Phase = strawberry.field(description="The lifecycle phase the row counts.")
    entered: int = strawberry.field(description="Entries into the phase in the period.")
    current: int = strawberry.field(description="Customers in the phase at the period's end.")
    advanced: int = strawberry.field(description="Later reached a further phase or converted.")
    dropped_off: int = strawberry.field(description="Later ended without reaching a further one.")
    conversion_rate: float | None = strawberry.field(
        description="advanced / entered; null when none entered."
    )
    drop_off_rate: float | None = strawberry.field(
        description="droppedOff / entered; null when none entered."
    )


@strawberry.type(
    description="How customers move through their lifecycles in the period: per type, and per "
    "common phase."
)
class LifecycleFunnel:
    kinds: list[KindFunnel] = strawberry.field(description="One funnel per customer type.")
    phases: list[PhaseFunnel] = strawberry.field(
        description="One funnel per lifecycle phase, comparing types."
    )


@strawberry.type(description="One month of a cohort's activity.")
class CohortMonth:
    month_offset: int = strawberry.field(
        description="Months since acquisition: 0 is the month of acquisition (the field is not "
        "`offset`)."
    )
    active: int = strawberry.field(description="Cohort members with an interaction that month.")
    rate: float = strawberry.field(description="active / the cohort's size.")


@strawberry.type(
    description="The customers acquired (created) in one month, and how active they stayed."
)
class Cohort:
    month: str = strawberry.field(description="Month of acquisition (creation), YYYY-MM.")
    size: int = strawberry.field(description="How many customers were acquired that month.")
    months: list[CohortMonth] = strawberry.field(
        description="Their activity, month by month from acquisition."
    )


@strawberry.type(description="Satisfaction of one group (and period, for rows over time).")
class SatisfactionRow:
    key: str | None = strawberry.field(
        description="The group's value (a channel, an outcome or a direction); null: not stated."
    )
    period: str | None = strawberry.field(
        description="The calendar period (YYYY-MM-DD, YYYY-MM or YYYY); null on overall rows."
    )
    rated: int = strawberry.field(description="Interactions with a rating.")
    average: float = strawberry.field(description="Their average rating, 1 to 5.")
    satisfied_share: float = strawberry.field(description="Share of ratings of 4 or 5.")


@strawberry.type(description="Satisfaction ratings by group, overall and per period.")
class SatisfactionReport:
    overall: list[SatisfactionRow] = strawberry.field(
        description="One row per group, over the whole period."
    )
    over_time: list[SatisfactionRow] = strawberry.field(
        description="One row per group and calendar period."
    )


@strawberry.type(description="Purchases of one segment in the period.")
class RevenueRow:
    segment: str | None = strawberry.field(
        description="The segment's key (a User or Team ID for OWNER/TEAM; null: none)."
    )
    customers: int = strawberry.field(description="Customers who bought.")
    purchases: int = strawberry.field(description="How many purchases.")
    revenue: Decimal = strawberry.field(description="Their total amount.")
    average_order_value: Decimal = strawberry.field(description="revenue / purchases.")


@strawberry.type(description="Needs of one category and unit.")
class NeedGroup:
    category: str | None = strawberry.field(description="The category; null: none given.")
    unit: str | None = strawberry.field(description="The unit of their volume; null: none given.")
    needs: int = strawberry.field(description="How many needs.")
    open: int = strawberry.field(description="How many are OPEN or IN_PROGRESS.")
    overdue: int = strawberry.field(description="How many open ones are past their due date.")
    volume: float | None = strawberry.field(
        description="Total volume (in `unit`); null: none estimated."
    )
    open_volume: float | None = strawberry.field(
        description="Total volume of the open ones; null: none estimated."
    )


@strawberry.type(description="The needs of the customers in scope.")
class NeedsReport:
    total: int = strawberry.field(description="Every need.")
    open: int = strawberry.field(description="Needs OPEN or IN_PROGRESS.")
    overdue: int = strawberry.field(description="Open needs past their due date.")
    by_category: list[NeedGroup] = strawberry.field(
        description="Per category and unit, most needs first."
    )


@strawberry.type(description="A plugin's metric over the customers in scope and the period.")
class AnalyticsMetric:
    key: str = strawberry.field(description="The metric's unique key.")
    description: str = strawberry.field(description="What it measures, as its plugin says.")
    value: float | None = strawberry.field(
        description="Its value; null when the statement found nothing."
    )


@strawberry.input(
    description="From (inclusive) to (exclusive); `to` defaults to now and is "
    "also the moment scores are computed as of."
)
class PeriodInput:
    from_: datetime.datetime | None = strawberry.field(
        description="Start, inclusive (UTC); null: from the beginning.", default=None, name="from"
    )
    to: datetime.datetime | None = strawberry.field(
        default=None, description="End, exclusive (UTC); null: now."
    )


@strawberry.type(description="The period a report covers: [from, to).")
class Period:
    from_: datetime.datetime = strawberry.field(description="Start, inclusive (UTC).", name="from")
    to: datetime.datetime = strawberry.field(description="End, exclusive (UTC).")


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
