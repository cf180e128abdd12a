"""Plugin metrics (the ``crmgraph_analytics_metrics`` hook), run in the
caller's analytics scope: the plugin's SQL may read two relations the core
provides, ``analytics_customer`` (the customers in scope, with the columns of
a customer row and its current stage) and ``analytics_period`` (one row:
``starts_at``, ``ends_at``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql, rounded
from crmgraph.db.engine import Database
from crmgraph.extension_points import Metric

STAGE_READS = re.compile(r"stage|phase|select\s+\*|\.\s*\*", re.IGNORECASE)


@dataclass(frozen=True)
class MetricValue:
    key: str
    description: str
    value: float | None


def reads_stage(metric: Metric) -> bool:
    """Whether a metric's SQL may read the stage columns of
    ``analytics_customer`` (``stage``, ``phase``, ``stage_entered_at``): each
    name contains one of these words, so a metric that contains neither
    cannot name them. Without them ``analytics_customer`` is a scan of
    ``customer`` alone: the join with ``customer_role`` was most of the time
    of a metric that counts accounts of the customers in scope. A wildcard
    (``SELECT *``, ``c.*``) may read them too."""
    return bool(STAGE_READS.search(metric.sql))


def metric_sql(metric: Metric, scope: AnalyticsScope) -> Sql:
    ts = scope.ts()
    customers = scope.scoped_cte("analytics_customer", stage=reads_stage(metric))
    sql = Sql().add("WITH ").extend(customers)
    sql.add(
        f", analytics_period AS (SELECT {ts} AS starts_at, {ts} AS ends_at)",
        scope.starts_at,
        scope.ends_at,
    )
    body = metric.sql.strip()
    if body[:5].upper() == "WITH ":  # the plugin's own CTEs join ours
        return sql.add(", " + body[5:], *metric.params)
    return sql.add(" " + body, *metric.params)


async def plugin_metrics(
    db: Database, scope: AnalyticsScope, metrics: tuple[Metric, ...]
) -> list[MetricValue]:
    values = []
    for metric in metrics:
        rows = await metric_sql(metric, scope).fetch(db)
        value = rows[0]["value"] if rows else None
        values.append(MetricValue(metric.key, metric.description, rounded(value)))
    return values
