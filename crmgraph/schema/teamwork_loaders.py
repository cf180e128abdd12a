"""Per-request DataLoaders for notes, tasks and the timeline: each list loads
in one statement for every customer (or need, or note) on the page."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from crmgraph.db import teamwork
from crmgraph.db.engine import Database
from crmgraph.db.queries import rows_by_column
from crmgraph.schema.dataloader import DataLoader

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class PageKey:
    """One customer's page of notes or tasks, newest first."""

    customer_id: int
    limit: int
    statuses: tuple[str, ...]
    before: tuple[datetime.datetime, int] | None


@dataclass(frozen=True)
class TimelineKey:
    customer_id: int
    limit: int
    kinds: tuple[str, ...]
    after: tuple[datetime.datetime, str, int] | None


def group(rows: Rows, column: str, keys: Sequence[Any]) -> list[Rows]:
    grouped: dict[Any, Rows] = defaultdict(list)
    for row in rows:
        grouped[row[column]].append(row)
    return [grouped.get(key, []) for key in keys]


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
        async def load(keys: list[PageKey]) -> list[Rows]:
            # keys sharing arguments (one selection over a page of customers)
            # load together in one ranked statement
            groups: dict[tuple, list[int]] = defaultdict(list)
            for key in keys:
                groups[(key.limit, key.statuses, key.before)].append(key.customer_id)
            found: dict[PageKey, Rows] = {}
            for (limit, statuses, before), members in groups.items():
                ids = sorted(set(members))
                rows = await teamwork.newest_pages(self.db, table, ids, limit, statuses, before)
                for pk, page in zip(ids, group(rows, "customer", ids), strict=True):
                    found[PageKey(pk, limit, statuses, before)] = page
            return [found[key] for key in keys]

        return load

    async def _need_tasks(self, need_ids: list[int]) -> list[Rows]:
        rows = await teamwork.tasks_of_needs(self.db, need_ids)
        return group(rows, "need", need_ids)

    async def _mentions(self, note_ids: list[int]) -> list[Rows]:
        rows = await teamwork.mentions_of(self.db, note_ids)
        return group(rows, "mention_note", note_ids)

    async def _timeline(self, keys: list[TimelineKey]) -> list[Rows]:
        groups: dict[tuple, list[int]] = defaultdict(list)
        for key in keys:
            groups[(key.limit, key.kinds, key.after)].append(key.customer_id)
        found: dict[TimelineKey, Rows] = {}
        for (limit, kinds, after), members in groups.items():
            ids = sorted(set(members))
            rows = await teamwork.timeline_pages(self.db, ids, limit, kinds, after)
            for pk, page in zip(ids, group(rows, "customer", ids), strict=True):
                found[TimelineKey(pk, limit, kinds, after)] = page
        return [found[key] for key in keys]

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
