"""The DataLoader every per-request loader of the schema is made with."""

from __future__ import annotations

import asyncio
from typing import Any

from strawberry.dataloader import DataLoader as StrawberryDataLoader
from strawberry.dataloader import get_current_batch


class SharedResult(asyncio.Future):
    """A DataLoader's result for one key, awaited by every field that asked
    for it. graphql-core cancels a failed field's siblings, and cancelling a
    task cancels the future it awaits: a sibling waiting on this result would
    cancel it for every other field sharing the key (one of them then failed
    with CancelledError, a 500). So it refuses cancellation; a cancelled
    waiter stops when the batch has answered (asyncio cancels it then)."""

    def cancel(self, msg: Any = None) -> bool:
        return False


class DataLoader(StrawberryDataLoader):
    """strawberry's DataLoader, its results :class:`SharedResult`s. Every
    per-request loader of the schema is one of these."""

    def load(self, key: Any) -> Any:
        if self.cache:
            cached = self.cache_map.get(key)
            if cached is not None:
                return cached
        result = SharedResult(loop=self.loop)
        if self.cache:
            self.cache_map.set(key, result)
        get_current_batch(self).add_task(key, result)
        return result
