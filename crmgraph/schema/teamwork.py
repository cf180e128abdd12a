"""Team work in GraphQL: notes with mentions, tasks, and each customer's
timeline, with their mutations.

Every read follows the caller's row scope: notes, tasks and timeline hang off
a customer, so they are reached through a customer the caller may see (or
``node(id:)``, which checks the same). Every write is one transaction through
:func:`crmgraph.schema.mutations.run_write`, leaving an audit entry and an
outbox event.

No ``from __future__ import annotations``: the timeline's types are built per
schema around that schema's ``Interaction`` class, and strawberry must see
real classes in their annotations (see :mod:`crmgraph.schema.build`).
"""

import asyncio
import datetime
import enum
from collections.abc import Callable
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from crmgraph import validation as v
from crmgraph.access import AUDIT_READ, NOTE_MODERATE, forbidden
from crmgraph.db import teamwork, writes
from crmgraph.schema import core_types as core
from crmgraph.schema.ids import encode_id
from crmgraph.schema.mutations import (
    camel_keys,
    decode,
    forbidden_problem,
    given,
    live,
    node_rows,
    run_write,
    written_row,
)
from crmgraph.schema.pagination import (
    PageInfo,
    check_first,
    decode_cursor,
    encode_cursor,
    page_info,
)
from crmgraph.schema.teamwork_loaders import PageKey, TimelineKey
from crmgraph.validation import Errors, Problem, UserInputError

NOTE_MAX_LENGTH = 10_000


@strawberry.enum(description="Where a task stands. DONE sets `completedAt`.")
class TaskStatus(enum.Enum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


@strawberry.enum(description="What a timeline item records.")
class TimelineKind(enum.Enum):
    INTERACTION = "INTERACTION"
    NOTE = "NOTE"
    TASK = "TASK"
    STAGE_CHANGE = "STAGE_CHANGE"
    AUDIT = "AUDIT"


def _user_id(pk: int | None) -> strawberry.ID | None:
    return strawberry.ID(encode_id("User", pk)) if pk is not None else None


async def _user(info: Info, pk: int | None) -> core.User | None:
    if pk is None:
        return None
    row = await info.context.loaders.user.load(pk)
    return core.User.from_row(row) if row else None


@strawberry.type(
    description="A note on a customer. Mention a user by writing @ and their e-mail "
    "address in the body, e.g. `@ana@example.com`; mentioned users are listed in "
    "`mentions` and the note.created event carries their IDs."
)
class Note(core.Node):
    pk: strawberry.Private[int]
    author_pk: strawberry.Private[int | None]
    customer_id: strawberry.ID
    body: str
    version: int = strawberry.field(description="Send it back as `expectedVersion`.")
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @strawberry.field(description="Who wrote it (null when written without a user).")
    async def author(self, info: Info) -> core.User | None:
        return await _user(info, self.author_pk)

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


@strawberry.type(description="Work to do for a customer, optionally for one of its needs.")
class Task(core.Node):
    pk: strawberry.Private[int]
    assignee_pk: strawberry.Private[int | None]
    created_by_pk: strawberry.Private[int | None]
    customer_id: strawberry.ID
    need_id: strawberry.ID | None
    title: str
    description: str | None
    due_at: datetime.datetime | None
    status: TaskStatus
    completed_at: datetime.datetime | None = strawberry.field(
        description="When it was marked DONE; cleared if it is reopened."
    )
    version: int = strawberry.field(description="Send it back as `expectedVersion`.")
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @strawberry.field
    async def assignee(self, info: Info) -> core.User | None:
        return await _user(info, self.assignee_pk)

    @strawberry.field
    async def created_by(self, info: Info) -> core.User | None:
        return await _user(info, self.created_by_pk)

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


@strawberry.type
class NoteEdge:
    cursor: str
    node: Note


@strawberry.type
class NoteConnection:
    edges: list[NoteEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Note]:
        return [edge.node for edge in self.edges]


@strawberry.type
class TaskEdge:
    cursor: str
    node: Task


@strawberry.type
class TaskConnection:
    edges: list[TaskEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Task]:
        return [edge.node for edge in self.edges]


def _limit(info: Info, first: int | None) -> int:
    settings = info.context.settings
    return check_first(first, settings.default_page_size, settings.max_page_size)


def _statuses(status: list[TaskStatus] | None) -> tuple[str, ...]:
    return tuple(sorted(s.value for s in status or ()))


# ---------------------------------------------------------------- reads


async def customer_notes(
    root: Any, info: Info, first: int | None = 10, after: str | None = None
) -> NoteConnection:
    """Customer.notes: ``root`` is a customer the caller may see."""
    limit = _limit(info, first)
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
    status: list[TaskStatus] | None = None,
    first: int | None = 10,
    after: str | None = None,
) -> TaskConnection:
    """Customer.tasks, newest first; ``status`` keeps only those statuses."""
    limit = _limit(info, first)
    before = decode_cursor(after, "task", timestamp=True) if after else None
    key = PageKey(root.pk, limit + 1, _statuses(status), before)
    rows = await info.context.loaders.teamwork.tasks.load(key)
    edges = [
        TaskEdge(
            cursor=encode_cursor("task", row["created_at"], row["id"]), node=Task.from_row(row)
        )
        for row in rows[:limit]
    ]
    return TaskConnection(edges=edges, page_info=page_info(edges, len(rows) > limit, after))


