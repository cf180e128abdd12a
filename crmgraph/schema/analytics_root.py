"""The ``analytics`` query root, built per schema around its ``Customer``
interface and ``CustomerFilter``: the reports of :mod:`crmgraph.analytics`
over the customers a filter selects (and the caller may see), in a period.
Its report types are :mod:`crmgraph.schema.analytics`'s.

No ``from __future__ import annotations``: the types are built per schema,
and strawberry must see real classes in their annotations.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from crmgraph.analytics import cohorts, funnel, metrics, needs, revenue, satisfaction, scores
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.db import queries
from crmgraph.schema.analytics import (
    REPORT_COST,
    AnalyticsMetric,
    ChurnRisk,
    Cohort,
    CohortMonth,
    LifecycleFunnel,
    NeedGroup,
    NeedsReport,
    Period,
    PeriodInput,
    RevenueRow,
    RevenueSegmentation,
    RfmScores,
    RfmSegment,
    SatisfactionGrouping,
    SatisfactionReport,
    SatisfactionRow,
    TimeBucket,
    churn_risk,
    funnel_type,
    money,
    rfm_scores,
)
from crmgraph.schema.ids import encode_id
from crmgraph.schema.pagination import (
    CURSOR,
    EDGES,
    NODES,
    PAGE_INFO,
    After,
    First,
    PageInfo,
    check_first,
    decode_cursor,
    encode_cursor,
    page_info,
)
from crmgraph.validation import utc

CustomerQueryOf = Callable[[Any, queries.CustomerScope | None], queries.CustomerQuery]


def segment_label(by: str, value: str | None) -> str | None:
    if value is None or by not in ("OWNER", "TEAM"):
        return value
    return encode_id("User" if by == "OWNER" else "Team", int(value))


async def cohort_list(info: Info, scope: AnalyticsScope) -> list[Cohort]:
    found = await cohorts.cohort_retention(info.context.db, scope, info.context.catalog)
    return [
        Cohort(month=c.month, size=c.size, months=[CohortMonth(**m.__dict__) for m in c.months])
        for c in found
    ]


async def satisfaction_report(
    info: Info, scope: AnalyticsScope, by: str, bucket: str
) -> SatisfactionReport:
    found = await satisfaction.satisfaction(info.context.db, scope, by, bucket)
    return SatisfactionReport(
        overall=[SatisfactionRow(**r.__dict__) for r in found.overall],
        over_time=[SatisfactionRow(**r.__dict__) for r in found.over_time],
    )


async def revenue_rows(
    info: Info, scope: AnalyticsScope, by: str, bucket: str | None
) -> list[RevenueRow]:
    rows = await revenue.revenue(info.context.db, scope, by, bucket)
    return [
        RevenueRow(
            segment=r.segment if bucket else segment_label(by, r.segment),
            customers=r.customers,
            purchases=r.purchases,
            revenue=money(r.revenue),
            average_order_value=money(r.average_order_value),
        )
        for r in rows
    ]


async def needs_report(info: Info, scope: AnalyticsScope) -> NeedsReport:
    found = await needs.needs_summary(info.context.db, scope)
    return NeedsReport(
        total=found.total,
        open=found.open,
        overdue=found.overdue,
        by_category=[NeedGroup(**g.__dict__) for g in found.groups],
    )


@dataclass(frozen=True)
class ScoredTypes:
    """The per-schema types listing customers with their scores."""

    connection: type
    segment_summary: type
    # (info, scope, condition, order, first, after) -> a connection page
    page: Callable[..., Any]


def build_scored_types(customer_interface: type) -> ScoredTypes:
    CustomerBase = customer_interface

    @strawberry.type(description="One customer of a page, with its scores and cursor.")
    class ScoredCustomerEdge:
        cursor: str = strawberry.field(description=CURSOR)
        node: CustomerBase = strawberry.field(description="The customer.")  # type: ignore[valid-type]
        rfm: RfmScores = strawberry.field(description="Its recency, frequency and monetary scores.")
        churn_risk: ChurnRisk = strawberry.field(description="Its churn-risk score and signals.")

    @strawberry.type(description="Customers with their scores, in the list's order.")
    class ScoredCustomerConnection:
        edges: list[ScoredCustomerEdge] = strawberry.field(description=EDGES)
        page_info: PageInfo = strawberry.field(description=PAGE_INFO)
        total_count: int = strawberry.field(description="How many customers the whole list holds.")

        @strawberry.field(description=NODES)
        def nodes(self) -> list[CustomerBase]:  # type: ignore[valid-type]
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

    @strawberry.type(description="One RFM segment of the customers in scope.")
    class RfmSegmentSummary:
        scope: strawberry.Private[AnalyticsScope]
        segment: RfmSegment = strawberry.field(description="Which RFM segment the row sums up.")  # type: ignore[valid-type]
        description: str = strawberry.field(description="The segment's rule, explained.")
        customers: int = strawberry.field(description="Customers in the segment.")
        purchases: int = strawberry.field(description="Their purchases in the period.")
        revenue: Decimal = strawberry.field(
            description="Their purchases' total amount in the period."
        )

        @strawberry.field(
            description="The segment's customers, by id.", metadata={"cost": REPORT_COST}
        )
        async def members(
            self, info: Info, first: First = 20, after: After = None
        ) -> ScoredCustomerConnection:
            condition = scores.segment_members(self.segment.value)
            return await scored_connection(info, self.scope, condition, "segment", first, after)

    return ScoredTypes(ScoredCustomerConnection, RfmSegmentSummary, scored_connection)


def build_analytics_type(customer_interface: type) -> type:
    """The ``Analytics`` type, around this schema's ``Customer`` interface."""
    scored = build_scored_types(customer_interface)
    ScoredCustomerConnection = scored.connection
    RfmSegmentSummary = scored.segment_summary

    @strawberry.type(
        description="Analytics over the customers the filter selects (and the caller may see), "
        "in the period. Computed in SQL on every request."
    )
    class Analytics:
        scope: strawberry.Private[AnalyticsScope]

        @strawberry.field(description="The period the reports cover.")
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
            return await cohort_list(info, self.scope)

        @strawberry.field(
            description="Satisfaction at each moment of truth, overall and over time.",
            metadata={"cost": REPORT_COST},
        )
        async def satisfaction(
            self,
            info: Info,
            by: Annotated[
                SatisfactionGrouping, strawberry.argument(description="What to break it down by.")
            ] = SatisfactionGrouping.CHANNEL,  # type: ignore[valid-type,attr-defined]
            bucket: Annotated[
                TimeBucket,
                strawberry.argument(description="The calendar period of the rows over time."),
            ] = TimeBucket.MONTH,  # type: ignore[valid-type,attr-defined]
        ) -> SatisfactionReport:
            return await satisfaction_report(info, self.scope, by.value, bucket.value)

        @strawberry.field(
            description="Purchases in the period by segment, largest first; with `bucket`, "
            "by calendar period instead, in time order.",
            metadata={"cost": REPORT_COST},
        )
        async def revenue(
            self,
            info: Info,
            by: Annotated[
                RevenueSegmentation, strawberry.argument(description="What to break it down by.")
            ] = RevenueSegmentation.KIND,  # type: ignore[valid-type,attr-defined]
            bucket: Annotated[
                TimeBucket | None,
                strawberry.argument(
                    description="Also per calendar period when given (null: over the whole period)."
                ),
            ] = None,  # type: ignore[valid-type]
        ) -> list[RevenueRow]:
            return await revenue_rows(info, self.scope, by.value, bucket.value if bucket else None)

        @strawberry.field(
            description="RFM segments, every one listed, with their members.",
            metadata={"cost": REPORT_COST},
        )
        async def rfm(self, info: Info) -> list[RfmSegmentSummary]:  # type: ignore[valid-type]
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
            first: First = 20,
            after: After = None,
            min_score: Annotated[
                int,
                strawberry.argument(
                    description="Only customers with at least this churn-risk score (0 to 100)."
                ),
            ] = 30,
        ) -> ScoredCustomerConnection:  # type: ignore[valid-type]
            scope, condition = scores.churn_candidates(self.scope, min_score)
            return await scored.page(info, scope, condition, "churn", first, after)

        @strawberry.field(
            description="Needs raised in the period, by category and unit.",
            metadata={"cost": REPORT_COST},
        )
        async def needs(self, info: Info) -> NeedsReport:
            return await needs_report(info, self.scope)

        @strawberry.field(
            description="Metrics contributed by plugins, in this scope and period.",
            metadata={"cost": REPORT_COST},
        )
        async def metrics(self, info: Info) -> list[AnalyticsMetric]:
            found = await metrics.plugin_metrics(
                info.context.db, self.scope, info.context.catalog.metrics
            )
            return [AnalyticsMetric(**m.__dict__) for m in found]

    return Analytics


def build_analytics_query(
    customer_interface: type, customer_filter: type, customer_query: CustomerQueryOf
) -> type:
    """The ``analytics`` root field, as a type to merge into ``Query``."""
    Analytics = build_analytics_type(customer_interface)

    def analytics_root(
        info: Info,
        filter: Annotated[
            customer_filter | None,
            strawberry.argument(description="Which customers (every one you may see when null)."),
        ] = None,  # type: ignore[valid-type]
        period: Annotated[
            PeriodInput | None,
            strawberry.argument(
                description="The period, [from, to) (from the beginning to now when null)."
            ),
        ] = None,
    ) -> Analytics:  # type: ignore[valid-type]
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

    @strawberry.type
    class AnalyticsQuery:
        # declared as an attribute, and so listed before the root's methods
        analytics: Analytics = strawberry.field(  # type: ignore[valid-type]
            resolver=analytics_root,
            description="Analytical CRM over the customers the filter selects and the caller "
            "may see, in a period: funnel, cohorts, satisfaction, revenue, RFM, churn risk, "
            "needs and plugin metrics.",
        )

    return AnalyticsQuery
