"""A test plugin whose metric reads the analytics scope and period the core provides."""

from __future__ import annotations

from crmgraph.extension_points import Metric
from crmgraph.hookspecs import hookimpl


@hookimpl
def crmgraph_analytics_metrics() -> list[Metric]:
    return [
        Metric(
            "interactions_in_period",
            "Interactions of the customers in scope, in the period",
            sql="SELECT COUNT(*) AS value FROM interaction i "
            "JOIN analytics_customer c ON c.id = i.customer "
            "JOIN analytics_period p ON i.occurred_at >= p.starts_at "
            "AND i.occurred_at < p.ends_at",
        )
    ]