async def need_tasks(info: Info, need_pk: int) -> list[Task]:
    """Need.tasks, oldest first. A need is only reached through a customer the
    caller may see, so its tasks need no further check."""
    rows = await info.context.loaders.teamwork.need_tasks.load(need_pk)
    return [Task.from_row(row) for row in rows]


async def my_tasks(
    info: Info,
    status: Annotated[
        list[TaskStatus] | None,
        strawberry.argument(description="Only these statuses (default: OPEN and IN_PROGRESS)."),
    ] = None,
    due_before: Annotated[
        datetime.datetime | None, strawberry.argument(description="Due strictly before this.")
    ] = None,
    first: int | None = 20,
    after: str | None = None,
) -> TaskConnection:
    """Query.myTasks: the caller's tasks on customers they may see."""
    limit = _limit(info, first)
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
    edges = [
        TaskEdge(
            cursor=encode_cursor("my_tasks", row["due_key"], row["id"]), node=Task.from_row(row)
        )
        for row in rows[:limit]
    ]
    return TaskConnection(edges=edges, page_info=page_info(edges, len(rows) > limit, after))


@strawberry.type
class TeamworkQuery:
    my_tasks: TaskConnection = strawberry.field(
        resolver=my_tasks,
        description="Tasks assigned to the caller on customers they may see, soonest due "
        "first (undated last).",
    )


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
        kind: TimelineKind
        record: TimelineRecord  # type: ignore[valid-type]

    @strawberry.type
    class TimelineEdge:
        cursor: str
        node: TimelineItem

    @strawberry.type
    class TimelineConnection:
        edges: list[TimelineEdge]
        page_info: PageInfo

        @strawberry.field
        def nodes(self) -> list[TimelineItem]:
            return [edge.node for edge in self.edges]

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
        first: int | None = 20,
        after: str | None = None,
        kinds: Annotated[
            list[TimelineKind] | None,
            strawberry.argument(
                description="Only these kinds (default: all; AUDIT only with audit.read)."
            ),
        ] = None,
    ) -> TimelineConnection:
        limit = _limit(info, first)
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


# ---------------------------------------------------------------- writes


@strawberry.input
class AddNoteInput:
    customer_id: strawberry.ID
    body: str = strawberry.field(description="Mention users as @their@e-mail.address.")


@strawberry.input
class UpdateNoteInput:
    id: strawberry.ID
    body: str
    expected_version: int | None = strawberry.field(
        default=None, description="The version you read; a stale one is refused."
    )


@strawberry.input
class DeleteNoteInput:
    id: strawberry.ID


