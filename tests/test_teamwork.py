"""Team work on both engines: assignment, notes with mentions, tasks and
myTasks, and the customer timeline (exact order across every kind, keyset
pages, statement counts), all under the caller's row scope, through real API
keys."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.db import writes
from crmgraph.schema.ids import encode_id
from crmgraph.testing import live_server, settings_for
from crmgraph.validation import UserInputError
from tests.helpers import Caller, insert_customer, people_and_red

UTC = datetime.UTC
PEOPLE = {  # name -> role; the agent is in team Red, the loner in none
    "admin": "admin",
    "manager": "manager",
    "agent": "agent",
    "loner": "agent",
    "viewer": "viewer",
}


@dataclass
class World:
    url: str
    callers: dict[str, Caller]
    users: dict[str, str]  # name -> global ID
    ids: dict[str, str]

    def sql(self, query: str, *args: Any) -> list[dict[str, Any]]:
        async def run(state: AppState) -> list[dict[str, Any]]:
            return await state.db.fetch(query, *args)

        return asyncio.run(with_state(settings_for(self.url), run))

    def count(self, table: str) -> int:
        return self.sql(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        rows = self.sql("SELECT payload FROM event WHERE type = {} ORDER BY id", event_type)
        return [
            json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]
            for r in rows
        ]


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    """Customers: ``own`` (the agent's), ``shared`` (team Red's), ``other``
    (the manager's, invisible to the agent); a need on ``own`` and one on ``other``."""
    keys, pks, red = people_and_red(database_url, PEOPLE, "team.example")
    with live_server(settings_for(database_url, anonymous=False)) as server:
        callers = {name: Caller(server, key) for name, key in keys.items()}
        users = {name: encode_id("User", pk) for name, pk in pks.items()}
        ids = {"red": encode_id("Team", red)}
        for label, owner, team in (
            ("own", users["agent"], None),
            ("shared", users["manager"], ids["red"]),
            ("other", users["manager"], None),
        ):
            made = callers["admin"].mutate(
                "createCustomer",
                {"kind": "CLIENT", "name": f"Client {label}", "ownerId": owner, "teamId": team},
                "customer { id }",
            )
            ids[label] = made["customer"]["id"]
        for label in ("own", "other"):
            need = callers["admin"].mutate(
                "recordNeed", {"customerId": ids[label], "title": "Supply"}, "need { id }"
            )
            ids[f"{label}_need"] = need["need"]["id"]
        yield World(database_url, callers, users, ids)


NOTE = "note { id body version author { name } mentions { name email } }"
TASK = "task { id title status dueAt completedAt needId version assignee { name } }"
NODE = "query($id: ID!) { node(id: $id) { id } }"


def codes(payload: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


def test_assign_customer(world: World) -> None:
    manager, agent, viewer = (world.callers[n] for n in ("manager", "agent", "viewer"))
    out = "customer { id version owner { name } team { name } }"
    given = manager.mutate(
        "assignCustomer",
        {"customerId": world.ids["other"], "ownerId": world.users["agent"], "reason": "cover"},
        out,
    )
    assert given["userErrors"] == []
    assert given["customer"]["owner"] == {"name": "Agent"}
    assert given["customer"]["version"] == 2
    assert agent.data(NODE, {"id": world.ids["other"]})["node"] == {"id": world.ids["other"]}
    (event,) = world.events("customer.assigned")
    assert {k: event[k] for k in ("ownerId", "previousOwnerId", "teamId", "reason")} == {
        "ownerId": world.users["agent"],
        "previousOwnerId": world.users["manager"],
        "teamId": None,
        "reason": "cover",
    }
    (audit,) = world.sql(
        "SELECT changes FROM audit_entry WHERE action = 'customer.assigned'"
    )  # the trail keeps who had it and why
    assert "owner" in str(audit["changes"]) and "cover" in str(audit["changes"])

    # without customer.assign: only to yourself and your teams
    refused = agent.mutate(
        "assignCustomer", {"customerId": world.ids["own"], "ownerId": world.users["loner"]}, out
    )
    assert codes(refused) == [("ownerId", "FORBIDDEN")]
    to_team = agent.mutate(
        "assignCustomer", {"customerId": world.ids["own"], "teamId": world.ids["red"]}, out
    )
    assert to_team["userErrors"] == [] and to_team["customer"]["team"] == {"name": "Red"}
    assert codes(
        manager.mutate(
            "assignCustomer",
            {"customerId": world.ids["own"], "ownerId": encode_id("User", 99999)},
            out,
        )
    ) == [("ownerId", "NOT_FOUND")]
    assert codes(manager.mutate("assignCustomer", {"customerId": world.ids["own"]}, out)) == [
        (None, "REQUIRED")
    ]
    stale = manager.mutate(
        "assignCustomer",
        {"customerId": world.ids["own"], "teamId": None, "expectedVersion": 1},
        out,
    )
    assert codes(stale) == [("expectedVersion", "VERSION_CONFLICT")]
    assert codes(
        viewer.mutate("assignCustomer", {"customerId": world.ids["own"], "teamId": None}, out)
    ) == [(None, "FORBIDDEN")]
    assert len(world.events("customer.assigned")) == 2


def test_notes_with_mentions(world: World) -> None:
    agent, manager, admin = (world.callers[n] for n in ("agent", "manager", "admin"))
    body = "Call back Monday, @Manager@team.example and @loner@team.example. Not bob@x.com"
    added = agent.mutate("addNote", {"customerId": world.ids["own"], "body": body}, NOTE)
    assert added["userErrors"] == []
    note = added["note"]
    assert note["author"] == {"name": "Agent"}
    assert note["mentions"] == [
        {"name": "Loner", "email": "loner@team.example"},
        {"name": "Manager", "email": "manager@team.example"},
    ]
    (event,) = world.events("note.created")
    assert event["noteId"] == note["id"]
    assert event["authorId"] == world.users["agent"]
    assert event["mentionedUserIds"] == [world.users["manager"], world.users["loner"]]

    # bad input: every problem a userError, nothing written
    before = (world.count("note"), world.count("event"), world.count("audit_entry"))
    for values, expected in (
        ({"customerId": world.ids["own"], "body": "  "}, [("body", "REQUIRED")]),
        (
            {"customerId": world.ids["own"], "body": "hi @nobody@team.example"},
            [("body", "NOT_FOUND")],
        ),
        ({"customerId": encode_id("Customer", 99999), "body": "hi"}, [("customerId", "NOT_FOUND")]),
        ({"customerId": "junk", "body": "hi"}, [("customerId", "INVALID_ID")]),
    ):
        assert codes(agent.mutate("addNote", values, NOTE)) == expected
    assert (world.count("note"), world.count("event"), world.count("audit_entry")) == before

    # authors edit their own; others need note.moderate (admins hold every permission)
    edit = {"id": note["id"], "body": "Done, thanks @admin@team.example @loner@team.example"}
    assert codes(manager.mutate("updateNote", edit, NOTE)) == [("id", "FORBIDDEN")]
    stale = agent.mutate("updateNote", {**edit, "expectedVersion": 7}, NOTE)
    assert codes(stale) == [("expectedVersion", "VERSION_CONFLICT")]
    edited = agent.mutate("updateNote", {**edit, "expectedVersion": 1}, NOTE)["note"]
    assert edited["version"] == 2
    assert [m["name"] for m in edited["mentions"]] == ["Admin", "Loner"]
    (updated,) = world.events("note.updated")
    assert updated["newlyMentionedUserIds"] == [world.users["admin"]]
    moderated = admin.mutate("updateNote", {"id": note["id"], "body": "moderated"}, NOTE)
    assert moderated["note"]["mentions"] == [] and moderated["note"]["author"] == {"name": "Agent"}

    notes = "query($id: ID!) { customer(id: $id) { notes { nodes { id body } } } }"
    assert agent.data(notes, {"id": world.ids["own"]})["customer"]["notes"]["nodes"] == [
        {"id": note["id"], "body": "moderated"}
    ]
    assert codes(manager.mutate("deleteNote", {"id": note["id"]}, "deletedId")) == [
        ("id", "FORBIDDEN")
    ]
    deleted = agent.mutate("deleteNote", {"id": note["id"]}, "deletedId")
    assert deleted == {"deletedId": note["id"], "userErrors": []}
    assert agent.data(NODE, {"id": note["id"]})["node"] is None
    assert agent.data(notes, {"id": world.ids["own"]})["customer"]["notes"]["nodes"] == []
    assert codes(agent.mutate("updateNote", edit, NOTE)) == [("id", "NOT_FOUND")]
    assert [e["noteId"] for e in world.events("note.deleted")] == [note["id"]]


def test_task_lifecycle_and_my_tasks(world: World) -> None:
    agent, admin = world.callers["agent"], world.callers["admin"]
    own, need = world.ids["own"], world.ids["own_need"]
    first = agent.mutate(
        "createTask",
        {"customerId": own, "needId": need, "title": "Send quote", "dueAt": "2030-01-02T10:00:00Z"},
        TASK,
    )
    assert first["userErrors"] == []
    task = first["task"]
    assert task["assignee"] == {"name": "Agent"}  # the caller, unless told otherwise
    assert (task["status"], task["needId"], task["completedAt"]) == ("OPEN", need, None)
    (created,) = world.events("task.created")
    assert created["assigneeId"] == world.users["agent"] and created["needId"] == need

    for values, expected in (
        (
            {"customerId": own, "title": "x", "needId": world.ids["other_need"]},
            [("needId", "INVALID")],
        ),
        (
            {"customerId": own, "title": "x", "assigneeId": encode_id("User", 99999)},
            [("assigneeId", "NOT_FOUND")],
        ),
        ({"customerId": own, "title": " "}, [("title", "REQUIRED")]),
        ({"customerId": world.ids["other"], "title": "x"}, [("customerId", "NOT_FOUND")]),
    ):
        assert codes(agent.mutate("createTask", values, TASK)) == expected
    assert world.count("task") == 1

    later = agent.mutate(
        "createTask", {"customerId": own, "title": "Visit", "dueAt": "2030-03-01T00:00:00Z"}, TASK
    )
    undated = agent.mutate(
        "createTask", {"customerId": world.ids["shared"], "title": "Read up"}, TASK
    )
    unassigned = agent.mutate(
        "createTask", {"customerId": own, "title": "Anyone", "assigneeId": None}, TASK
    )
    assert unassigned["task"]["assignee"] is None
    # assigned to the agent on a customer they cannot see: never listed for them
    admin.mutate(
        "createTask",
        {"customerId": world.ids["other"], "title": "Hidden", "assigneeId": world.users["agent"]},
        TASK,
    )

    moved = agent.mutate(
        "updateTask", {"id": task["id"], "status": "IN_PROGRESS", "expectedVersion": 1}, TASK
    )
    assert moved["task"]["status"] == "IN_PROGRESS" and moved["task"]["version"] == 2
    done = agent.mutate("updateTask", {"id": task["id"], "status": "DONE"}, TASK)["task"]
    assert done["status"] == "DONE" and done["completedAt"] is not None
    assert [e["status"] for e in world.events("task.updated")] == ["IN_PROGRESS"]
    (completed,) = world.events("task.completed")
    assert completed["taskId"] == task["id"] and "completedAt" in completed["fields"]
    reopened = agent.mutate(
        "updateTask", {"id": task["id"], "status": "OPEN", "title": "Quote v2"}, TASK
    )["task"]
    assert (reopened["status"], reopened["completedAt"], reopened["title"]) == (
        "OPEN",
        None,
        "Quote v2",
    )
    assert codes(agent.mutate("updateTask", {"id": task["id"], "status": None}, TASK)) == [
        ("status", "REQUIRED")
    ]
    assert codes(
        agent.mutate("updateTask", {"id": task["id"], "expectedVersion": 1, "title": "x"}, TASK)
    ) == [("expectedVersion", "VERSION_CONFLICT")]
    reassigned = agent.mutate(
        "updateTask", {"id": later["task"]["id"], "assigneeId": world.users["loner"]}, TASK
    )
    assert reassigned["task"]["assignee"] == {"name": "Loner"}
    agent.mutate(
        "updateTask", {"id": later["task"]["id"], "assigneeId": world.users["agent"]}, TASK
    )

    mine = """query($status: [TaskStatus!], $due: DateTime, $first: Int, $after: String) {
      myTasks(status: $status, dueBefore: $due, first: $first, after: $after) {
        nodes { title } pageInfo { hasNextPage endCursor } } }"""

    def titles(**variables: Any) -> list[str]:
        return [n["title"] for n in agent.data(mine, variables)["myTasks"]["nodes"]]

    assert titles() == ["Quote v2", "Visit", "Read up"]  # soonest due first, undated last
    assert titles(due="2030-02-01T00:00:00Z") == ["Quote v2"]
    agent.mutate("updateTask", {"id": undated["task"]["id"], "status": "CANCELLED"}, TASK)
    assert titles() == ["Quote v2", "Visit"]
    assert titles(status=["CANCELLED", "DONE"]) == ["Read up"]
    seen, after = [], None
    while True:
        page = agent.data(mine, {"first": 1, "after": after, "status": ["OPEN", "CANCELLED"]})[
            "myTasks"
        ]
        seen += [n["title"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["Quote v2", "Visit", "Read up"]

    nested = """query($id: ID!) { customer(id: $id) {
      tasks(status: [OPEN]) { nodes { title } }
      all: tasks(first: 1) { nodes { title } pageInfo { hasNextPage } }
      needs { title tasks { title status } } } }"""
    customer = agent.data(nested, {"id": own})["customer"]
    assert [n["title"] for n in customer["tasks"]["nodes"]] == ["Anyone", "Visit", "Quote v2"]
    assert customer["all"] == {"nodes": [{"title": "Anyone"}], "pageInfo": {"hasNextPage": True}}
    assert customer["needs"] == [
        {"title": "Supply", "tasks": [{"title": "Quote v2", "status": "OPEN"}]}
    ]


def test_row_scope(world: World) -> None:
    """An agent reaches no note, task or timeline of a customer they cannot
    see, by any path; a team's customer is theirs to work on."""
    agent, admin = world.callers["agent"], world.callers["admin"]
    hidden_note = admin.mutate(
        "addNote", {"customerId": world.ids["other"], "body": "secret"}, NOTE
    )["note"]
    hidden_task = admin.mutate(
        "createTask", {"customerId": world.ids["other"], "title": "secret"}, TASK
    )["task"]
    for global_id in (hidden_note["id"], hidden_task["id"]):
        assert agent.data(NODE, {"id": global_id})["node"] is None
        assert admin.data(NODE, {"id": global_id})["node"] == {"id": global_id}
    query = "query($id: ID!) { customer(id: $id) { timeline { nodes { kind } } notes { nodes { id } } } }"
    assert agent.data(query, {"id": world.ids["other"]})["customer"] is None
    assert codes(
        agent.mutate("addNote", {"customerId": world.ids["other"], "body": "x"}, NOTE)
    ) == [("customerId", "NOT_FOUND")]
    assert codes(agent.mutate("updateNote", {"id": hidden_note["id"], "body": "x"}, NOTE)) == [
        ("id", "NOT_FOUND")
    ]
    assert codes(agent.mutate("deleteNote", {"id": hidden_note["id"]})) == [("id", "NOT_FOUND")]
    assert codes(agent.mutate("updateTask", {"id": hidden_task["id"], "title": "x"}, TASK)) == [
        ("id", "NOT_FOUND")
    ]

    shared = agent.mutate("addNote", {"customerId": world.ids["shared"], "body": "team note"}, NOTE)
    assert shared["userErrors"] == []
    page = agent.data(query, {"id": world.ids["shared"]})["customer"]
    assert page["notes"]["nodes"] == [{"id": shared["note"]["id"]}]
    assert "NOTE" in [n["kind"] for n in page["timeline"]["nodes"]]


def test_writes_roll_back_with_their_events(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The note, its mentions, its audit entry and its event commit together:
    a failure at the last step (the outbox) leaves none of them."""
    agent = world.callers["agent"]
    tables = ("note", "note_mention", "task", "audit_entry", "event")
    before = {t: world.count(t) for t in tables}

    async def failing_outbox(*args: Any, **kwargs: Any) -> None:
        raise UserInputError.single(None, "outbox refused", "INVALID")

    monkeypatch.setattr(writes, "outbox", failing_outbox)
    failed = agent.mutate(
        "addNote", {"customerId": world.ids["own"], "body": "hi @admin@team.example"}, NOTE
    )
    assert codes(failed) == [(None, "INVALID")] and failed["note"] is None
    assert codes(
        agent.mutate("createTask", {"customerId": world.ids["own"], "title": "t"}, TASK)
    ) == [(None, "INVALID")]
    assert {t: world.count(t) for t in tables} == before
    monkeypatch.undo()
    assert (
        agent.mutate(
            "addNote", {"customerId": world.ids["own"], "body": "hi @admin@team.example"}, NOTE
        )["userErrors"]
        == []
    )
    assert {t: world.count(t) - before[t] for t in tables} == {
        "note": 1, "note_mention": 1, "task": 0, "audit_entry": 1, "event": 1,
    }  # fmt: skip


TIMELINE = """query($id: ID!, $first: Int, $after: String, $kinds: [TimelineKind!]) {
  customer(id: $id) { timeline(first: $first, after: $after, kinds: $kinds) {
    edges { cursor node { at kind record {
      __typename
      ... on Interaction { subject }
      ... on Note { body mentions { name } }
      ... on Task { title }
      ... on StageChange { toStage }
      ... on AuditEntry { action }
    } } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  } } }"""


def seed_timeline(world: World, name: str) -> tuple[int, list[tuple[str, str]]]:
    """A customer owned by the agent with one record of every kind at chosen
    times, ties included; returns its pk and the exact newest-first order as
    (kind, label) — (at DESC, kind ASC, id DESC)."""
    t = [
        datetime.datetime(2025, 1, 1, 9, 0, tzinfo=UTC) + datetime.timedelta(hours=h)
        for h in range(6)
    ]
    agent_pk = world.sql("SELECT id FROM crm_user WHERE email = 'agent@team.example'")[0]["id"]
    admin_pk = world.sql("SELECT id FROM crm_user WHERE email = 'admin@team.example'")[0]["id"]

    async def run(state: AppState) -> int:
        db = state.db
        pk = await insert_customer(
            state,
            name,
            t[0],
            [("client", "lead", t[0]), ("client", "active", t[4])],
            owner=agent_pk,
        )

        async def interaction(subject: str, at: datetime.datetime) -> None:
            await writes.insert(db, "interaction", {
                "customer": pk, "channel": "EMAIL", "direction": "INBOUND", "occurred_at": at,
                "subject": subject, "created_at": at,
            })  # fmt: skip

        await interaction("first mail", t[1])
        await writes.insert(db, "task", {
            "customer": pk, "title": "tie with the note", "status": "OPEN", "version": 1,
            "created_at": t[2], "updated_at": t[2],
        })  # fmt: skip
        note = await writes.insert(db, "note", {
            "customer": pk, "author": agent_pk, "body": "tie with the task", "version": 1,
            "created_at": t[2], "updated_at": t[2],
        })  # fmt: skip
        await writes.insert(db, "note_mention", {"note": note, "mentioned": admin_pk})
        await interaction("older id", t[3])
        await interaction("newer id", t[3])
        await writes.insert(db, "audit_entry", {
            "at": t[3], "action": "customer.updated", "entity_type": "Customer",
            "entity_id": pk, "customer": pk, "changes": "{}",
        })  # fmt: skip
        await writes.insert(db, "note", {
            "customer": pk, "author": agent_pk, "body": "deleted", "version": 2,
            "created_at": t[5], "updated_at": t[5], "deleted_at": t[5],
        })  # fmt: skip
        return pk

    pk = asyncio.run(with_state(settings_for(world.url), run))
    order = [
        ("STAGE_CHANGE", "active"),
        ("AUDIT", "customer.updated"),
        ("INTERACTION", "newer id"),
        ("INTERACTION", "older id"),
        ("NOTE", "tie with the task"),
        ("TASK", "tie with the note"),
        ("INTERACTION", "first mail"),
        ("STAGE_CHANGE", "lead"),
    ]
    return pk, order


def label(node: dict[str, Any]) -> tuple[str, str]:
    record = node["record"]
    value = next(v for k, v in record.items() if k not in ("__typename", "mentions"))
    return node["kind"], value


def test_timeline_order_pagination_and_permissions(world: World) -> None:
    agent, viewer = world.callers["agent"], world.callers["viewer"]
    pk, order = seed_timeline(world, "Timeline Co")
    cid = encode_id("Customer", pk)

    everything = agent.data(TIMELINE, {"id": cid, "first": 20})["customer"]["timeline"]
    assert [label(e["node"]) for e in everything["edges"]] == order
    assert everything["pageInfo"] == {
        "hasNextPage": False, "hasPreviousPage": False, "endCursor": everything["edges"][-1]["cursor"],
    }  # fmt: skip
    first = everything["edges"][0]["node"]
    assert (
        first["at"].startswith("2025-01-01T13:00:00")
        and first["record"]["__typename"] == "StageChange"
    )
    note = next(e["node"]["record"] for e in everything["edges"] if e["node"]["kind"] == "NOTE")
    assert note["mentions"] == [{"name": "Admin"}]

    for size in (1, 3):
        seen, after, pages = [], None, 0
        while True:
            page = agent.data(TIMELINE, {"id": cid, "first": size, "after": after})["customer"][
                "timeline"
            ]
            pages += 1
            seen += [label(e["node"]) for e in page["edges"]]
            assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == order and pages == -(-len(order) // size)

    only = agent.data(TIMELINE, {"id": cid, "kinds": ["TASK", "NOTE"]})["customer"]["timeline"]
    assert [label(e["node"]) for e in only["edges"]] == [
        o for o in order if o[0] in ("NOTE", "TASK")
    ]

    # audit entries only for audit.read: left out by default, refused when asked for
    without = viewer.data(TIMELINE, {"id": cid})["customer"]["timeline"]
    assert [label(e["node"]) for e in without["edges"]] == [o for o in order if o[0] != "AUDIT"]
    refused = viewer.post(TIMELINE, {"id": cid, "kinds": ["AUDIT"]})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad = agent.post(TIMELINE, {"id": cid, "after": "bm90IGEgY3Vyc29y"})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


def statements(caller: Caller, query: str, variables: dict[str, Any]) -> int:
    body = caller.post(query, variables)
    assert not body.get("errors"), body["errors"]
    return body["extensions"]["sqlStatements"]


def test_timeline_costs_a_fixed_number_of_statements(world: World) -> None:
    agent = world.callers["agent"]
    for n in range(3):
        seed_timeline(world, f"Batch {n}")
    query = """query($first: Int) { customers(first: $first, filter: {search: "Batch"}) {
      nodes { name
        timeline(first: 8) { nodes { kind record { __typename
          ... on Note { body mentions { name } } ... on Task { title }
          ... on Interaction { subject } ... on StageChange { toStage } ... on AuditEntry { action }
        } } }
        notes { nodes { body } }
        tasks { nodes { title } }
      } } }"""
    one = statements(agent, query, {"first": 1})
    three = statements(agent, query, {"first": 3})
    # customers, timeline keys, one per kind of record (5), mentions, notes, tasks
    assert one == three == 10
    page = agent.data(query, {"first": 3})["customers"]["nodes"]
    assert all(len(c["timeline"]["nodes"]) == 8 for c in page)
