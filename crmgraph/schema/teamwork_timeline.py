"""Each customer's ``timeline`` in GraphQL: interactions, notes, tasks,
stage changes and (with ``audit.read``) audit entries in one list, newest
first, built per schema around that schema's ``Interaction`` class (its
channel enum comes from the plugins). Part of team work
(:mod:`crmgraph.plugins.teamwork`).

No ``from __future__ import annotations``: the timeline's types are built
per schema, and strawberry must see real classes in their annotations.
"""

import asyncio
import datetime
from collections.abc import Callable
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from crmgraph.access import AUDIT_READ, forbidden
from crmgraph.db import teamwork
from crmgraph.schema import core_types as core
from crmgraph.schema.page_types import page_types
from crmgraph.schema.pagination import After, First, decode_cursor, encode_cursor, page_info
from crmgraph.schema.teamwork import Note, Task, TimelineKind, page_limit
from crmgraph.schema.teamwork_loaders import TimelineKey


def decode_timeline_cursor(after: str) -> tuple[datetime.datetime, str, int]:
    """A timeline cursor holds (at, kind, id): the full sort key."""
    value, pk = decode_cursor(after, "timeline", timestamp=False)
    try:
        at, kind = value
        if kind not in teamwork.TIMELINE_SOURCES:
            raise ValueError(kind)
        moment = datetime.datetime.fromisoformat(at)
    except (TypeError, ValueError):
        raise GraphQLError(
            "`after` is not a cursor of this list (timeline)",
            extensions={"code": "INVALID_CURSOR"},
        ) from None
    return moment, kind, pk


def build_timeline(interaction_cls: type) -> tuple[type, Callable[..., Any]]:
    """The timeline's connection type and its resolver, around this schema's
    Interaction class (its channel enum comes from the plugins)."""
    Interaction = interaction_cls

    TimelineRecord = Annotated[
        Interaction | Note | Task | core.StageChange | core.AuditEntry,  # type: ignore[valid-type]
        strawberry.union("TimelineRecord", description="The record a timeline item shows."),
    ]

    @strawberry.type(description="One entry of a customer's timeline.")
    class TimelineItem:
        at: datetime.datetime = strawberry.field(
            description="When it happened: an interaction's occurredAt, a note's or task's "
            "createdAt, a stage change's or audit entry's at."
        )
        kind: TimelineKind = strawberry.field(description="What the record is.")
        record: TimelineRecord = strawberry.field(  # type: ignore[valid-type]
            description="The interaction, note, task, stage change or audit entry itself."
        )

    pages = page_types("Timeline", TimelineItem)
    TimelineEdge, TimelineConnection = pages.edge, pages.connection

    def record(info: Info, kind: str, row: dict[str, Any]) -> Any:
        if kind == "INTERACTION":
            return info.context.types.interaction(row)
        if kind == "NOTE":
            return Note.from_row(row)
        if kind == "TASK":
            return Task.from_row(row)
        if kind == "STAGE_CHANGE":
            return core.StageChange.from_row(row)
        return core.AuditEntry.from_row(row, info.context.access.readable_change)

    async def timeline(
        root: Any,
        info: Info,
        first: First = 20,
        after: After = None,
        kinds: Annotated[
            list[TimelineKind] | None,
            strawberry.argument(
                description="Only these kinds (default: all; AUDIT only with audit.read)."
            ),
        ] = None,
    ) -> TimelineConnection:
        limit = page_limit(info, first)
        wanted = {k.value for k in kinds} if kinds else set(teamwork.TIMELINE_SOURCES)
        if not info.context.access.can(AUDIT_READ):
            if kinds and TimelineKind.AUDIT in kinds:
                raise forbidden(AUDIT_READ, "read the audit trail")
            wanted.discard("AUDIT")  # asked for everything: everything they may read
        cursor = decode_timeline_cursor(after) if after else None
        loaders = info.context.loaders.teamwork
        key = TimelineKey(root.pk, limit + 1, tuple(sorted(wanted)), cursor)
        rows = await loaders.timeline.load(key)
        # gathered so the records load together, one statement per kind
        found = await asyncio.gather(
            *(loaders.records.load((row["kind"], row["id"])) for row in rows[:limit])
        )
        edges = []
        for row, found_row in zip(rows[:limit], found, strict=True):
            item = record(info, row["kind"], found_row) if found_row else None
            if item is None:
                continue
            edges.append(
                TimelineEdge(
                    cursor=encode_cursor(
                        "timeline", [row["at"].isoformat(), row["kind"]], row["id"]
                    ),
                    node=TimelineItem(at=row["at"], kind=TimelineKind(row["kind"]), record=item),
                )
            )
        return TimelineConnection(edges=edges, page_info=page_info(edges, len(rows) > limit, after))

    return TimelineConnection, timeline
