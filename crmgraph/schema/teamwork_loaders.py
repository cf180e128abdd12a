"""Per-request DataLoaders for notes, tasks and the timeline: each list loads
in one statement for every customer (or need, or note) on the page."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from crmgraph.db import teamwork
from crmgraph.db.engine import Database
from crmgraph.db.queries import rows_by_column
from crmgraph.schema.batching import Rows, group, pages_by_arguments
from crmgraph.schema.dataloader import DataLoader


# the owner first, then the page's arguments in the order its load takes them
# (crmgraph.schema.batching.pages_by_arguments)
@dataclass(frozen=True)
class PageKey:
    """One customer's page of notes or tasks, newest first."""

    customer_id: int
    limit: int
    statuses: tuple[str, ...]
    before: tuple[datetime.datetime, int] | None


# the owner first, then the page's arguments in the order its load takes them
# (crmgraph.schema.batching.pages_by_arguments)
@dataclass(frozen=True)
class TimelineKey:
    customer_id: int
    limit: int
    kinds: tuple[str, ...]
    after: tuple[datetime.datetime, str, int] | None


class TeamworkLoaders:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.notes = DataLoader(self._pages("note"))
        self.tasks = DataLoader(self._pages("task"))
        self.need_tasks = DataLoader(self._need_tasks)
        self.mentions = DataLoader(self._mentions)
        self.timeline = DataLoader(self._timeline)
        # timeline records keyed by (kind, id): one statement per kind on a page
        self.records = DataLoader(self._records)

    def _pages(self, table: str) -> Callable[[list[PageKey]], Awaitable[list[Rows]]]:
        async def load_pages(args: tuple, ids: list[int]) -> Rows:
            return await teamwork.newest_pages(self.db, table, ids, *args)

        async def load(keys: list[PageKey]) -> list[Rows]:
            return await pages_by_arguments(keys, load_pages, "customer")

        return load

    async def _need_tasks(self, need_ids: list[int]) -> list[Rows]:
        rows = await teamwork.tasks_of_needs(self.db, need_ids)
        return group(rows, "need", need_ids)

    async def _mentions(self, note_ids: list[int]) -> list[Rows]:
        rows = await teamwork.mentions_of(self.db, note_ids)
        return group(rows, "mention_note", note_ids)

    async def _timeline(self, keys: list[TimelineKey]) -> list[Rows]:
        async def load(args: tuple, ids: list[int]) -> Rows:
            return await teamwork.timeline_pages(self.db, ids, *args)

        return await pages_by_arguments(keys, load, "customer")

    async def _records(self, keys: list[tuple[str, int]]) -> list[dict[str, Any] | None]:
        by_kind: dict[str, list[int]] = defaultdict(list)
        for kind, pk in keys:
            by_kind[kind].append(pk)
        found: dict[tuple[str, int], dict[str, Any]] = {}
        for kind, pks in sorted(by_kind.items()):
            table = teamwork.TIMELINE_SOURCES[kind][0]
            for row in await rows_by_column(self.db, table, "id", pks):
                found[(kind, row["id"])] = row
        return [found.get(key) for key in keys]
