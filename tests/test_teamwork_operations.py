"""Team work's writes called as plain functions (crmgraph.operations.teamwork),
without GraphQL, on both engines: the note and its mentions, audit entry and
event; who may change a note; a task's default assignee and need; a task
change's problems in the order the API reports them, before any statement;
DONE and completed_at; a change that alters nothing writes nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from crmgraph.db.engine import Database
from crmgraph.ids import encode_id
from crmgraph.operations import customers, needs
from crmgraph.operations import teamwork as ops
from crmgraph.operations.actor import Actor
from crmgraph.validation import Problem, UserInputError
from tests.operations_world import (
    World,
    problems_of,
    world_fixture,  # noqa: F401  (the world fixture)
)


async def new_customer(w: World, actor: Actor, name: str = "Acme") -> int:
    new = customers.NewCustomerInput("client", {"name": name})
    return await customers.create_customer(w.db, w.catalog, w.pm, actor, new)


async def events(db: Database, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """The events of type ``prefix``..., their payloads without the time."""
    found = []
    for row in await db.fetch("SELECT type, payload FROM event ORDER BY id"):
        payload = orjson.loads(row["payload"])
        payload.pop("at")
        if row["type"].startswith(prefix):
            found.append((row["type"], payload))
    return found


async def test_a_note_keeps_its_mentions_and_its_events_name_them(world: World) -> None:
    w = world
    agent, manager, admin = [await w.actor(role) for role in ("agent", "manager", "admin")]
    customer = await new_customer(w, agent)
    new = ops.NewNote(customer, "  Call back, @manager@test.example  ")
    pk = await ops.add_note(w.db, w.catalog, w.pm, agent, new)

    (note,) = await w.db.fetch("SELECT author, body, version FROM note WHERE id = {}", pk)
    assert note == {
        "author": agent.user_id,
        "body": "Call back, @manager@test.example",
        "version": 1,
    }
    mentions = await w.db.fetch("SELECT mentioned FROM note_mention WHERE note = {}", pk)
    assert [m["mentioned"] for m in mentions] == [manager.user_id]
    (audit,) = await w.db.fetch(
        "SELECT by, entity_id FROM audit_entry WHERE action = 'note.created'"
    )
    assert audit == {"by": agent.user_id, "entity_id": pk}

    change = ops.NoteChange(pk, "@manager@test.example and @admin@test.example", 1)
    assert await ops.update_note(w.db, w.catalog, w.pm, agent, change) == pk
    (note,) = await w.db.fetch("SELECT version FROM note WHERE id = {}", pk)
    assert note["version"] == 2
    user = encode_id("User", manager.user_id or 0)
    newcomer = encode_id("User", admin.user_id or 0)
    assert await events(w.db, "note.") == [
        (
            "note.created",
            {
                "customerId": encode_id("Customer", customer),
                "noteId": encode_id("Note", pk),
                "authorId": encode_id("User", agent.user_id or 0),
                "mentionedUserIds": [user],
            },
        ),
        (
            "note.updated",
            {
                "customerId": encode_id("Customer", customer),
                "noteId": encode_id("Note", pk),
                "mentionedUserIds": [user, newcomer],
                "newlyMentionedUserIds": [newcomer],
            },
        ),
    ]


async def test_a_mention_of_no_user_rolls_the_note_back(world: World) -> None:
    agent = await world.actor("agent")
    customer = await new_customer(world, agent)
    new = ops.NewNote(customer, "ask @nobody@test.example")
    with pytest.raises(UserInputError) as refused:
        await ops.add_note(world.db, world.catalog, world.pm, agent, new)
    assert problems_of(refused) == [("body", "NOT_FOUND")]
    assert "nobody@test.example" in refused.value.problems[0].message
    assert await world.db.fetch("SELECT id FROM note") == []
    assert await events(world.db, "note.") == []


async def test_the_author_or_a_moderator_changes_a_note(world: World) -> None:
    w = world
    agent, manager, admin = [await w.actor(role) for role in ("agent", "manager", "admin")]
    customer = await new_customer(w, agent)
    pk = await ops.add_note(w.db, w.catalog, w.pm, agent, ops.NewNote(customer, "mine"))

    # a manager sees every customer but may not rewrite another user's note
    with pytest.raises(UserInputError) as refused:
        await ops.update_note(w.db, w.catalog, w.pm, manager, ops.NoteChange(pk, "theirs"))
    assert problems_of(refused) == [("id", "FORBIDDEN")]
    with pytest.raises(UserInputError) as refused:
        await ops.update_note(w.db, w.catalog, w.pm, agent, ops.NoteChange(pk, "again", 5))
    assert problems_of(refused) == [("expectedVersion", "VERSION_CONFLICT")]
    assert "now at version 1" in refused.value.problems[0].message

    assert await ops.delete_note(w.db, w.catalog, w.pm, admin, ops.NoteDeletion(pk)) == pk
    (note,) = await w.db.fetch("SELECT body, version, deleted_at FROM note WHERE id = {}", pk)
    assert (note["body"], note["version"]) == ("mine", 2)
    assert note["deleted_at"] is not None
    (audit,) = await w.db.fetch("SELECT by, changes FROM audit_entry WHERE action = 'note.deleted'")
    assert audit["by"] == admin.user_id
    assert orjson.loads(audit["changes"]) == {"body": ["mine", None]}
    # a deleted note is no note any more, even to its author
    with pytest.raises(UserInputError) as refused:
        await ops.delete_note(w.db, w.catalog, w.pm, agent, ops.NoteDeletion(pk))
    assert problems_of(refused) == [("id", "NOT_FOUND")]


async def test_a_task_is_the_actors_unless_given_and_its_need_is_its_customers(
    world: World,
) -> None:
    w = world
    agent = await w.actor("agent")
    customer, other = await new_customer(w, agent), await new_customer(w, agent, "Other")
    need = await needs.record_need(
        w.db, w.catalog, w.pm, agent, needs.NewNeed(other, {"title": "A loan"})
    )

    mine = await ops.create_task(w.db, w.catalog, w.pm, agent, ops.NewTask(customer, "Call"))
    nobodys = await ops.create_task(
        w.db, w.catalog, w.pm, agent, ops.NewTask(customer, "Mail", assignee=None)
    )
    rows = await w.db.fetch("SELECT id, assignee, created_by, status FROM task ORDER BY id")
    assert rows == [
        {"id": mine, "assignee": agent.user_id, "created_by": agent.user_id, "status": "OPEN"},
        {"id": nobodys, "assignee": None, "created_by": agent.user_id, "status": "OPEN"},
    ]
    (_, created), _ = await events(w.db, "task.")
    assert created["assigneeId"] == encode_id("User", agent.user_id or 0)

    for task, expected in (
        (ops.NewTask(customer, "X", need=need), [("needId", "INVALID")]),
        (ops.NewTask(customer, "X", need=need + 100), [("needId", "NOT_FOUND")]),
        (ops.NewTask(customer, "X", assignee=10_000), [("assigneeId", "NOT_FOUND")]),
    ):
        with pytest.raises(UserInputError) as refused:
            await ops.create_task(w.db, w.catalog, w.pm, agent, task)
        assert problems_of(refused) == expected
    assert len(await w.db.fetch("SELECT id FROM task")) == 2


async def test_a_task_changes_problems_come_in_the_api_order_before_any_statement(
    world: World,
) -> None:
    agent = await world.actor("agent")
    change = ops.TaskChange(
        0,
        {"title": None, "status": None, "description": "x" * 10_001, "assignee": None},
        # found decoding the IDs: the assignee's is reported after the text fields'
        problems=[
            Problem("assigneeId", "assigneeId: 'u' is not a valid ID", "INVALID_ID"),
            Problem("id", "id: 't' is not a valid ID", "INVALID_ID"),
        ],
    )
    refused = await world.refused(ops.update_task, agent, change)
    assert problems_of(refused) == [
        ("id", "INVALID_ID"),
        ("title", "REQUIRED"),
        ("status", "REQUIRED"),
        ("title", "REQUIRED"),
        ("description", "TOO_LONG"),
        ("assigneeId", "INVALID_ID"),
    ]

    viewer = await world.actor("viewer")
    refused = await world.refused(ops.add_note, viewer, ops.NewNote(1, ""))
    assert problems_of(refused) == [(None, "FORBIDDEN")]


async def test_done_completes_a_task_and_a_change_altering_nothing_writes_nothing(
    world: World,
) -> None:
    w = world
    agent = await w.actor("agent")
    customer = await new_customer(w, agent)
    pk = await ops.create_task(w.db, w.catalog, w.pm, agent, ops.NewTask(customer, "Call"))

    async def change(fields: dict[str, Any], expected_version: int | None = None) -> dict[str, Any]:
        read: list[int] = []

        async def then(written: int) -> None:
            read.append(written)

        task = ops.TaskChange(pk, fields, expected_version)
        assert await ops.update_task(w.db, w.catalog, w.pm, agent, task, then=then) == pk
        assert read == [pk]  # the payload is read even when nothing was written
        (row,) = await w.db.fetch("SELECT status, version, completed_at FROM task")
        return row

    done = await change({"status": "DONE"}, expected_version=1)
    assert (done["status"], done["version"]) == ("DONE", 2)
    assert done["completed_at"] is not None
    assert await change({"status": "DONE", "title": "Call"}) == done
    reopened = await change({"status": "OPEN"})
    assert (reopened["version"], reopened["completed_at"]) == (3, None)
    written = [(kind, payload.get("fields")) for kind, payload in await events(w.db, "task.")]
    assert written == [
        ("task.created", None),
        ("task.completed", ["completedAt", "status"]),
        ("task.updated", ["completedAt", "status"]),
    ]
    with pytest.raises(UserInputError) as refused:
        await change({"title": "Later"}, expected_version=2)
    assert problems_of(refused) == [("expectedVersion", "VERSION_CONFLICT")]
