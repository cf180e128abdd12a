"""Per-request DataLoaders: every list below a customer loads in one statement
for all the customers on the page."""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from crmgraph.analytics import scores
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.db import queries
from crmgraph.db.engine import Database
from crmgraph.paging import CONTACT_ORDER, NEED_ORDER, STAGE_HISTORY_ORDER
from crmgraph.schema.batching import Rows, group, pages_by_arguments
from crmgraph.schema.dataloader import DataLoader
from crmgraph.schema.teamwork_loaders import TeamworkLoaders
from crmgraph.schema.webhook_loaders import WebhookLoaders

NODE_TABLES = {
    "Contact": "contact",
    "CustomerMerge": "customer_merge",
    "Interaction": "interaction",
    "Need": "need",
    "Note": "note",
    "Relationship": "relationship",
    "StageChange": "stage_change",
    "Task": "task",
    "Team": "team",
    "User": "crm_user",
}


# the owner first, then the page's arguments in the order its load takes them
# (crmgraph.schema.batching.pages_by_arguments)
@dataclass(frozen=True)
class InteractionPageKey:
    customer_id: int
    limit: int
    match: queries.InteractionMatch
    before: tuple[Any, int] | None


class Loaders:
    """A request's DataLoaders, each made on its first use: a mutation or a
    compiled read uses one or two of them, and making them all (sixteen
    DataLoaders) was a tenth of a write's server time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @cached_property
    def customer(self) -> DataLoader:
        return DataLoader(self._customers)

    @cached_property
    def user(self) -> DataLoader:
        return DataLoader(self._users)

    @cached_property
    def contacts(self) -> DataLoader:
        return DataLoader(self._by_customer("contact", CONTACT_ORDER))

    @cached_property
    def needs(self) -> DataLoader:
        return DataLoader(self._by_customer("need", NEED_ORDER))

    @cached_property
    def stage_history(self) -> DataLoader:
        return DataLoader(self._by_customer("stage_change", STAGE_HISTORY_ORDER))

    @cached_property
    def roles(self) -> DataLoader:
        """Each customer's ``customer_role`` rows, in the order first held (Customer.roles)."""
        return DataLoader(self._by_customer("customer_role", "id"))

    @cached_property
    def merges(self) -> DataLoader:
        """The merges each customer absorbed, newest first (Customer.merges)."""
        return DataLoader(self._by_customer("customer_merge", "id DESC", "survivor"))

    @cached_property
    def consents(self) -> DataLoader:
        """Every consent statement of each customer, oldest first (Customer.consents)."""
        return DataLoader(self._by_customer("consent_change", "id"))

    @cached_property
    def relationships(self) -> DataLoader:
        return DataLoader(self._relationships)

    @cached_property
    def interactions(self) -> DataLoader:
        return DataLoader(self._interaction_pages)

    @cached_property
    def row(self) -> DataLoader:
        return DataLoader(self._rows_by_type)

    @cached_property
    def knowledge(self) -> DataLoader:
        return DataLoader(self._knowledge)

    @cached_property
    def teamwork(self) -> TeamworkLoaders:
        """Notes, tasks, timeline."""
        return TeamworkLoaders(self.db)

    @cached_property
    def webhooks(self) -> WebhookLoaders:
        """Delivery logs."""
        return WebhookLoaders(self.db)

    async def _knowledge(
        self, keys: list[tuple[int, datetime.datetime | None]]
    ) -> list[dict[str, Any] | None]:
        """Knowledge profiles keyed by (customer, as of): one batch per moment; a
        moment of None is "now", taken once for the whole batch."""
        by_moment: dict[datetime.datetime | None, list[int]] = defaultdict(list)
        for pk, as_of in keys:
            by_moment[as_of].append(pk)
        found: dict[tuple[int, datetime.datetime | None], dict[str, Any]] = {}
        for as_of, ids in by_moment.items():
            every = queries.CustomerQuery(deleted="ALL")
            scope = AnalyticsScope.create(self.db, every, ends_at=as_of)
            for pk, facts in (await scores.knowledge(self.db, scope, ids)).items():
                found[(pk, as_of)] = facts
        return [found.get(key) for key in keys]

    def _by_customer(self, table: str, order: str, column: str = "customer"):
        async def load(customer_ids: list[int]) -> list[list[dict[str, Any]]]:
            rows = await queries.rows_by_column(self.db, table, column, customer_ids, order)
            return group(rows, column, customer_ids)

        return load

    async def _customers(self, ids: list[int]) -> list[dict[str, Any] | None]:
        by_id = {row["id"]: row for row in await queries.customers_by_ids(self.db, ids)}
        return [by_id.get(pk) for pk in ids]

    async def _users(self, ids: list[int]) -> list[dict[str, Any] | None]:
        rows = await queries.rows_by_column(self.db, "crm_user", "id", ids)
        by_id = {row["id"]: row for row in rows}
        return [by_id.get(pk) for pk in ids]

    async def _rows_by_type(self, keys: list[tuple[str, int]]) -> list[dict[str, Any] | None]:
        """Rows for ``node(id:)`` lookups, keyed by (GraphQL type, pk), one
        statement per type."""
        found: dict[tuple[str, int], dict[str, Any]] = {}
        by_type: dict[str, list[int]] = defaultdict(list)
        for type_name, pk in keys:
            by_type[type_name].append(pk)
        for type_name, pks in by_type.items():
            for row in await queries.rows_by_column(self.db, NODE_TABLES[type_name], "id", pks):
                found[(type_name, row["id"])] = row
        return [found.get(key) for key in keys]

    async def _relationships(self, customer_ids: list[int]) -> list[list[dict[str, Any]]]:
        rows = await queries.relationships_of(self.db, customer_ids)
        grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            grouped[row["from_customer"]].append(row)
            if row["to_customer"] != row["from_customer"]:
                grouped[row["to_customer"]].append(row)
        return [grouped.get(pk, []) for pk in customer_ids]

    async def _interaction_pages(
        self, keys: list[InteractionPageKey]
    ) -> list[list[dict[str, Any]]]:
        async def load(args: tuple, ids: list[int]) -> Rows:
            return await queries.interaction_pages(self.db, ids, *args)

        return await pages_by_arguments(keys, load, "customer")