@strawberry.input
class CreateTaskInput:
    customer_id: strawberry.ID
    title: str
    need_id: strawberry.ID | None = strawberry.field(
        default=None, description="A need of the same customer."
    )
    description: str | None = None
    due_at: datetime.datetime | None = None
    assignee_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Defaults to the caller; null leaves it unassigned."
    )


@strawberry.input(description="Fields left out stay as they are; null clears an optional one.")
class UpdateTaskInput:
    id: strawberry.ID
    expected_version: int | None = None
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    due_at: datetime.datetime | None = strawberry.UNSET
    assignee_id: strawberry.ID | None = strawberry.UNSET
    status: TaskStatus | None = strawberry.UNSET


@strawberry.type
class NotePayload:
    note: Note | None
    user_errors: list[core.UserError]


@strawberry.type
class DeleteNotePayload:
    deleted_id: strawberry.ID | None
    user_errors: list[core.UserError]


@strawberry.type
class TaskPayload:
    task: Task | None
    user_errors: list[core.UserError]


def _ids(type_name: str, pks: list[int]) -> list[str]:
    return [encode_id(type_name, pk) for pk in pks]


async def _mentioned_users(info: Info, body: str) -> list[int]:
    """The ids of the users ``body`` mentions; an address that is no user is
    refused (a typo would otherwise notify nobody, silently)."""
    emails = teamwork.mentioned_emails(body)
    found = await teamwork.users_by_email(info.context.db, emails)
    unknown = [email for email in emails if email not in found]
    if unknown:
        raise UserInputError(
            [
                Problem("body", f"no user has the e-mail address {e} (@{e})", "NOT_FOUND")
                for e in unknown
            ]
        )
    return [found[email] for email in emails]


async def _editable_note(info: Info, pk: int) -> dict[str, Any]:
    """The note a write applies to: not deleted, on a customer the caller may
    see, and theirs unless they hold note.moderate."""
    row = await writes.locked_row(info.context.db, "note", pk)
    if row is None or row["deleted_at"] is not None:
        raise UserInputError.single("id", "note not found", "NOT_FOUND")
    await live(info, row["customer"], "id")
    access = info.context.access
    if row["author"] != access.principal.user_id and not access.can(NOTE_MODERATE):
        raise UserInputError([forbidden_problem("id", "change another user's note", NOTE_MODERATE)])
    return row


def _check_version(row: dict[str, Any], expected: int | None, what: str) -> None:
    if expected is not None and row["version"] != expected:
        raise UserInputError.single(
            "expectedVersion",
            f"{what} was changed by someone else since version {expected} (it is now at "
            f"version {row['version']}); reload it and apply your change again",
            "VERSION_CONFLICT",
        )


async def _existing_user(info: Info, pk: int | None, field: str) -> None:
    if pk is not None and not await writes.row_exists(info.context.db, "crm_user", pk):
        raise UserInputError.single(field, "user not found", "NOT_FOUND")


async def _task_payload(info: Info, pk: int | None, problems: list[core.UserError]) -> TaskPayload:
    if pk is None:
        return TaskPayload(task=None, user_errors=problems)
    row = await written_row(info, "row", ("Task", pk))
    return TaskPayload(task=Task.from_row(row), user_errors=[])


async def _note_payload(info: Info, pk: int | None, problems: list[core.UserError]) -> NotePayload:
    if pk is None:
        return NotePayload(note=None, user_errors=problems)
    row = await written_row(info, "row", ("Note", pk))
    return NotePayload(note=Note.from_row(row), user_errors=[])


