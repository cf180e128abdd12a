"""Team work's mutations in GraphQL: add, change and delete notes (with
mentions), create and change tasks. Every write is one transaction through
:func:`crmgraph.schema.mutations.run_write`, leaving an audit entry and an
outbox event. Part of team work (:mod:`crmgraph.plugins.teamwork`)."""

import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from crmgraph import validation as v
from crmgraph.access import NOTE_MODERATE
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
from crmgraph.schema.teamwork import Note, Task, TaskStatus
from crmgraph.validation import Errors, Problem, UserInputError

NOTE_MAX_LENGTH = 10_000


def _user_id(pk: int | None) -> strawberry.ID | None:
    return strawberry.ID(encode_id("User", pk)) if pk is not None else None


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
