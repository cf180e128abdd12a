"""Roles over every path to a record: lists, node(id:), nested fields and
mutations, plus the guarded fields plugins declare (employee pay, a contact's
personal profile), on both engines, through real API keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from crmgraph.schema.ids import encode_id
from crmgraph.testing import live_server, settings_for
from tests.helpers import Caller, people_and_red

ROLES = ("admin", "manager", "agent", "viewer")


@dataclass
class World:
    callers: dict[str, Caller]
    users: dict[str, int]
    ids: dict[str, str]


def setup_users(database_url: str) -> tuple[dict[str, str], dict[str, int], int]:
    """Users (one per role, a second agent outside any team), the team Red
    holding the first agent, and a key for each."""
    people = {**{r: r for r in ROLES}, "loner": "agent"}
    return people_and_red(database_url, people, "roles.example")


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    """Customers: one the agent owns, one of the agent's team, one neither;
    an employee with pay the agent owns; a contact with a personal profile."""
    keys, users, red = setup_users(database_url)
    with live_server(settings_for(database_url, anonymous=False)) as server:
        callers = {name: Caller(server, key) for name, key in keys.items()}
        admin = callers["admin"]
        manager_id = encode_id("User", users["manager"])
        agent_id = encode_id("User", users["agent"])
        ids: dict[str, str] = {"red": encode_id("Team", red)}
        for label, owner, team in (
            ("own", agent_id, None),
            ("shared", manager_id, ids["red"]),
            ("other", manager_id, None),
        ):
            made = admin.mutate(
                "createCustomer",
                {"kind": "CLIENT", "name": f"Client {label}", "ownerId": owner, "teamId": team},
                "customer { id }",
            )
            assert made["userErrors"] == []
            ids[label] = made["customer"]["id"]
        employee = admin.mutate(
            "createCustomer",
            {
                "kind": "EMPLOYEE",
                "name": "Eve Employee",
                "ownerId": agent_id,
                "employee": {"salary": "50000", "bonusTarget": "5000"},
            },
            "customer { id }",
        )
        assert employee["userErrors"] == []
        ids["employee"] = employee["customer"]["id"]
        contact = admin.mutate(
            "addContact",
            {
                "customerId": ids["own"],
                "name": "Pat",
                "birthday": "1980-02-03",
                "homeAddress": "1 Home St",
            },
            "contact { id }",
        )
        assert contact["userErrors"] == []
        ids["contact"] = contact["contact"]["id"]
        for label in ("own", "other"):
            logged = admin.mutate(
                "logInteraction",
                {
                    "customerId": ids[label],
                    "channel": "EMAIL",
                    "direction": "INBOUND",
                    "subject": "hi",
                },
                "interaction { id }",
            )
            ids[f"{label}_interaction"] = logged["interaction"]["id"]
        link = admin.mutate(
            "linkCustomers",
            {"fromId": ids["own"], "toId": ids["other"], "kind": "refers"},
            "relationship { id }",
        )
        ids["link"] = link["relationship"]["id"]
        yield World(callers, users, ids)


LIST = "{ customers(first: 50) { totalCount nodes { id name } } }"


def listed(caller: Caller) -> set[str]:
    page = caller.data(LIST)["customers"]
    assert page["totalCount"] == len(page["nodes"])
    return {n["id"] for n in page["nodes"]}


def test_agents_see_and_change_only_their_own_and_their_teams_customers(world: World) -> None:
    ids, agent, loner = world.ids, world.callers["agent"], world.callers["loner"]
    visible = {ids["own"], ids["shared"], ids["employee"]}
    assert listed(agent) == visible
    assert listed(loner) == set()
    for role in ("admin", "manager", "viewer"):
        assert listed(world.callers[role]) == visible | {ids["other"]}

    # node, customer, nodes: the other customer and what hangs off it are absent
    node = "query($id: ID!) { node(id: $id) { id } }"
    for hidden in ("other", "other_interaction"):
        assert agent.data(node, {"id": ids[hidden]})["node"] is None
        assert world.callers["manager"].data(node, {"id": ids[hidden]})["node"] is not None
    for seen in ("own", "contact", "own_interaction", "link"):  # the link: one party is visible
        assert agent.data(node, {"id": ids[seen]})["node"] == {"id": ids[seen]}
    assert loner.data(node, {"id": ids["link"]})["node"] is None
    assert agent.data("query($id: ID!) { customer(id: $id) { id } }", {"id": ids["other"]}) == {
        "customer": None
    }
    nodes = agent.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [ids["own"], ids["other"]]}
    )["nodes"]
    assert nodes == [{"id": ids["own"]}, None]

    # nested: the relationship's far end is hidden from the agent, shown to a manager
    nested = """query($id: ID!) { customer(id: $id) { relationships {
        fromCustomer { id } toCustomer { id } } } }"""
    rel = agent.data(nested, {"id": ids["own"]})["customer"]["relationships"][0]
    assert rel == {"fromCustomer": {"id": ids["own"]}, "toCustomer": None}
    rel = world.callers["manager"].data(nested, {"id": ids["own"]})["customer"]["relationships"][0]
    assert rel["toCustomer"] == {"id": ids["other"]}

    # mutations on a hidden customer answer as if it did not exist
    update = {"id": ids["other"], "expectedVersion": 1, "name": "Taken"}
    refused = agent.mutate("updateCustomer", update, "customer { id }")
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]
    refused = agent.mutate(
        "logInteraction",
        {"customerId": ids["other"], "channel": "PHONE", "direction": "OUTBOUND", "subject": "x"},
        "interaction { id }",
    )
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]
    name = "query($id: ID!) { node(id: $id) { ... on Customer { name version } } }"
    assert world.callers["admin"].data(name, {"id": ids["other"]})["node"] == {
        "name": "Client other",
        "version": 1,
    }
    for label in ("own", "shared"):
        done = agent.mutate(
            "updateCustomer",
            {"id": ids[label], "expectedVersion": 1, "name": f"Renamed {label}"},
            "customer { name }",
        )
        assert done["userErrors"] == [] and done["customer"]["name"] == f"Renamed {label}"

    # what an agent creates is theirs; giving it away needs customer.assign
    mine = agent.mutate(
        "createCustomer",
        {"kind": "PROSPECT", "name": "New lead"},
        "customer { id owner { id } }",
    )
    assert mine["customer"]["owner"]["id"] == encode_id("User", world.users["agent"])
    assert mine["customer"]["id"] in listed(agent)
    given = agent.mutate(
        "createCustomer",
        {
            "kind": "PROSPECT",
            "name": "Gift",
            "ownerId": encode_id("User", world.users["manager"]),
        },
        "customer { id }",
    )
    assert [(e["field"], e["code"]) for e in given["userErrors"]] == [("ownerId", "FORBIDDEN")]
    to_team = agent.mutate(
        "createCustomer",
        {"kind": "PROSPECT", "name": "Team lead", "teamId": ids["red"]},
        "customer { team { name } }",
    )
    assert to_team["userErrors"] == [] and to_team["customer"]["team"] == {"name": "Red"}
    deleted = agent.mutate("deleteCustomer", {"id": ids["own"]}, "customer { id }")
    assert [e["code"] for e in deleted["userErrors"]] == ["FORBIDDEN"]

    # audit trail: theirs with the actor named, nothing of the hidden customer
    trail = """query($id: ID!) { auditTrail(customerId: $id) { edges { node {
        action byId } } } }"""
    entries = [e["node"] for e in agent.data(trail, {"id": ids["own"]})["auditTrail"]["edges"]]
    assert entries[0] == {
        "action": "customer.updated",
        "byId": encode_id("User", world.users["agent"]),
    }
    assert entries[-1]["byId"] == encode_id("User", world.users["admin"])
    assert agent.data(trail, {"id": ids["other"]})["auditTrail"]["edges"] == []


def test_viewers_read_everything_and_change_nothing(world: World) -> None:
    viewer, ids = world.callers["viewer"], world.ids
    before = world.callers["admin"].data(LIST)["customers"]
    attempts = [
        ("createCustomer", {"kind": "CLIENT", "name": "No"}),
        ("updateCustomer", {"id": ids["own"], "expectedVersion": 1}),
        ("deleteCustomer", {"id": ids["own"]}),
        ("addContact", {"customerId": ids["own"], "name": "No"}),
        (
            "logInteraction",
            {"customerId": ids["own"], "channel": "EMAIL", "direction": "INBOUND", "subject": "x"},
        ),
        ("recordNeed", {"customerId": ids["own"], "title": "No"}),
        (
            "transitionCustomer",
            {"id": ids["own"], "toStage": "active", "expectedVersion": 1},
        ),
        ("unlinkCustomers", {"id": ids["link"]}),
    ]
    for name, values in attempts:
        payload = viewer.mutate(name, values)
        assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"], name
        needed = "customer.delete" if name == "deleteCustomer" else "customer.write"
        assert needed in payload["userErrors"][0]["message"]
    assert world.callers["admin"].data(LIST)["customers"] == before  # nothing written
    audit = viewer.post('query($id: ID!) { auditTrail(customerId: $id) { edges { cursor } } }',
                        {"id": ids["own"]})  # fmt: skip
    assert audit["errors"][0]["extensions"] == {"code": "FORBIDDEN", "permissions": ["audit.read"]}
    me = viewer.data("{ viewer { role permissions } }")["viewer"]
    assert me == {"role": "viewer", "permissions": ["customer.read_all"]}


PAY = """query($id: ID!) { node(id: $id) { ... on Employee { name salary bonusTarget } } }"""
PAY_IN_LIST = "{ customers(first: 10) { nodes { name ... on Employee { salary } } } }"
PROFILE = """query($id: ID!) { customer(id: $id) { contacts { name birthday homeAddress } } }"""


def test_guarded_fields_need_their_permission_on_every_path(world: World) -> None:
    ids = world.ids
    for role in ("agent", "viewer"):
        caller = world.callers[role]
        for query, variables in ((PAY, {"id": ids["employee"]}), (PAY_IN_LIST, None)):
            body = caller.post(query, variables)
            assert body["data"] is None
            error = body["errors"][0]
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert error["extensions"]["permissions"] == ["employee.read_pay"]
            assert "Employee.salary" in error["message"]
        body = caller.post(PROFILE, {"id": ids["own"]})
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["fields"] == [
            "Contact.birthday",
            "Contact.homeAddress",
        ]
        # the rest of the record stays readable
        assert caller.data("query($id: ID!) { node(id: $id) { ... on Employee { name } } }",
                           {"id": ids["employee"]})["node"] == {"name": "Eve Employee"}  # fmt: skip
    for role in ("admin", "manager"):
        caller = world.callers[role]
        pay = caller.data(PAY, {"id": ids["employee"]})["node"]
        assert (pay["salary"], pay["bonusTarget"]) == ("50000", "5000")
        contacts = caller.data(PROFILE, {"id": ids["own"]})["customer"]["contacts"]
        assert contacts == [{"name": "Pat", "birthday": "1980-02-03", "homeAddress": "1 Home St"}]

    # writing a guarded field needs the permission too; nothing is written
    agent = world.callers["agent"]
    raise_pay = {"id": ids["employee"], "expectedVersion": 1, "employee": {"salary": "90000"}}
    refused = agent.mutate("updateCustomer", raise_pay, "customer { id }")
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        ("employee.salary", "FORBIDDEN")
    ]
    profile = {"id": ids["contact"], "birthday": "1990-01-01"}
    refused = agent.mutate("updateContact", profile, "contact { id }")
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [("birthday", "FORBIDDEN")]
    manager = world.callers["manager"]
    assert manager.data(PAY, {"id": ids["employee"]})["node"]["salary"] == "50000"
    assert manager.data(PROFILE, {"id": ids["own"]})["customer"]["contacts"][0]["birthday"] == (
        "1980-02-03"
    )
    # an agent may change the unguarded attributes of the same record
    title = {"id": ids["employee"], "expectedVersion": 1, "employee": {"jobTitle": "Lead"}}
    done = agent.mutate("updateCustomer", title, "customer { version }")
    assert done["userErrors"] == [] and done["customer"]["version"] == 2

    # the audit trail shows an agent that pay changed, not the amounts
    trail = """query($id: ID!) { auditTrail(customerId: $id) { edges { node {
        action changes { field old new redacted } } } } }"""
    created = next(
        e["node"]
        for e in agent.data(trail, {"id": ids["employee"]})["auditTrail"]["edges"]
        if e["node"]["action"] == "customer.created"
    )
    salary = next(c for c in created["changes"] if c["field"] == "employee.salary")
    assert salary == {"field": "employee.salary", "old": None, "new": None, "redacted": True}
    created = next(
        e["node"]
        for e in manager.data(trail, {"id": ids["employee"]})["auditTrail"]["edges"]
        if e["node"]["action"] == "customer.created"
    )
    salary = next(c for c in created["changes"] if c["field"] == "employee.salary")
    assert salary["new"] == "50000" and salary["redacted"] is False
