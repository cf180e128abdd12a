"""Analytics, as a built-in plugin: the ``analytics`` query root (funnel,
cohorts, satisfaction, revenue, RFM, churn risk, needs and plugins'
metrics) and each customer's ``knowledge`` (:mod:`crmgraph.schema.analytics`,
:mod:`crmgraph.schema.analytics_root`), and at start-up the funnel's stored
phase columns brought in line with the catalog, in the background. Disabling it
(``CRMGRAPH_DISABLE_PLUGINS=crmgraph.plugins.analytics``) removes both
fields; the deprecated ``pluginMetrics`` stays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import strawberry

from crmgraph import CustomerField, GraphQLContribution, hookimpl
from crmgraph.analytics.funnel import current_stage_phases, phases_current
from crmgraph.schema.analytics import KNOWLEDGE_COST, knowledge
from crmgraph.schema.analytics_root import build_analytics_query

if TYPE_CHECKING:
    from crmgraph import CoreGraphQLTypes, CustomerFieldTypes, Database, StartupWork


@hookimpl
def crmgraph_customer_fields(types: CustomerFieldTypes) -> list[CustomerField]:
    return [
        CustomerField(
            "knowledge",
            strawberry.field(
                resolver=knowledge,
                description="What continuous tracking knows of the customer: activity by "
                "channel, satisfaction and its trend, purchases, RFM scores, needs, time in "
                "stage, churn risk with its signals and a next best action. Computed in SQL, "
                "batched per page.",
                metadata={"cost": KNOWLEDGE_COST},
            ),
        )
    ]


@hookimpl
def crmgraph_graphql(types: CoreGraphQLTypes) -> GraphQLContribution:
    assert types.customer_filter is not None and types.customer_query is not None
    query = build_analytics_query(
        types.customer_interface, types.customer_filter, types.customer_query
    )
    return GraphQLContribution(query=[query])


@hookimpl
async def crmgraph_startup(db: Database, catalog: Any, startup_work: StartupWork) -> None:
    # the funnel's stored phase columns follow the catalog the plugins
    # declare: after a change (or an upgrade) recomputed beside the first
    # requests (minutes on millions of entries); a funnel asked for
    # meanwhile waits on the recomputation's lock
    if not await phases_current(db, catalog):
        startup_work.start("funnel phases", current_stage_phases(db, catalog))
