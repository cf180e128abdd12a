"""Team work's mutations in GraphQL: add, change and delete notes (with
mentions), create and change tasks. Each is a short adapter: it decodes its
input's global IDs, hands the plain input to its operation in
:mod:`crmgraph.operations.teamwork` (where the rules are) and shows the
result, or the operation's problems as ``userErrors``. Part of team work
(:mod:`crmgraph.plugins.teamwork`)."""

import datetime

import strawberry
from strawberry.types import Info

from crmgraph.operations import teamwork as ops
from crmgraph.schema import core_types as core
from crmgraph.schema.mutations.common import (
    WrittenNode,
    decode,
    decode_pk,
    given,
    no_rows,
    node_payload,
    perform,
    plain,
)
from crmgraph.schema.teamwork import Note, Task, TaskStatus
from crmgraph.schema.user_errors import USER_ERRORS
from crmgraph.validation import Errors


@strawberry.input(description="A new note on a customer.")
class AddNoteInput:
    customer_id: strawberry.ID = strawberry.field(
        description="Global ID of the customer the note is about."
    )
    body: str = strawberry.field(description="Mention users as @their@e-mail.address.")


@strawberry.input(description="Change a note's text.")
class UpdateNoteInput:
    id: strawberry.ID = strawberry.field(description="The note's global ID.")
    body: str = strawberry.field(description="The new text; mentions are read again from it.")
    expected_version: int | None = strawberry.field(
        default=None, description="The version you read; a stale one is refused."
    )


@strawberry.input(description="Delete a note: it is gone for every reader.")
class DeleteNoteInput:
    id: strawberry.ID = strawberry.field(description="The note's global ID.")


@strawberry.input(description="A new task for a customer.")
class CreateTaskInput:
    customer_id: strawberry.ID = strawberry.field(
        description="Global ID of the customer the task is for."
    )
    title: str = strawberry.field(description="What to do, in one line.")
    need_id: strawberry.ID | None = strawberry.field(
        default=None, description="A need of the same customer."
    )
    description: str | None = strawberry.field(default=None, description="Details of the task.")
    due_at: datetime.datetime | None = strawberry.field(
        default=None, description="When it must be done by (UTC); null: no deadline."
    )
    assignee_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Defaults to the caller; null leaves it unassigned."
    )


@strawberry.input(description="Fields left out stay as they are; null clears an optional one.")
class UpdateTaskInput:
    id: strawberry.ID = strawberry.field(description="The task's global ID.")
    expected_version: int | None = strawberry.field(
        default=None, description="The version you read; a stale one is refused (null: no check)."
    )
    title: str | None = strawberry.field(
        default=strawberry.UNSET, description="What to do, in one line."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="Details of the task."
    )
    due_at: datetime.datetime | None = strawberry.field(
        default=strawberry.UNSET, description="When it must be done by (UTC)."
    )
    assignee_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Global ID of the user to do it."
    )
    status: TaskStatus | None = strawberry.field(
        default=strawberry.UNSET, description="Where it stands (DONE sets `completedAt`)."
    )


@strawberry.type(description="The result of a note write.")
class NotePayload:
    note: Note | None = strawberry.field(description="The note as written; null when refused.")
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of `deleteNote`.")
class DeleteNotePayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        description="Global ID of the note deleted; null when refused."
    )
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of a task write.")
class TaskPayload:
    task: Task | None = strawberry.field(description="The task as written; null when refused.")
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


NOTE = WrittenNode("Note", Note.from_row, NotePayload, "note")
TASK = WrittenNode("Task", Task.from_row, TaskPayload, "task")


@strawberry.type
class TeamworkMutation:
    @strawberry.mutation(description="Write a note on a customer; mention users as @e-mail.")
    async def add_note(self, info: Info, input: AddNoteInput) -> NotePayload:
        errors = Errors()
        customer = decode_pk(errors, "customerId", input.customer_id, "Customer")
        new = ops.NewNote(customer, input.body, errors.problems)
        return await node_payload(info, info.context.catalog, ops.add_note, new, NOTE)

    @strawberry.mutation(
        description="Rewrite a note: authors edit their own, note.moderate any. The "
        "note.updated event lists every mentioned user and those newly mentioned."
    )
    async def update_note(self, info: Info, input: UpdateNoteInput) -> NotePayload:
        errors = Errors()
        pk = decode_pk(errors, "id", input.id, "Note")
        change = ops.NoteChange(pk, input.body, input.expected_version, errors.problems)
        return await node_payload(info, info.context.catalog, ops.update_note, change, NOTE)

    @strawberry.mutation(description="Delete a note: authors their own, note.moderate any.")
    async def delete_note(self, info: Info, input: DeleteNoteInput) -> DeleteNotePayload:
        errors = Errors()
        pk = decode_pk(errors, "id", input.id, "Note")
        deletion = ops.NoteDeletion(pk, errors.problems)
        result, problems = await perform(
            info, info.context.catalog, ops.delete_note, deletion, no_rows
        )
        return DeleteNotePayload(
            deleted_id=input.id if result is not None else None, user_errors=problems
        )

    @strawberry.mutation(description="Create a task for a customer, or for one of its needs.")
    async def create_task(self, info: Info, input: CreateTaskInput) -> TaskPayload:
        errors = Errors()
        customer = decode_pk(errors, "customerId", input.customer_id, "Customer")
        need = decode(errors, "needId", input.need_id, "Need")
        assignee = (
            decode(errors, "assigneeId", input.assignee_id, "User")
            if given(input.assignee_id)
            else ops.Default.ACTOR
        )
        new = ops.NewTask(
            customer,
            input.title,
            need,
            input.description,
            input.due_at,
            assignee,
            errors.problems,
        )
        return await node_payload(info, info.context.catalog, ops.create_task, new, TASK)

    @strawberry.mutation(
        description="Change a task: title, due date, assignee, status. Moving it to DONE "
        "sets completedAt and writes a task.completed event instead of task.updated."
    )
    async def update_task(self, info: Info, input: UpdateTaskInput) -> TaskPayload:
        errors = Errors()
        pk = decode_pk(errors, "id", input.id, "Task")
        fields = {
            k: plain(val)
            for k, val in vars(input).items()
            if k in ("title", "description", "due_at", "status") and given(val)
        }
        if given(input.assignee_id):
            fields["assignee"] = decode(errors, "assigneeId", input.assignee_id, "User")
        change = ops.TaskChange(pk, fields, input.expected_version, errors.problems)
        return await node_payload(info, info.context.catalog, ops.update_task, change, TASK)
