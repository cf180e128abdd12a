"""Merges and guarded attributes, on both engines through a real server: a
merge whose outcome changes a guarded attribute of the survivor (an
employee's ``salary``, guarded by ``employee.read_pay``) needs that
permission, as ``updateCustomer`` does, whether the value comes by a field
choice, by filling the survivor's gap or with a role the survivor gains;
without it the merge (and its dry run) is refused with FORBIDDEN and writes
nothing. Values the survivor keeps need nothing. The undo of such a merge
puts guarded values back, so it needs the permission too.

The server grants agents ``customer.merge`` (CRMGRAPH_GRANTS) and not the
pay permission; the manager holds both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import codes
from tests.test_merge import PLUGINS, ROLES, World, without_advancing

GRANTS = {"agent": ("customer.merge",)}
PAY = """id kind version ... on Employee { salary jobTitle }
  roles { kind ... on EmployeeRole { salary } }"""


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with World.serving(database_url, PLUGINS, ROLES, "pay.example", grants=GRANTS) as world:
        yield world


def party(world: World, kind: str, name: str, **attributes: Any) -> str:
    """A customer of ``kind`` the agent owns (so sees), made by the admin."""
    values = {"kind": kind, "name": name, "ownerId": world.users["agent"], "allowDuplicate": True}
    made = world.ok("createCustomer", values | attributes, "customer { id }")
    return made["customer"]["id"]


def employee(world: World, name: str, **attributes: Any) -> str:
    return party(world, "EMPLOYEE", name, employee={"jobTitle": "Clerk", **attributes})


def pay(world: World, gid: str) -> dict[str, Any]:
    """A customer as the manager (who may read pay) sees it."""
    query = f"query($id: ID!) {{ customer(id: $id) {{ {PAY} }} }}"
    return world.data(query, {"id": gid}, "manager")["customer"]


def merge(world: World, role: str, survivor: str, merged: str, *choices: str, **more: Any) -> Any:
    """``mergeCustomers`` as ``role``; ``choices``: fields taken from the merged party."""
    values = {"survivorId": survivor, "mergedId": merged, **more}
    values["fieldChoices"] = [{"field": f, "source": "MERGED"} for f in choices]
    return world.mutate("mergeCustomers", values, "merge { id }", role)


def refused_writing_nothing(world: World, attempts: list[Any], expected: list[Any]) -> None:
    """Each attempt's userErrors are ``expected`` ((field, code) pairs) and name
    the salary and its permission."""
    for attempt in attempts:
        assert codes(attempt) == expected, attempt
        assert attempt["merge"] is None
        for error in attempt["userErrors"]:
            assert "employee.salary" in error["message"], error
            assert "employee.read_pay" in error["message"], error


def merges_recorded(world: World) -> list[dict[str, Any]]:
    return world.sql(
        "SELECT (SELECT COUNT(*) FROM customer_merge) AS merges, (SELECT COUNT(*) FROM "
        "audit_entry WHERE action LIKE 'customer.%merged') AS audited, (SELECT COUNT(*) FROM "
        "event WHERE type LIKE 'customer.%merged') AS events"
    )


def test_choosing_the_merged_employees_salary_needs_the_pay_permission(world: World) -> None:
    kept = employee(world, "Ana Staff", salary="40000")
    richer = employee(world, "Ana S. Staff", salary="52000", jobTitle="Senior clerk")
    unpaid = employee(world, "Ana Unpaid")
    before, recorded = world.snapshot(), merges_recorded(world)

    # the agent, without employee.read_pay: a choice, its dry run, a gap filled
    attempts = [
        merge(world, "agent", kept, richer, "salary"),
        merge(world, "agent", kept, richer, "salary", "jobTitle", dryRun=True),
        merge(world, "agent", unpaid, richer),  # the survivor has none: it would take 52000
    ]
    refused_writing_nothing(world, attempts, [("fieldChoices", "FORBIDDEN")])
    assert "choose SURVIVOR for salary " in attempts[0]["userErrors"][0]["message"]
    assert world.snapshot() == before
    assert merges_recorded(world) == recorded

    # the manager may: the survivor takes the merged party's salary
    theirs = pay(world, richer)["salary"]
    done = merge(world, "manager", kept, richer, "salary")
    assert done["userErrors"] == []
    assert pay(world, kept)["salary"] == theirs != "40000"

    # its undo puts the old salary back: a write of it, refused to the agent
    undo = {"mergeId": done["merge"]["id"]}
    after_merge = world.snapshot()
    denied = world.mutate("undoMerge", undo, "merge { id }", "agent")
    assert codes(denied) == [("mergeId", "FORBIDDEN")]
    assert "employee.salary" in denied["userErrors"][0]["message"]
    assert world.snapshot() == after_merge
    world.ok("undoMerge", undo, "merge { id }", "manager")
    assert without_advancing(world.snapshot()) == without_advancing(before)


def test_a_merge_keeping_the_survivors_salary_needs_nothing(world: World) -> None:
    kept = employee(world, "Bo Staff", salary="40000")
    other = employee(world, "Bo B. Staff", salary="52000", jobTitle="Senior clerk")
    gap = employee(world, "Bo Gap")
    paid = employee(world, "Bo G. Paid", salary="33000")
    # the salary stays 40000; an unguarded field may still come from the merged party
    done = merge(world, "agent", kept, other, "jobTitle")
    assert done["userErrors"] == []
    assert (pay(world, kept)["salary"], pay(world, kept)["jobTitle"]) == ("40000", "Senior clerk")
    # a gap the agent keeps open by choosing SURVIVOR is no write either
    values = {"survivorId": gap, "mergedId": paid,
              "fieldChoices": [{"field": "salary", "source": "SURVIVOR"}]}  # fmt: skip
    assert world.ok("mergeCustomers", values, role="agent")["userErrors"] == []
    assert pay(world, gap)["salary"] is None


def test_a_client_gaining_a_paid_employee_role_needs_the_pay_permission(world: World) -> None:
    client = party(world, "CLIENT", "Cai Trading")
    staff = employee(world, "Cai Staff", salary="30000")
    before, recorded = world.snapshot(), merges_recorded(world)

    attempts = [
        merge(world, "agent", client, staff),
        merge(world, "agent", client, staff, dryRun=True),
    ]
    refused_writing_nothing(world, attempts, [("mergedId", "FORBIDDEN")])
    assert "EMPLOYEE" in attempts[0]["userErrors"][0]["message"]
    assert world.snapshot() == before
    assert merges_recorded(world) == recorded

    salary = pay(world, staff)["salary"]
    done = merge(world, "manager", client, staff)
    assert done["userErrors"] == []
    roles = pay(world, client)["roles"]
    assert [(r["kind"], r.get("salary")) for r in roles] == [("CLIENT", None), ("EMPLOYEE", salary)]
    # the undo would take the salary away with the role: refused to the agent
    undo = {"mergeId": done["merge"]["id"]}
    assert codes(world.mutate("undoMerge", undo, "merge { id }", "agent")) == [
        ("mergeId", "FORBIDDEN")
    ]
    world.ok("undoMerge", undo, "merge { id }", "manager")
    assert without_advancing(world.snapshot()) == without_advancing(before)


def test_an_employee_role_without_a_salary_is_gained_freely(world: World) -> None:
    client = party(world, "CLIENT", "Dag Trading")
    staff = employee(world, "Dag Staff")  # no salary: nothing guarded comes along
    done = merge(world, "agent", client, staff)
    assert done["userErrors"] == []
    assert [r["kind"] for r in pay(world, client)["roles"]] == ["CLIENT", "EMPLOYEE"]
    world.ok("undoMerge", {"mergeId": done["merge"]["id"]}, role="agent")


def test_a_further_employee_role_both_hold_settles_its_salary_under_the_same_rule(
    world: World,
) -> None:
    kept, other = party(world, "CLIENT", "Eli Trading"), party(world, "CLIENT", "Eli T. Trading")
    for gid, salary in ((kept, "40000"), (other, "52000")):
        values = {"customerId": gid, "kind": "EMPLOYEE", "expectedVersion": world.version(gid)}
        world.ok("addRole", values | {"employee": {"salary": salary}})
    before = world.snapshot()
    refused = merge(world, "agent", kept, other, "employee.salary")
    refused_writing_nothing(world, [refused], [("fieldChoices", "FORBIDDEN")])
    assert "choose SURVIVOR for employee.salary " in refused["userErrors"][0]["message"]
    assert world.snapshot() == before
    assert merge(world, "agent", kept, other)["userErrors"] == []  # the survivor's stays
    assert pay(world, kept)["roles"][1] == {"kind": "EMPLOYEE", "salary": "40000"}
