"""Per-request DataLoader for webhooks' delivery logs: the deliveries of
every webhook listed, and their attempts, in two statements whatever the
number of webhooks."""

from __future__ import annotations

from dataclasses import dataclass

from crmgraph.db.engine import Database
from crmgraph.db.queries import Where, rows_by_column
from crmgraph.schema.batching import Rows, group, pages_by_arguments
from crmgraph.schema.dataloader import DataLoader


# the owner first, then the page's arguments in the order its load takes them
# (crmgraph.schema.batching.pages_by_arguments)
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
        async def load(args: tuple[int, str | None, int | None], ids: list[int]) -> Rows:
            limit, status, before_id = args
            where = Where()
            where.add_in("d.webhook", ids)
            if status is not None:
                where.add("d.status = {}", status)
            if before_id is not None:
                where.add("d.id < {}", before_id)
            return await self.db.fetch(
                "SELECT * FROM (SELECT d.*, ROW_NUMBER() OVER (PARTITION BY d.webhook "
                f"ORDER BY d.id DESC) AS rank_in_webhook FROM webhook_delivery d "
                f"WHERE {where.sql()}) ranked WHERE rank_in_webhook <= {{}} "
                "ORDER BY webhook, id DESC",
                *where.args,
                limit,
            )

        return await pages_by_arguments(keys, load, "webhook")

    async def _attempts(self, delivery_ids: list[int]) -> list[Rows]:
        """Each delivery's log, first attempt first."""
        rows = await rows_by_column(
            self.db, "webhook_attempt", "delivery", delivery_ids, "attempt, id"
        )
        return group(rows, "delivery", delivery_ids)
