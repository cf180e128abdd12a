"""Team work in GraphQL, its reads: notes with mentions and tasks, each
customer's ``notes`` and ``tasks`` and the caller's ``myTasks``. The timeline
is :mod:`crmgraph.schema.teamwork_timeline`, the writes
:mod:`crmgraph.schema.teamwork_mutations`; :mod:`crmgraph.plugins.teamwork`
adds them all to the schema.

Every read follows the caller's row scope: notes, tasks and timeline hang off
a customer, so they are reached through a customer the caller may see (or
``node(id:)``, which checks the same).

No ``from __future__ import annotations``: strawberry must see real classes
in the annotations of the fields these types add to the per-schema types.
"""

import datetime
import enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from crmgraph import validation as v
from crmgraph.db import teamwork
from crmgraph.extension_points import NodeLoader
from crmgraph.schema import core_types as core
from crmgraph.schema.contributions import row_node
from crmgraph.schema.ids import encode_id
from crmgraph.schema.page_types import page_of, page_types
from crmgraph.schema.pagination import (
    After,
    First,
    check_first,
    decode_cursor,
    encode_cursor,
    page_info,
)
from crmgraph.schema.tasks import Task, TaskStatus
from crmgraph.schema.teamwork_loaders import PageKey


@strawberry.enum(description="What a timeline item records.")
class TimelineKind(enum.Enum):
    INTERACTION = strawberry.enum_value(
        "INTERACTION", description="An interaction with the customer."
    )
    NOTE = strawberry.enum_value("NOTE", description="A note written about it.")
    TASK = strawberry.enum_value("TASK", description="A task created for it.")
    STAGE_CHANGE = strawberry.enum_value(
        "STAGE_CHANGE", description="A move through its lifecycle."
    )
    AUDIT = strawberry.enum_value(
        "AUDIT", description="A change to its records (needs the audit.read permission)."
    )


@strawberry.type(
    description="A note on a customer. Mention a user by writing @ and their e-mail "
    "address in the body, e.g. `@ana@example.com`; mentioned users are listed in "
    "`mentions` and the note.created event carries their IDs."
)
class Note(core.Node):
    pk: strawberry.Private[int]
    author_pk: strawberry.Private[int | None]
    customer_id: strawberry.ID = strawberry.field(
        description="Global ID of the customer the note is about."
    )
    body: str = strawberry.field(description="The text, as written (mentions included).")
    version: int = strawberry.field(description="Send it back as `expectedVersion`.")
    created_at: datetime.datetime = strawberry.field(description="When it was written (UTC).")
    updated_at: datetime.datetime = strawberry.field(
        description="When it was last edited (UTC); its creation time if never."
    )

    @strawberry.field(description="Who wrote it (null when written without a user).")
    async def author(self, info: Info) -> core.User | None:
        return await core.user_of(info, self.author_pk)

    @strawberry.field(description="Users mentioned in the body, by name.")
    async def mentions(self, info: Info) -> list[core.User]:
        rows = await info.context.loaders.teamwork.mentions.load(self.pk)
        return [core.User.from_row(row) for row in rows]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Note | None":
        """None for a deleted note: it is gone for every reader."""
        if row["deleted_at"] is not None:
            return None
        return cls(
            id=strawberry.ID(encode_id("Note", row["id"])),
            pk=row["id"],
            author_pk=row["author"],
            customer_id=strawberry.ID(encode_id("Customer", row["customer"])),
            body=row["body"],
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


NOTE_PAGES = page_types("Note", Note)
NoteEdge, NoteConnection = NOTE_PAGES.edge, NOTE_PAGES.connection
TASK_PAGES = page_types("Task", Task)
TaskEdge, TaskConnection = TASK_PAGES.edge, TASK_PAGES.connection


# how node(id:) loads a note or a task: shown only if the caller sees its customer
NODES: dict[str, NodeLoader] = {
    "Note": row_node("Note", Note.from_row),
    "Task": row_node("Task", Task.from_row),
}


def page_limit(info: Info, first: int | None) -> int:
    settings = info.context.settings
    return check_first(first, settings.default_page_size, settings.max_page_size)


def _statuses(status: list[TaskStatus] | None) -> tuple[str, ...]:
    return tuple(sorted(s.value for s in status or ()))


# ---------------------------------------------------------------- reads


async def customer_notes(
    root: Any, info: Info, first: First = 10, after: After = None
) -> NoteConnection:  # type: ignore[valid-type]
    """Customer.notes: ``root`` is a customer the caller may see."""
    limit = page_limit(info, first)
    before = decode_cursor(after, "note", timestamp=True) if after else None
    key = PageKey(root.pk, limit + 1, (), before)
    rows = await info.context.loaders.teamwork.notes.load(key)
    edges = [
        NoteEdge(cursor=encode_cursor("note", row["created_at"], row["id"]), node=note)
        for row in rows[:limit]
        if (note := Note.from_row(row)) is not None
    ]
    return NoteConnection(edges=edges, page_info=page_info(edges, len(rows) > limit, after))


async def customer_tasks(
    root: Any,
    info: Info,
    status: Annotated[
        list[TaskStatus] | None,
        strawberry.argument(description="Only these statuses (default: all)."),
    ] = None,
    first: First = 10,
    after: After = None,
) -> TaskConnection:  # type: ignore[valid-type]
    """Customer.tasks, newest first; ``status`` keeps only those statuses."""
    limit = page_limit(info, first)
    before = decode_cursor(after, "task", timestamp=True) if after else None
    key = PageKey(root.pk, limit + 1, _statuses(status), before)
    rows = await info.context.loaders.teamwork.tasks.load(key)
    return page_of(
        TaskEdge,
        TaskConnection,
        rows,
        limit,
        after,
        lambda row: encode_cursor("task", row["created_at"], row["id"]),
        Task.from_row,
    )


@strawberry.type
class TeamworkQuery:
    # a method, not `my_tasks: ... = strawberry.field(resolver=...)`: root fields
    # declared as attributes are listed before every method (the core's too)
    @strawberry.field(
        description="Tasks assigned to the caller on customers they may see, soonest due "
        "first (undated last)."
    )
    async def my_tasks(
        self,
        info: Info,
        status: Annotated[
            list[TaskStatus] | None,
            strawberry.argument(description="Only these statuses (default: OPEN and IN_PROGRESS)."),
        ] = None,
        due_before: Annotated[
            datetime.datetime | None,
            strawberry.argument(description="Due strictly before this."),
        ] = None,
        first: First = 20,
        after: After = None,
    ) -> TaskConnection:  # type: ignore[valid-type]
        """The caller's tasks on customers they may see."""
        limit = page_limit(info, first)
        user_id = info.context.principal.user_id
        cursor = decode_cursor(after, "my_tasks", timestamp=True) if after else None
        if user_id is None:  # the anonymous development caller is assigned nothing
            return TaskConnection(edges=[], page_info=page_info([], False, after))
        statuses = _statuses(status) or teamwork.OPEN_TASK_STATUSES
        rows = await teamwork.my_tasks(
            info.context.db,
            user_id,
            info.context.access.scope,
            statuses,
            v.utc(due_before),
            limit + 1,
            cursor,
        )
        return page_of(
            TaskEdge,
            TaskConnection,
            rows,
            limit,
            after,
            lambda row: encode_cursor("my_tasks", row["due_key"], row["id"]),
            Task.from_row,
        )
