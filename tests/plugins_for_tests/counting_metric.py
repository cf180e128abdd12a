"""A test plugin contributing an analytics metric."""

from __future__ import annotations

from crmgraph.extension_points import Metric
from crmgraph.hookspecs import hookimpl


@hookimpl
def crmgraph_analytics_metrics() -> list[Metric]:
    return [
        Metric(
            "active_clients",
            "Clients not deleted",
            sql="SELECT COUNT(*) AS value FROM customer WHERE kind = {} AND deleted_at IS NULL",
            params=("client",),
        )
    ]
