"""Revenue by every customer segment, by channel and by calendar bucket equals,
on both engines, what counting the purchases in Python gives: for a period
holding every interaction (the ``customer_activity`` rollup), for periods that
cut the history (the purchases themselves), for a scope of every active
customer (the deleted customers left out by id, ``AnalyticsScope.left_out``)
and for filtered scopes (joined with the customers in scope). Plugin metrics
that do not read the stage columns get the customers without their roles and
still count the same."""

from __future__ import annotations

import asyncio
import datetime
from collections import defaultdict
from decimal import Decimal
from typing import Any

from crmgraph.analytics.metrics import metric_sql, plugin_metrics, reads_stage
from crmgraph.analytics.revenue import SEGMENTS, revenue
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import AppState, with_state
from crmgraph.db import queries
from crmgraph.db.queries import read_timestamp
from crmgraph.demo import seed_demo
from crmgraph.extension_points import Metric
from crmgraph.testing import settings_for
from tests.helpers import BUCKET_FORMATS as FORMATS
from tests.helpers import CUT_START, RECOUNT_NOW, covers_everything, in_scope, recount_world

NOW = RECOUNT_NOW

Row = tuple[str | None, int, int, float, float]


def expected(
    customers: dict[int, dict[str, Any]],
    purchases: list[dict[str, Any]],
    scope: AnalyticsScope,
    by: str,
    bucket: str | None,
) -> list[Row]:
    """The report's rows counted in Python from the purchases, sorted."""
    buyers: dict[str | None, set[int]] = defaultdict(set)
    amounts: dict[str | None, list[Decimal]] = defaultdict(list)
    for p in purchases:
        customer = customers.get(p["customer"])
        at = read_timestamp(p["occurred_at"]).astimezone(datetime.UTC)
        if customer is None or not in_scope(customer, scope.customers):
            continue
        if not scope.starts_at <= at < scope.ends_at:
            continue
        if by in ("STAGE", "PHASE") and not bucket and customer["stage"] is None:
            continue  # no role for its type: not among the customers with a stage
        if bucket:
            key = at.strftime(FORMATS[bucket])
        elif by == "CHANNEL":
            key = p["channel"]
        else:
            value = customer[by.lower()]
            key = None if value is None else str(value)
        buyers[key].add(customer["id"])
        amounts[key].append(Decimal(str(p["amount"])))
    rows = []
    for key, values in amounts.items():
        total = round(float(sum(values)), 2)
        rows.append((key, len(buyers[key]), len(values), total, round(total / len(values), 2)))
    return sorted(rows, key=lambda r: (r[0] is None, r[0] or ""))


async def check(
    state: AppState, q: queries.CustomerQuery, starts: Any, ends: Any, by: str, bucket: str | None
) -> int:
    db = state.db
    customers = {
        int(c["id"]): c
        for c in await db.fetch(
            "SELECT c.id, c.kind, c.owner, c.team, c.deleted_at, r.stage, r.phase "
            "FROM customer c LEFT JOIN customer_role r ON r.customer = c.id AND r.kind = c.kind"
        )
    }
    purchases = await db.fetch(
        "SELECT customer, occurred_at, amount, channel FROM interaction WHERE amount IS NOT NULL"
    )
    scope = AnalyticsScope.create(db, q, starts, ends)
    found = await revenue(db, scope, by, bucket)
    if bucket:
        assert [r.segment or "" for r in found] == sorted(r.segment or "" for r in found)
    else:  # largest revenue first
        assert [r.revenue for r in found] == sorted((r.revenue for r in found), reverse=True)
    as_rows = [
        (r.segment, r.customers, r.purchases, r.revenue, r.average_order_value) for r in found
    ]
    as_rows.sort(key=lambda r: (r[0] is None, r[0] or ""))
    assert as_rows == expected(customers, purchases, scope, by, bucket), (q, by, bucket)
    return sum(r.purchases for r in found)


def test_revenue_equals_a_count_of_the_purchases(database_url: str) -> None:
    async def work(state: AppState) -> None:
        db = state.db
        scopes, owner = await recount_world(state, "amount")
        everything = queries.CustomerQuery()
        whole = AnalyticsScope.create(db, everything, None, NOW)
        assert await covers_everything(state, whole)
        assert not await covers_everything(state, AnalyticsScope.create(db, everything, CUT_START))
        scopes.append((queries.CustomerQuery(owner_ids=(owner,)), None, NOW))
        for q, starts, ends in scopes:
            for by in SEGMENTS:
                if by != "RFM_SEGMENT":  # the facts' (tests/test_analytics.py)
                    assert await check(state, q, starts, ends, by, None) > 0
            for bucket in FORMATS:
                assert await check(state, q, starts, ends, "KIND", bucket) > 0

    asyncio.run(with_state(settings_for(database_url), work))


def test_metrics_without_stage_columns_skip_the_roles(database_url: str) -> None:
    counted = Metric(
        "customers", "Customers in scope", sql="SELECT COUNT(*) AS value FROM analytics_customer c"
    )
    phased = Metric(
        "phased",
        "Customers in scope with a phase",
        sql="SELECT COUNT(*) AS value FROM analytics_customer c WHERE c.phase IS NOT NULL",
    )
    starred = Metric(
        "starred",
        "Every column",
        sql="SELECT COUNT(*) AS value FROM (SELECT * FROM analytics_customer) x",
    )
    assert not reads_stage(counted)
    assert reads_stage(phased) and reads_stage(starred)

    async def work(state: AppState) -> None:
        db = state.db
        await seed_demo(db, state.catalog, customers=120, now=NOW)
        await db.fetch("UPDATE customer SET deleted_at = updated_at WHERE id % 10 = 0")
        for q in (queries.CustomerQuery(), queries.CustomerQuery(kinds=("client",))):
            scope = AnalyticsScope.create(db, q, None, NOW)
            assert "customer_role" not in metric_sql(counted, scope).text
            assert "customer_role" in metric_sql(phased, scope).text
            rows = await db.fetch(
                "SELECT c.id, c.kind, c.owner, c.deleted_at, r.phase FROM customer c "
                "LEFT JOIN customer_role r ON r.customer = c.id AND r.kind = c.kind"
            )
            chosen = [r for r in rows if in_scope(r, q)]
            with_role = [r for r in chosen if r["phase"] is not None]
            values = await plugin_metrics(db, scope, (counted, phased, starred))
            assert [v.value for v in values] == [len(chosen), len(with_role), len(with_role)]
            assert len(chosen) > 0

    asyncio.run(with_state(settings_for(database_url), work))
