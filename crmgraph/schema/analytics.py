"""GraphQL face of the analytics (:mod:`crmgraph.analytics`): each customer's
``knowledge`` profile and the ``analytics`` query root.

No ``from __future__ import annotations``: the root type is built inside
:func:`build_analytics_type` around the schema's own Customer types.
"""

import datetime
import enum
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from crmgraph.analytics import cohorts, funnel, metrics, needs, revenue, rules, satisfaction, scores
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.db import queries
from crmgraph.schema import core_types as core
from crmgraph.schema.ids import encode_id
from crmgraph.schema.pagination import (
    PageInfo,
    check_first,
    decode_cursor,
    encode_cursor,
    page_info,
)
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


def segment_label(by: str, value: str | None) -> str | None:
    if value is None or by not in ("OWNER", "TEAM"):
        return value
    return encode_id("User" if by == "OWNER" else "Team", int(value))


def build_analytics_type(
    customer_interface: type,
    customer_filter: type,
    customer_query: Callable[[Any, queries.CustomerScope | None], queries.CustomerQuery],
) -> tuple[type, Callable[..., Any]]:
    """The ``Analytics`` type and the root field resolver returning it."""

    @strawberry.type
    class ScoredCustomerEdge:
        cursor: str
        node: customer_interface  # type: ignore[valid-type]
        rfm: RfmScores
        churn_risk: ChurnRisk

    @strawberry.type(description="Customers with their scores, in the list's order.")
    class ScoredCustomerConnection:
        edges: list[ScoredCustomerEdge]
        page_info: PageInfo
        total_count: int

        @strawberry.field
        def nodes(self) -> list[customer_interface]:  # type: ignore[valid-type]
            return [edge.node for edge in self.edges]

    async def scored_connection(
        info: Info,
        scope: AnalyticsScope,
        condition: Any,
        order: str,
        first: int | None,
        after: str | None,
    ) -> ScoredCustomerConnection:
        settings = info.context.settings
        limit = check_first(first, settings.default_page_size, settings.max_page_size)
        cursor_scope = f"analytics:{order}"
        cursor = decode_cursor(after, cursor_scope, timestamp=False) if after else None
        page = await scores.scored_page(info.context.db, scope, condition, order, limit, cursor)
        edges = []
        for facts in page.rows:
            info.context.loaders.customer.prime(facts["id"], facts)
            edges.append(
                ScoredCustomerEdge(
                    cursor=encode_cursor(cursor_scope, facts["churn_score"], facts["id"]),
                    node=info.context.types.customer(facts),
                    rfm=rfm_scores(facts),
                    churn_risk=churn_risk(facts),
                )
            )
        return ScoredCustomerConnection(
            edges=edges, page_info=page_info(edges, page.has_next, after), total_count=page.total
        )

    @strawberry.type
    class RfmSegmentSummary:
        scope: strawberry.Private[AnalyticsScope]
        segment: RfmSegment  # type: ignore[valid-type]
        description: str
        customers: int
        purchases: int
        revenue: Decimal

        @strawberry.field(
            description="The segment's customers, by id.", metadata={"cost": REPORT_COST}
        )
        async def members(
            self, info: Info, first: int | None = 20, after: str | None = None
        ) -> ScoredCustomerConnection:
            condition = scores.segment_members(self.segment.value)
            return await scored_connection(info, self.scope, condition, "segment", first, after)

    @strawberry.type(
        description="Analytics over the customers the filter selects (and the caller may see), "
        "in the period. Computed in SQL on every request."
    )
    class Analytics:
        scope: strawberry.Private[AnalyticsScope]

        @strawberry.field
        def period(self) -> Period:
            return Period(from_=self.scope.starts_at, to=self.scope.ends_at)

        @strawberry.field(
            description="Lifecycle funnel per type and per phase (stage entries).",
            metadata={"cost": REPORT_COST},
        )
        async def funnel(self, info: Info) -> LifecycleFunnel:
            ctx = info.context
            return funnel_type(await funnel.lifecycle_funnel(ctx.db, ctx.catalog, self.scope))

        @strawberry.field(
            description="Retention of customers by month of acquisition.",
            metadata={"cost": REPORT_COST},
        )
        async def cohorts(self, info: Info) -> list[Cohort]:
            found = await cohorts.cohort_retention(info.context.db, self.scope)
            return [
                Cohort(
                    month=c.month,
                    size=c.size,
                    months=[CohortMonth(**m.__dict__) for m in c.months],
                )
                for c in found
            ]

        @strawberry.field(
            description="Satisfaction at each moment of truth, overall and over time.",
            metadata={"cost": REPORT_COST},
        )
        async def satisfaction(
            self,
            info: Info,
            by: SatisfactionGrouping = SatisfactionGrouping.CHANNEL,  # type: ignore[valid-type,attr-defined]
            bucket: TimeBucket = TimeBucket.MONTH,  # type: ignore[valid-type,attr-defined]
        ) -> SatisfactionReport:
            found = await satisfaction.satisfaction(
                info.context.db, self.scope, by.value, bucket.value
            )
            return SatisfactionReport(
                overall=[SatisfactionRow(**r.__dict__) for r in found.overall],
                over_time=[SatisfactionRow(**r.__dict__) for r in found.over_time],
            )

        @strawberry.field(
            description="Purchases in the period by segment, largest first; with `bucket`, "
            "by calendar period instead, in time order.",
            metadata={"cost": REPORT_COST},
        )
        async def revenue(
            self,
            info: Info,
            by: RevenueSegmentation = RevenueSegmentation.KIND,  # type: ignore[valid-type,attr-defined]
            bucket: TimeBucket | None = None,  # type: ignore[valid-type]
        ) -> list[RevenueRow]:
            rows = await revenue.revenue(
                info.context.db, self.scope, by.value, bucket.value if bucket else None
            )
            return [
                RevenueRow(
                    segment=r.segment if bucket else segment_label(by.value, r.segment),
                    customers=r.customers,
                    purchases=r.purchases,
                    revenue=money(r.revenue),
                    average_order_value=money(r.average_order_value),
                )
                for r in rows
            ]

        @strawberry.field(
            description="RFM segments, every one listed, with their members.",
            metadata={"cost": REPORT_COST},
        )
        async def rfm(self, info: Info) -> list[RfmSegmentSummary]:
            return [
                RfmSegmentSummary(
                    scope=self.scope,
                    segment=RfmSegment(s.key),
                    description=s.description,
                    customers=s.customers,
                    purchases=s.purchases,
                    revenue=money(s.revenue),
                )
                for s in await scores.rfm_segments(info.context.db, self.scope)
            ]

        @strawberry.field(
            description="Retained and expanding customers at risk of leaving, riskiest first.",
            metadata={"cost": REPORT_COST},
        )
        async def churn_risk(
            self,
            info: Info,
            first: int | None = 20,
            after: str | None = None,
            min_score: int = 30,
        ) -> ScoredCustomerConnection:
            scope, condition = scores.churn_candidates(self.scope, min_score)
            return await scored_connection(info, scope, condition, "churn", first, after)

        @strawberry.field(
            description="Needs raised in the period, by category and unit.",
            metadata={"cost": REPORT_COST},
        )
        async def needs(self, info: Info) -> NeedsReport:
            found = await needs.needs_summary(info.context.db, self.scope)
            return NeedsReport(
                total=found.total,
                open=found.open,
                overdue=found.overdue,
                by_category=[NeedGroup(**g.__dict__) for g in found.groups],
            )

        @strawberry.field(
            description="Metrics contributed by plugins, in this scope and period.",
            metadata={"cost": REPORT_COST},
        )
        async def metrics(self, info: Info) -> list[AnalyticsMetric]:
            found = await metrics.plugin_metrics(
                info.context.db, self.scope, info.context.catalog.metrics
            )
            return [AnalyticsMetric(**m.__dict__) for m in found]

    def analytics(
        info: Info,
        filter: customer_filter | None = None,  # type: ignore[valid-type]
        period: PeriodInput | None = None,
    ) -> Analytics:
        q = customer_query(filter, info.context.access.scope)
        starts_at = utc(period.from_) if period else None
        ends_at = utc(period.to) if period else None
        scope = AnalyticsScope.create(info.context.db, q, starts_at, ends_at)
        if scope.starts_at >= scope.ends_at:
            raise GraphQLError(
                "period.from must be before period.to (or now, when `to` is not given)",
                extensions={"code": "BAD_USER_INPUT"},
            )
        return Analytics(scope=scope)

    return Analytics, analytics
