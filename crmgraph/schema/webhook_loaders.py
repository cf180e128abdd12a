"""Per-request DataLoader for webhooks' delivery logs: the deliveries of
every webhook listed, and their attempts, in two statements whatever the
number of webhooks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from crmgraph.db.engine import Database
from crmgraph.db.queries import Where, rows_by_column
from crmgraph.schema.dataloader import DataLoader

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class DeliveryPageKey:
    """One webhook's page of deliveries, newest first: up to ``limit`` rows
    (one more is asked for to tell whether there is a next page)."""

    webhook_id: int
    limit: int
    status: str | None
    before_id: int | None


class WebhookLoaders:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.deliveries = DataLoader(self._delivery_pages)
        self.attempts = DataLoader(self._attempts)

    async def _delivery_pages(self, keys: list[DeliveryPageKey]) -> list[Rows]:
        # keys sharing arguments (one selection over the list of webhooks) load
        # together in one statement ranked per webhook
        groups: dict[tuple, set[int]] = defaultdict(set)
        for key in keys:
            groups[(key.limit, key.status, key.before_id)].add(key.webhook_id)
        found: dict[DeliveryPageKey, Rows] = {}
        for (limit, status, before_id), ids in groups.items():
            where = Where()
            where.add_in("d.webhook", sorted(ids))
            if status is not None:
                where.add("d.status = {}", status)
            if before_id is not None:
                where.add("d.id < {}", before_id)
            rows = await self.db.fetch(
                "SELECT * FROM (SELECT d.*, ROW_NUMBER() OVER (PARTITION BY d.webhook "
                f"ORDER BY d.id DESC) AS rank_in_webhook FROM webhook_delivery d "
                f"WHERE {where.sql()}) ranked WHERE rank_in_webhook <= {{}} "
                "ORDER BY webhook, id DESC",
                *where.args,
                limit,
            )
            pages: dict[int, Rows] = {pk: [] for pk in ids}
            for row in rows:
                pages[row["webhook"]].append(row)
            for pk, page in pages.items():
                found[DeliveryPageKey(pk, limit, status, before_id)] = page
        return [found[key] for key in keys]

    async def _attempts(self, delivery_ids: list[int]) -> list[Rows]:
        """Each delivery's log, first attempt first."""
        grouped: dict[int, Rows] = defaultdict(list)
        for row in await rows_by_column(
            self.db, "webhook_attempt", "delivery", delivery_ids, "attempt, id"
        ):
            grouped[row["delivery"]].append(row)
        return [grouped.get(pk, []) for pk in delivery_ids]