def _task_text(errors: Errors, data: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "title" in data:
        values["title"] = v.text(errors, "title", data["title"], max_length=200, required=True)
    if "description" in data:
        values["description"] = v.text(
            errors, "description", data["description"], max_length=10_000
        )
    if "due_at" in data:
        values["due_at"] = v.utc(data["due_at"])
    return values


@strawberry.type
class TeamworkMutation:
    @strawberry.mutation(description="Write a note on a customer; mention users as @e-mail.")
    async def add_note(self, info: Info, input: AddNoteInput) -> NotePayload:
        errors = Errors()
        customer = decode(errors, "customerId", input.customer_id, "Customer") or 0
        body = v.text(errors, "body", input.body, max_length=NOTE_MAX_LENGTH, required=True)

        async def work() -> int:
            db = info.context.db
            await live(info, customer, "customerId")
            mentioned = await _mentioned_users(info, body or "")
            at = writes.now()
            author = info.context.principal.user_id
            pk = await writes.insert(
                db,
                "note",
                {
                    "customer": customer,
                    "author": author,
                    "body": body,
                    "version": 1,
                    "created_at": at,
                    "updated_at": at,
                },
            )
            await teamwork.set_mentions(db, pk, mentioned)
            await writes.record_change(
                db,
                "note.created",
                ("Note", pk),
                customer,
                writes.field_changes(None, {"body": body}),
                {
                    "customerId": input.customer_id,
                    "noteId": encode_id("Note", pk),
                    "authorId": _user_id(author),
                    "mentionedUserIds": _ids("User", mentioned),
                },
            )
            return pk

        pk, problems = await run_write(info, errors, work, result_rows=node_rows("Note"))
        return await _note_payload(info, pk, problems)

    @strawberry.mutation(
        description="Rewrite a note: authors edit their own, note.moderate any. The "
        "note.updated event lists every mentioned user and those newly mentioned."
    )
    async def update_note(self, info: Info, input: UpdateNoteInput) -> NotePayload:
        errors = Errors()
        pk = decode(errors, "id", input.id, "Note") or 0
        body = v.text(errors, "body", input.body, max_length=NOTE_MAX_LENGTH, required=True)

        async def work() -> int:
            db = info.context.db
            row = await _editable_note(info, pk)
            _check_version(row, input.expected_version, "note")
            mentioned = await _mentioned_users(info, body or "")
            before = {m["mentioned"] for m in await db.fetch(
                "SELECT mentioned FROM note_mention WHERE note = {}", pk
            )}  # fmt: skip
            await db.fetch(
                "UPDATE note SET body = {}, updated_at = {}, version = version + 1 WHERE id = {}",
                body,
                writes.now(),
                pk,
            )
            await teamwork.set_mentions(db, pk, mentioned)
            await writes.record_change(
                db,
                "note.updated",
                ("Note", pk),
                row["customer"],
                writes.field_changes({"body": row["body"]}, {"body": body}),
                {
                    "customerId": encode_id("Customer", row["customer"]),
                    "noteId": input.id,
                    "mentionedUserIds": _ids("User", mentioned),
                    "newlyMentionedUserIds": _ids(
                        "User", [m for m in mentioned if m not in before]
                    ),
                },
            )
            return pk

        result, problems = await run_write(info, errors, work, result_rows=node_rows("Note"))
        return await _note_payload(info, result, problems)

    @strawberry.mutation(description="Delete a note: authors their own, note.moderate any.")
    async def delete_note(self, info: Info, input: DeleteNoteInput) -> DeleteNotePayload:
        errors = Errors()
        pk = decode(errors, "id", input.id, "Note") or 0

        async def work() -> int:
            db = info.context.db
            row = await _editable_note(info, pk)
            # soft: the audit trail keeps naming a record that exists
            await db.fetch(
                "UPDATE note SET deleted_at = {}, version = version + 1 WHERE id = {}",
                writes.now(),
                pk,
            )
            await writes.record_change(
                db,
                "note.deleted",
                ("Note", pk),
                row["customer"],
                {"body": [row["body"], None]},
                {"customerId": encode_id("Customer", row["customer"]), "noteId": input.id},
            )
            return pk

        result, problems = await run_write(info, errors, work, result_rows=lambda pk: ())
        return DeleteNotePayload(
            deleted_id=input.id if result is not None else None, user_errors=problems
        )

    @strawberry.mutation(description="Create a task for a customer, or for one of its needs.")
    async def create_task(self, info: Info, input: CreateTaskInput) -> TaskPayload:
        errors = Errors()
        customer = decode(errors, "customerId", input.customer_id, "Customer") or 0
        need = decode(errors, "needId", input.need_id, "Need")
        caller = info.context.principal.user_id
        assignee = (
            decode(errors, "assigneeId", input.assignee_id, "User")
            if given(input.assignee_id)
            else caller
        )
        values = _task_text(
            errors,
            {"title": input.title, "description": input.description, "due_at": input.due_at},
        )

        async def work() -> int:
            db = info.context.db
            await live(info, customer, "customerId")
            if need is not None:
                rows = await db.fetch("SELECT customer FROM need WHERE id = {}", need)
                if not rows:
                    raise UserInputError.single("needId", "need not found", "NOT_FOUND")
                if rows[0]["customer"] != customer:
                    raise UserInputError.single(
                        "needId", "need belongs to another customer", "INVALID"
                    )
            await _existing_user(info, assignee, "assigneeId")
            at = writes.now()
            row = {
                **values,
                "customer": customer,
                "need": need,
                "assignee": assignee,
                "created_by": caller,
                "status": TaskStatus.OPEN.value,
                "version": 1,
                "created_at": at,
                "updated_at": at,
            }
            pk = await writes.insert(db, "task", row)
            await writes.record_change(
                db,
                "task.created",
                ("Task", pk),
                customer,
                writes.field_changes(
                    None, camel_keys({k: row[k] for k in (*values, "need", "assignee", "status")})
                ),
                {
                    "customerId": input.customer_id,
                    "taskId": encode_id("Task", pk),
                    "needId": encode_id("Need", need) if need is not None else None,
                    "assigneeId": _user_id(assignee),
                    "dueAt": writes.jsonable(values.get("due_at")),
                },
            )
            return pk

        pk, problems = await run_write(info, errors, work, result_rows=node_rows("Task"))
        return await _task_payload(info, pk, problems)

    @strawberry.mutation(
        description="Change a task: title, due date, assignee, status. Moving it to DONE "
        "sets completedAt and writes a task.completed event instead of task.updated."
    )
    async def update_task(self, info: Info, input: UpdateTaskInput) -> TaskPayload:
        errors = Errors()
        pk = decode(errors, "id", input.id, "Task") or 0
        data = {k: val for k, val in vars(input).items() if given(val)}
        for required in ("title", "status"):
            if required in data and data[required] is None:
                errors.add(required, f"{required} cannot be null", "REQUIRED")
        values = _task_text(errors, data)
        if "assignee_id" in data:
            values["assignee"] = decode(errors, "assigneeId", data["assignee_id"], "User")
        if data.get("status") is not None:
            values["status"] = data["status"].value

        async def work() -> int:
            db = info.context.db
            current = await writes.locked_row(db, "task", pk)
            if current is None:
                raise UserInputError.single("id", "task not found", "NOT_FOUND")
            await live(info, current["customer"], "id")
            _check_version(current, input.expected_version, "task")
            await _existing_user(info, values.get("assignee"), "assigneeId")
            changed = dict(values)
            completed = values.get("status") == "DONE" and current["status"] != "DONE"
            if "status" in values and values["status"] != current["status"]:
                # completedAt follows DONE: set on entering it, cleared on leaving it
                changed["completed_at"] = writes.now() if completed else None
            changes = writes.field_changes(
                camel_keys({k: current[k] for k in changed}), camel_keys(changed)
            )
            if not changes:
                return pk  # nothing differs: no write, no event
            await db.fetch(
                "UPDATE task SET "
                + "".join(f"{column} = {{}}, " for column in changed)
                + "updated_at = {}, version = version + 1 WHERE id = {}",
                *changed.values(),
                writes.now(),
                pk,
            )
            await writes.record_change(
                db,
                "task.completed" if completed else "task.updated",
                ("Task", pk),
                current["customer"],
                changes,
                {
                    "customerId": encode_id("Customer", current["customer"]),
                    "taskId": input.id,
                    "fields": sorted(changes),
                    "status": changed.get("status", current["status"]),
                    "assigneeId": _user_id(changed.get("assignee", current["assignee"])),
                },
            )
            return pk

        result, problems = await run_write(info, errors, work, result_rows=node_rows("Task"))
        return await _task_payload(info, result, problems)
