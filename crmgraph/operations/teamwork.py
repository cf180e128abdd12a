"""Team work's writes: add, change and delete notes (with mentions), create
and change tasks. Each leaves an audit entry and an outbox event in its one
transaction; the GraphQL adapters are :mod:`crmgraph.schema.teamwork_mutations`."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pluggy

from crmgraph import validation as v
from crmgraph.access import NOTE_MODERATE
from crmgraph.db import teamwork, writes
from crmgraph.db.engine import Database
from crmgraph.ids import encode_id
from crmgraph.input_checks import camel_keys, forbidden_problem
from crmgraph.operations.actor import Actor
from crmgraph.operations.customer_checks import hold_live
from crmgraph.operations.runner import Then, nothing, run_write
from crmgraph.registry import Catalog
from crmgraph.validation import Errors, Problem, UserInputError

NOTE_MAX_LENGTH = 10_000

# the input path of a task's assignee: its ID problem follows the text fields'
ASSIGNEE_PATH = "assigneeId"


class Default(enum.Enum):
    """A value left out of an input that the rules fill in."""

    ACTOR = "actor"


@dataclass
class NewNote:
    """A note on customer ``customer``; ``body`` mentions users as @e-mail."""

    customer: int
    body: str | None
    problems: Sequence[Problem] = ()


@dataclass
class NoteChange:
    """The new ``body`` of note ``pk``, refused unless it is at
    ``expected_version`` (when given)."""

    pk: int
    body: str | None
    expected_version: int | None = None
    problems: Sequence[Problem] = ()


@dataclass
class NoteDeletion:
    """Note ``pk``, to be deleted (softly: the audit trail keeps naming it)."""

    pk: int
    problems: Sequence[Problem] = ()


@dataclass
class NewTask:
    """A task on customer ``customer`` (or on its need ``need``), assigned to
    the actor unless ``assignee`` is given (None: unassigned)."""

    customer: int
    title: str | None
    need: int | None = None
    description: str | None = None
    due_at: datetime.datetime | None = None
    assignee: int | Literal[Default.ACTOR] | None = Default.ACTOR
    problems: Sequence[Problem] = ()


@dataclass
class TaskChange:
    """Fields to change on task ``pk`` (left out: as they are): ``title``,
    ``description``, ``due_at``, ``status`` (a TaskStatus value) and the
    decoded ``assignee``."""

    pk: int
    fields: Mapping[str, Any]
    expected_version: int | None = None
    problems: Sequence[Problem] = ()


def _user_id(pk: int | None) -> str | None:
    return encode_id("User", pk) if pk is not None else None


def _ids(type_name: str, pks: list[int]) -> list[str]:
    return [encode_id(type_name, pk) for pk in pks]


def note_body(errors: Errors, body: str | None) -> str | None:
    return v.text(errors, "body", body, max_length=NOTE_MAX_LENGTH, required=True)


async def mentioned_users(db: Database, body: str) -> list[int]:
    """The ids of the users ``body`` mentions; an address that is no user is
    refused (a typo would otherwise notify nobody, silently)."""
    emails = teamwork.mentioned_emails(body)
    found = await teamwork.users_by_email(db, emails)
    unknown = [email for email in emails if email not in found]
    if unknown:
        raise UserInputError(
            [
                Problem("body", f"no user has the e-mail address {e} (@{e})", "NOT_FOUND")
                for e in unknown
            ]
        )
    return [found[email] for email in emails]


async def editable_note(db: Database, actor: Actor, pk: int) -> dict[str, Any]:
    """The note a write applies to: not deleted, on a customer the actor may
    see, and theirs unless they hold note.moderate."""
    row = await writes.locked_row(db, "note", pk)
    if row is None or row["deleted_at"] is not None:
        raise UserInputError.single("id", "note not found", "NOT_FOUND")
    await hold_live(db, actor, row["customer"], "id")
    if row["author"] != actor.user_id and not actor.can(NOTE_MODERATE):
        raise UserInputError([forbidden_problem("id", "change another user's note", NOTE_MODERATE)])
    return row


def check_version(row: Mapping[str, Any], expected: int | None, what: str) -> None:
    if expected is not None and row["version"] != expected:
        raise UserInputError.single(
            "expectedVersion",
            f"{what} was changed by someone else since version {expected} (it is now at "
            f"version {row['version']}); reload it and apply your change again",
            "VERSION_CONFLICT",
        )


async def existing_user(db: Database, pk: int | None, field: str) -> None:
    if pk is not None and not await writes.row_exists(db, "crm_user", pk):
        raise UserInputError.single(field, "user not found", "NOT_FOUND")


def task_text(errors: Errors, data: Mapping[str, Any]) -> dict[str, Any]:
    """The title, description and due date among ``data``, checked."""
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


async def add_note(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    new: NewNote,
    *,
    then: Then = nothing,
) -> int:
    """Write a note on a customer, by the actor; the users it mentions are kept."""
    customer = new.customer
    errors = Errors(list(new.problems))
    body = note_body(errors, new.body)

    async def work() -> int:
        await hold_live(db, actor, customer, "customerId")
        mentioned = await mentioned_users(db, body or "")
        at = writes.now()
        author = actor.user_id
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
                "customerId": encode_id("Customer", customer),
                "noteId": encode_id("Note", pk),
                "authorId": _user_id(author),
                "mentionedUserIds": _ids("User", mentioned),
            },
        )
        return pk

    return await run_write(db, actor, work, then, problems=errors.problems)


async def update_note(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    change: NoteChange,
    *,
    then: Then = nothing,
) -> int:
    """Rewrite a note: authors their own, note.moderate any. The event lists
    every mentioned user and those newly mentioned."""
    pk = change.pk
    errors = Errors(list(change.problems))
    body = note_body(errors, change.body)

    async def work() -> int:
        row = await editable_note(db, actor, pk)
        check_version(row, change.expected_version, "note")
        mentioned = await mentioned_users(db, body or "")
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
                "noteId": encode_id("Note", pk),
                "mentionedUserIds": _ids("User", mentioned),
                "newlyMentionedUserIds": _ids("User", [m for m in mentioned if m not in before]),
            },
        )
        return pk

    return await run_write(db, actor, work, then, problems=errors.problems)


async def delete_note(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    deletion: NoteDeletion,
    *,
    then: Then = nothing,
) -> int:
    """Delete a note: authors their own, note.moderate any."""
    pk = deletion.pk

    async def work() -> int:
        row = await editable_note(db, actor, pk)
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
            {"customerId": encode_id("Customer", row["customer"]), "noteId": encode_id("Note", pk)},
        )
        return pk

    return await run_write(db, actor, work, then, problems=list(deletion.problems))


async def task_need(db: Database, need: int | None, customer: int) -> None:
    """A task's need, when given, exists and is one of its customer's."""
    if need is None:
        return
    rows = await db.fetch("SELECT customer FROM need WHERE id = {}", need)
    if not rows:
        raise UserInputError.single("needId", "need not found", "NOT_FOUND")
    if rows[0]["customer"] != customer:
        raise UserInputError.single("needId", "need belongs to another customer", "INVALID")


async def create_task(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    new: NewTask,
    *,
    then: Then = nothing,
) -> int:
    """Create an OPEN task for a customer, or for one of its needs."""
    customer, need = new.customer, new.need
    assignee = actor.user_id if new.assignee is Default.ACTOR else new.assignee
    errors = Errors(list(new.problems))
    values = task_text(
        errors, {"title": new.title, "description": new.description, "due_at": new.due_at}
    )

    async def work() -> int:
        await hold_live(db, actor, customer, "customerId")
        await task_need(db, need, customer)
        await existing_user(db, assignee, ASSIGNEE_PATH)
        at = writes.now()
        row = {
            **values,
            "customer": customer,
            "need": need,
            "assignee": assignee,
            "created_by": actor.user_id,
            "status": "OPEN",
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
                "customerId": encode_id("Customer", customer),
                "taskId": encode_id("Task", pk),
                "needId": encode_id("Need", need) if need is not None else None,
                "assigneeId": _user_id(assignee),
                "dueAt": writes.jsonable(values.get("due_at")),
            },
        )
        return pk

    return await run_write(db, actor, work, then, problems=errors.problems)


def task_values(change: TaskChange) -> tuple[dict[str, Any], list[Problem]]:
    """The columns a task change writes, and the input's problems in the
    order the API reports them (the assignee's ID last)."""
    data = change.fields
    errors = Errors([p for p in change.problems if p.field != ASSIGNEE_PATH])
    for required in ("title", "status"):
        if required in data and data[required] is None:
            errors.add(required, f"{required} cannot be null", "REQUIRED")
    values = task_text(errors, data)
    if "assignee" in data:
        errors.problems.extend(p for p in change.problems if p.field == ASSIGNEE_PATH)
        values["assignee"] = data["assignee"]
    if data.get("status") is not None:
        values["status"] = data["status"]
    return values, errors.problems


async def update_task(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    change: TaskChange,
    *,
    then: Then = nothing,
) -> int:
    """Change a task. Moving it to DONE sets completed_at and writes a
    task.completed event instead of task.updated; a change that alters
    nothing writes nothing."""
    pk = change.pk
    values, problems = task_values(change)

    async def work() -> int:
        current = await writes.locked_row(db, "task", pk)
        if current is None:
            raise UserInputError.single("id", "task not found", "NOT_FOUND")
        await hold_live(db, actor, current["customer"], "id")
        check_version(current, change.expected_version, "task")
        await existing_user(db, values.get("assignee"), ASSIGNEE_PATH)
        changed = dict(values)
        completed = values.get("status") == "DONE" and current["status"] != "DONE"
        if "status" in values and values["status"] != current["status"]:
            # completedAt follows DONE: set on entering it, cleared on leaving it
            changed["completed_at"] = writes.now() if completed else None
        changes = writes.field_changes(
            camel_keys({k: current[k] for k in changed}), camel_keys(changed)
        )
        if changes:
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
                    "taskId": encode_id("Task", pk),
                    "fields": sorted(changes),
                    "status": changed.get("status", current["status"]),
                    "assigneeId": _user_id(changed.get("assignee", current["assignee"])),
                },
            )
        # else nothing differs: no write, no event
        return pk

    return await run_write(db, actor, work, then, problems=problems)
