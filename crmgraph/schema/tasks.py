"""Team work's task type, below the core types' Need (whose ``tasks`` lists them)
and team work's other reads (:mod:`crmgraph.schema.teamwork`), so that neither
needs the other: Need imports this module, this module imports only the core
types it builds on."""

import datetime
import enum
from typing import Any

import strawberry
from strawberry.types import Info

from crmgraph.schema import core_types as core
from crmgraph.schema.ids import encode_id


@strawberry.enum(description="Where a task stands. DONE sets `completedAt`.")
class TaskStatus(enum.Enum):
    OPEN = strawberry.enum_value("OPEN", description="To do.")
    IN_PROGRESS = strawberry.enum_value("IN_PROGRESS", description="Being done.")
    DONE = strawberry.enum_value("DONE", description="Done; `completedAt` says when.")
    CANCELLED = strawberry.enum_value("CANCELLED", description="Will not be done.")


@strawberry.type(description="Work to do for a customer, optionally for one of its needs.")
class Task(core.Node):
    pk: strawberry.Private[int]
    assignee_pk: strawberry.Private[int | None]
    created_by_pk: strawberry.Private[int | None]
    customer_id: strawberry.ID = strawberry.field(
        description="Global ID of the customer the task is for."
    )
    need_id: strawberry.ID | None = strawberry.field(
        description="Global ID of the need it serves; null: none."
    )
    title: str = strawberry.field(description="What to do, in one line.")
    description: str | None = strawberry.field(description="Details of the task; null: none given.")
    due_at: datetime.datetime | None = strawberry.field(
        description="When it must be done by (UTC); null: no deadline."
    )
    status: TaskStatus = strawberry.field(description="Where it stands.")
    completed_at: datetime.datetime | None = strawberry.field(
        description="When it was marked DONE; cleared if it is reopened."
    )
    version: int = strawberry.field(description="Send it back as `expectedVersion`.")
    created_at: datetime.datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime.datetime = strawberry.field(
        description="When it last changed (UTC); its creation time if it never did."
    )

    @strawberry.field(description="Who is to do it; null: nobody yet.")
    async def assignee(self, info: Info) -> core.User | None:
        return await core.user_of(info, self.assignee_pk)

    @strawberry.field(description="Who created it; null: created without a user.")
    async def created_by(self, info: Info) -> core.User | None:
        return await core.user_of(info, self.created_by_pk)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Task":
        need = row["need"]
        return cls(
            id=strawberry.ID(encode_id("Task", row["id"])),
            pk=row["id"],
            assignee_pk=row["assignee"],
            created_by_pk=row["created_by"],
            customer_id=strawberry.ID(encode_id("Customer", row["customer"])),
            need_id=strawberry.ID(encode_id("Need", need)) if need is not None else None,
            title=row["title"],
            description=row["description"],
            due_at=row["due_at"],
            status=TaskStatus(row["status"]),
            completed_at=row["completed_at"],
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


async def need_tasks(info: Info, need_pk: int) -> list[Task]:
    """Need.tasks, oldest first. A need is only reached through a customer the
    caller may see, so its tasks need no further check."""
    rows = await info.context.loaders.teamwork.need_tasks.load(need_pk)
    return [Task.from_row(row) for row in rows]
