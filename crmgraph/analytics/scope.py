"""Which customers and which time an analytics question is about."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace

from crmgraph.analytics.sql import Dialect, Sql
from crmgraph.db import queries
from crmgraph.db.engine import Database

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class AnalyticsScope:
    """The customers (the customer filter, including the caller's row scope)
    and the period ``[starts_at, ends_at)``. ``ends_at`` is also the moment
    scores are computed as of: recency, churn windows, overdue needs."""

    customers: queries.CustomerQuery
    starts_at: datetime.datetime
    ends_at: datetime.datetime
    dialect: Dialect

    @classmethod
    def create(
        cls,
        db: Database,
        customers: queries.CustomerQuery,
        starts_at: datetime.datetime | None = None,
        ends_at: datetime.datetime | None = None,
    ) -> AnalyticsScope:
        # in UTC: calendar buckets and month numbers are computed in UTC in SQL
        starts = (starts_at or EPOCH).astimezone(datetime.UTC)
        ends = (ends_at or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
        return cls(customers, starts, ends, Dialect.of(db))

    def without_kinds(self) -> AnalyticsScope:
        return replace(self, customers=replace(self.customers, kinds=()))

    @property
    def kinds(self) -> tuple[str, ...]:
        return self.customers.kinds

    def cutoff(self, days: int) -> datetime.datetime:
        return self.ends_at - datetime.timedelta(days=days)

    def ts(self) -> str:
        return self.dialect.timestamp

    def scoped_cte(self, name: str = "scoped", *, stage: bool = True) -> Sql:
        """``name AS (...)``: the customers in scope in the columns every
        customer row has (so rows can become Customer objects), with their
        current stage unless ``stage=False`` and no filter needs it: the join
        with ``customer_role`` then goes, and with it the planner's estimate of
        that two-column join (about a quarter of the rows), which led it to
        nested loops over a million interactions.

        Inlined where it is read (``NOT MATERIALIZED`` on PostgreSQL, which
        otherwise materializes a CTE read twice): each read then filters the
        base tables with their statistics, where a materialized CTE has none
        and the planner misjudges every join on it by orders of magnitude."""
        where = queries.customer_where(self.customers, sqlite=self.dialect.sqlite)
        with_stage = stage or bool(self.customers.stages or self.customers.phases)
        columns = queries.CUSTOMER_COLUMNS if with_stage else queries.CUSTOMER_OWN_COLUMNS
        source = queries.CUSTOMER_FROM if with_stage else "customer c"
        return Sql().add(
            f"{name} AS {self.dialect.not_materialized}"
            f"(SELECT {columns} FROM {source} WHERE {where.sql()})",
            *where.args,
        )

    def ids_cte(self, name: str = "scoped_ids") -> Sql:
        """``name AS (SELECT id ...)``: the customers in scope, for inner reads
        that are joined with ``scoped`` again later. A stage or phase filter
        is a semi-join on ``customer_role`` rather than the join ``scoped``
        makes: PostgreSQL estimates a filter on ``customer`` with an EXISTS
        well, where it puts the two-column join at a quarter of its rows and
        chooses nested loops."""
        where = queries.customer_where(
            replace(self.customers, stages=(), phases=()), sqlite=self.dialect.sqlite
        )
        roles = queries.Where()
        if self.customers.stages:
            roles.add_in("r.stage", self.customers.stages)
        if self.customers.phases:
            roles.add_in("r.phase", self.customers.phases)
        if roles.clauses:
            where.add(
                "EXISTS (SELECT 1 FROM customer_role r WHERE r.customer = c.id "
                f"AND r.kind = c.kind AND {roles.sql()})",
                *roles.args,
            )
        return Sql().add(
            f"{name} AS {self.dialect.not_materialized}"
            f"(SELECT c.id FROM customer c WHERE {where.sql()})",
            *where.args,
        )

    def left_out(self) -> queries.CustomerQuery | None:
        """The customers outside a scope of every active customer (the deleted
        ones), None for any other scope. A report over the interactions of
        every active customer can then count all interactions and subtract
        those few customers' (a partition: each customer is in or out)
        instead of joining each of a million interactions with its customer,
        which was most of the time of such a report."""
        if self.customers != queries.CustomerQuery():
            return None
        return queries.CustomerQuery(deleted="DELETED")

    def period(self, column: str) -> Sql:
        """``column`` falls in the period."""
        ts = self.ts()
        return Sql().add(f"{column} >= {ts} AND {column} < {ts}", self.starts_at, self.ends_at)
