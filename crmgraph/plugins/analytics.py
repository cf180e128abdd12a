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
from crmgraph.analytics.funnel import recompute_in_background, stop_recompute
from crmgraph.schema.analytics import KNOWLEDGE_COST, knowledge
from crmgraph.schema.analytics_root import build_analytics_query

if TYPE_CHECKING:
    from crmgraph import CoreGraphQLTypes, CustomerFieldTypes, Database


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
async def crmgraph_startup(db: Database, catalog: Any) -> None:
    # the funnel's stored phase columns follow the catalog the plugins
    # declare: after a change (or an upgrade) recomputed in the background
    # (minutes on millions of entries), which the funnel waits for; every
    # other request is answered meanwhile
    await recompute_in_background(db, catalog)


class PhaseRecompute:
    """Stops the start-up recomputation with the server (its transaction
    rolls back; the next start begins again)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await stop_recompute(self.db)

    def wake(self) -> None:
        pass


@hookimpl
def crmgraph_background_services(db: Database) -> list[PhaseRecompute]:
    return [PhaseRecompute(db)]
