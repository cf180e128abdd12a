"""A party's further roles after they are added (issue 24), on both engines
over a real server: ``updateRole`` changes a role's attributes as
``updateCustomer`` changes a primary kind's (validated, guarded, plugins'
validation seeing the role, one audit entry and event, the version bumped),
each role offers its own ``allowedTransitions``, an agent without the
permission on a guarded role attribute may neither read nor write it nor see
its values in the audit trail, the customers list's ``kinds`` matches any role
held (``primaryKindOnly`` the primary kind) the same on the compiled path,
and subscriptions and webhooks see role events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from crmgraph.testing import LiveServer, live_server, settings_for, user_key
from tests.helpers import AUDIT_TRAIL, audit_trail, create_customer, log_interaction, poll
from tests.test_customer_roles import add, codes, end, events, move
from tests.test_subscriptions import graphql_ws, subscriptions_open
from tests.test_webhooks import Receiver, create_webhook, receiver, start  # noqa: F401

ROLE_FIELDS = """roles { kind primary stage
  allowedTransitions { toStage allowed reasons convertsTo }
  ... on GuarantorRole { guaranteedAmount guaranteeType documentId }
  ... on BeneficiaryRole { sharePercent } }"""

UPDATE = f"""mutation($input: UpdateRoleInput!) {{ updateRole(input: $input) {{
  customer {{ id version {ROLE_FIELDS} }} userErrors {{ field message code }} }} }}"""

READ = f"""query($id: ID!) {{ customer(id: $id) {{ version
  allowedTransitions {{ toStage allowed reasons convertsTo }} {ROLE_FIELDS} }} }}"""

LINK = """mutation($input: LinkCustomersInput!) { linkCustomers(input: $input) {
  userErrors { field message code } } }"""

LIST = """query($filter: CustomerFilter) { customers(first: 50, filter: $filter, orderBy:
  {field: NAME, direction: ASC}) { totalCount nodes { name roles { kind } } } }"""


def update(
    server: LiveServer, cid: str, kind: str, version: int, key: str | None = None, **attrs: Any
) -> dict[str, Any]:
    data = {"customerId": cid, "kind": kind, "expectedVersion": version, **attrs}
    if key is None:
        return server.gql(UPDATE, {"input": data})["updateRole"]
    return server.post(UPDATE, {"input": data}, key=key)["data"]["updateRole"]


def role(payload: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for r in payload["roles"] if r["kind"] == kind)


def test_update_role_changes_a_roles_attributes_once(server: LiveServer) -> None:
    cid = create_customer(server, name="Ula Update", client={"segment": "CONSUMER"})["id"]
    added = add(server, cid, "GUARANTOR", 1, guarantor={"guaranteeType": "PERSONAL"})
    assert added["userErrors"] == []
    borrower = create_customer(server, name="Bob Borrower")["id"]
    link = {"fromId": cid, "toId": borrower, "kind": "guarantees"}
    assert server.gql(LINK, {"input": link})["linkCustomers"]["userErrors"] == []
    # the guard reads the role's own attributes: no amount, no move to verified
    verified = {"toStage": "verified", "allowed": False, "convertsTo": None}
    before = role(server.gql(READ, {"id": cid})["customer"], "GUARANTOR")["allowedTransitions"]
    assert [{k: o[k] for k in verified} for o in before if o["toStage"] == "verified"] == [verified]

    changed = update(server, cid, "GUARANTOR", 2, guarantor={"guaranteedAmount": "2500"})
    assert changed["userErrors"] == []
    customer = changed["customer"]
    assert customer["version"] == 3
    guarantor = role(customer, "GUARANTOR")
    # what it left out stays; the primary kind's attributes are untouched
    assert (guarantor["guaranteedAmount"], guarantor["guaranteeType"]) == ("2500", "PERSONAL")
    options = {o["toStage"]: o for o in guarantor["allowedTransitions"]}
    assert options["verified"]["allowed"] and options["verified"]["reasons"] == []
    assert move(server, cid, "verified", 3, "GUARANTOR")["userErrors"] == []

    # null clears an attribute, as on updateCustomer
    cleared = update(server, cid, "GUARANTOR", 4, guarantor={"guaranteeType": None})
    assert role(cleared["customer"], "GUARANTOR")["guaranteeType"] is None

    seen = [(t, p) for t, p in events(server, cid) if t == "customer.role_updated"]
    assert [p["kind"] for _, p in seen] == ["guarantor", "guarantor"]
    assert [p["fields"] for _, p in seen] == [
        ["guarantor.guaranteedAmount"],
        ["guarantor.guaranteeType"],
    ]
    trail = [e for e in audit_trail(server, cid, 50) if e["action"] == "customer.role_updated"]
    assert [c for e in trail for c in e["changes"]] == [  # newest first
        {"field": "guarantor.guaranteeType", "old": "PERSONAL", "new": None},
        {"field": "guarantor.guaranteedAmount", "old": None, "new": "2500"},
    ]


def test_update_role_refusals_are_user_errors(server: LiveServer) -> None:
    cid = create_customer(server, name="Ron Refused")["id"]
    assert add(server, cid, "GUARANTOR", 1)["userErrors"] == []
    amount = {"guarantor": {"guaranteedAmount": "-3"}}
    assert codes(update(server, cid, "GUARANTOR", 2, **amount)) == [
        ("guarantor.guaranteedAmount", "OUT_OF_RANGE")
    ]
    other = {"client": {"segment": "CONSUMER"}}
    assert codes(update(server, cid, "GUARANTOR", 2, **other)) == [("client", "INVALID")]
    assert codes(update(server, cid, "CLIENT", 2, **other)) == [("kind", "INVALID")]
    assert codes(update(server, cid, "SUPPLIER", 2)) == [("kind", "NOT_FOUND")]
    fine = {"guarantor": {"guaranteedAmount": "3"}}
    assert codes(update(server, cid, "GUARANTOR", 1, **fine)) == [
        ("expectedVersion", "VERSION_CONFLICT")
    ]
    assert end(server, cid, "GUARANTOR", 2)["userErrors"] == []
    assert codes(update(server, cid, "GUARANTOR", 3, **fine)) == [("kind", "NOT_FOUND")]
    read = server.gql(READ, {"id": cid})["customer"]
    assert read["version"] == 3  # only addRole and endRole wrote
    types = [t for t, _ in events(server, cid)]
    assert "customer.role_updated" not in types


def test_plugins_validate_the_role_being_changed(server: LiveServer) -> None:
    """The beneficiary plugin's share rule sees a client's beneficiary role
    (its kind, its confirmed stage, its new share) as it sees a beneficiary."""
    holder = create_customer(server, name="Hana Holder")["id"]
    other = create_customer(
        server, kind="BENEFICIARY", name="Otto Other", beneficiary={"sharePercent": "60"}
    )["id"]
    link = {"toId": holder, "kind": "beneficiary_of"}
    assert (
        server.gql(LINK, {"input": {"fromId": other, **link}})["linkCustomers"]["userErrors"] == []
    )
    assert move(server, other, "confirmed", 1)["userErrors"] == []

    pat = create_customer(server, name="Pat Both")["id"]
    share = {"beneficiary": {"sharePercent": "30"}}
    assert add(server, pat, "BENEFICIARY", 1, **share)["userErrors"] == []
    assert server.gql(LINK, {"input": {"fromId": pat, **link}})["linkCustomers"]["userErrors"] == []
    assert move(server, pat, "confirmed", 2, "BENEFICIARY")["userErrors"] == []

    too_much = update(server, pat, "BENEFICIARY", 3, beneficiary={"sharePercent": "50"})
    assert [e["field"] for e in too_much["userErrors"]] == ["beneficiary.sharePercent"]
    assert "110" in too_much["userErrors"][0]["message"]
    room = update(server, pat, "BENEFICIARY", 3, beneficiary={"sharePercent": "40"})
    assert (
        room["userErrors"] == [] and role(room["customer"], "BENEFICIARY")["sharePercent"] == "40"
    )


def test_the_primary_roles_moves_are_the_customers(server: LiveServer) -> None:
    cid = create_customer(server, kind="PROSPECT", name="Pia Primary")["id"]
    assert add(server, cid, "SUPPLIER", 1)["userErrors"] == []
    read = server.gql(READ, {"id": cid})["customer"]
    primary, supplier = read["roles"]
    assert primary["primary"] and primary["allowedTransitions"] == read["allowedTransitions"]
    assert supplier["stage"] == "evaluation"
    assert all(o["convertsTo"] is None for o in supplier["allowedTransitions"])
    assert {o["toStage"] for o in supplier["allowedTransitions"]} == {"approved", "terminated"}


def test_an_agent_without_the_permission_neither_reads_nor_writes_a_guarded_role_attribute(
    server: LiveServer, database_url: str
) -> None:
    agent = asyncio.run(user_key(settings_for(database_url), "agent"))
    created = server.post(
        'mutation { createCustomer(input: {kind: CLIENT, name: "Ada Agent\'s"}) '
        "{ customer { id } userErrors { code } } }",
        key=agent,
    )["data"]["createCustomer"]
    cid = created["customer"]["id"]
    job = {"employee": {"jobTitle": "Clerk"}}
    assert add(server, cid, "EMPLOYEE", 1, **job)["userErrors"] == []
    pay = {"employee": {"salary": "41000"}}
    refused = update(server, cid, "EMPLOYEE", 2, key=agent, **pay)
    assert codes(refused) == [("employee.salary", "FORBIDDEN")]
    # the agent changes what it may; the admin the salary
    mine = update(server, cid, "EMPLOYEE", 2, key=agent, employee={"jobTitle": "Senior clerk"})
    assert mine["userErrors"] == []
    assert update(server, cid, "EMPLOYEE", 3, **pay)["userErrors"] == []

    salary = "query($id: ID!) { customer(id: $id) { roles { ... on EmployeeRole { salary } } } }"
    denied = server.post(salary, {"id": cid}, key=agent)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    title = "query($id: ID!) { customer(id: $id) { roles { ... on EmployeeRole { jobTitle } } } }"
    assert server.post(title, {"id": cid}, key=agent)["data"]["customer"]["roles"][1] == {
        "jobTitle": "Senior clerk"
    }
    # the audit trail shows the agent that the salary changed, not its values
    body = server.post(AUDIT_TRAIL, {"id": cid, "first": 20}, key=agent)
    changes = [
        c
        for edge in body["data"]["auditTrail"]["edges"]
        for c in edge["node"]["changes"]
        if edge["node"]["action"] == "customer.role_updated"
    ]
    assert {"field": "employee.salary", "old": None, "new": None} in changes
    assert {"field": "employee.jobTitle", "old": "Clerk", "new": "Senior clerk"} in changes
    admin_view = [c for e in audit_trail(server, cid, 20) for c in e["changes"]]
    assert {"field": "employee.salary", "old": None, "new": "41000"} in admin_view

    # row scope: a customer the agent may not see is not found, role or not
    theirs = create_customer(server, name="Not the agent's")["id"]
    assert add(server, theirs, "GUARANTOR", 1)["userErrors"] == []
    hidden = update(server, theirs, "GUARANTOR", 2, key=agent, guarantor={"documentId": "A"})
    assert codes(hidden) == [("customerId", "NOT_FOUND")]
    listed = server.post(LIST, {"filter": {"kinds": ["GUARANTOR"]}}, key=agent)["data"]
    assert listed["customers"]["totalCount"] == 0


def roles_world(server: LiveServer) -> dict[str, str]:
    """A client also a guarantor, a supplier also a client, a guarantor whose
    role ended, a prospect converted to a client (its prospect row history,
    no role), and a plain client."""
    made = {}
    made["both"] = create_customer(server, name="A Both")["id"]
    assert add(server, made["both"], "GUARANTOR", 1)["userErrors"] == []
    made["supplier"] = create_customer(server, kind="SUPPLIER", name="B Supplier")["id"]
    assert add(server, made["supplier"], "CLIENT", 1)["userErrors"] == []
    made["ended"] = create_customer(server, name="C Ended")["id"]
    assert add(server, made["ended"], "GUARANTOR", 1)["userErrors"] == []
    assert end(server, made["ended"], "GUARANTOR", 2)["userErrors"] == []
    made["converted"] = create_customer(server, kind="PROSPECT", name="D Converted")["id"]
    log_interaction(server, made["converted"], subject="Order", amount="10.00")
    for version, stage in enumerate(("contacted", "qualified", "converted"), start=1):
        assert move(server, made["converted"], stage, version)["userErrors"] == []
    made["plain"] = create_customer(server, name="E Plain")["id"]
    return made


def names(server: LiveServer, **filter: Any) -> tuple[int, list[str]]:
    found = server.gql(LIST, {"filter": filter})["customers"]
    return found["totalCount"], [n["name"] for n in found["nodes"]]


def test_kinds_match_any_role_held_and_primary_kind_only_the_type(
    server: LiveServer, database_url: str
) -> None:
    roles_world(server)
    assert names(server, kinds=["GUARANTOR"]) == (1, ["A Both"])
    assert names(server, kinds=["GUARANTOR"], primaryKindOnly=True) == (0, [])
    clients = ["A Both", "B Supplier", "C Ended", "D Converted", "E Plain"]
    assert names(server, kinds=["CLIENT"]) == (5, clients)
    assert names(server, kinds=["CLIENT"], primaryKindOnly=True) == (
        4,
        ["A Both", "C Ended", "D Converted", "E Plain"],
    )
    assert names(server, kinds=["PROSPECT"]) == (0, [])  # converted: history, not a role
    assert names(server, kinds=["SUPPLIER", "GUARANTOR"]) == (2, ["A Both", "B Supplier"])
    # stages stay the primary kind's: the guarantor role's 'proposed' is not the customer's
    assert names(server, kinds=["GUARANTOR"], stages=["proposed"]) == (0, [])
    assert names(server, kinds=["GUARANTOR"], stages=["interest"]) == (1, ["A Both"])
    assert names(server) == (5, clients)

    # the compiled path reads the filter through the same query builder
    filters: list[dict[str, Any]] = [
        {"kinds": ["GUARANTOR"]},
        {"kinds": ["CLIENT"], "primaryKindOnly": True},
        {"kinds": ["CLIENT", "SUPPLIER"]},
    ]
    compiled = [server.gql(LIST, {"filter": f}) for f in filters]
    with live_server(settings_for(database_url, compiled_reads=False)) as resolved:
        assert [resolved.gql(LIST, {"filter": f}) for f in filters] == compiled


def test_subscriptions_and_webhooks_see_role_events(
    start: Callable[..., LiveServer],  # noqa: F811
    receiver: Receiver,  # noqa: F811
) -> None:
    server = start()
    create_webhook(server, receiver.url, ["customer.*"])
    other = create_customer(server, name="Not a guarantor")["id"]
    cid = create_customer(server, name="Gus Guarantor")["id"]
    events_query = """subscription($filter: CustomerEventFilter) {
      customerEvents(filter: $filter) { type customerId payload } }"""
    with graphql_ws(server.url) as client:
        client.acknowledged()
        client.subscribe(events_query, {"filter": {"kinds": ["GUARANTOR"]}})
        poll("the subscription", lambda: subscriptions_open(server.url, 1))
        server.gql(
            "mutation($id: ID!) { updateCustomer(input: {id: $id, expectedVersion: 1, "
            'name: "Still not"}) { userErrors { code } } }',
            {"id": other},
        )
        assert add(server, cid, "GUARANTOR", 1)["userErrors"] == []
        link = {"fromId": cid, "toId": other, "kind": "guarantees"}
        assert server.gql(LINK, {"input": link})["linkCustomers"]["userErrors"] == []
        amount = {"guarantor": {"guaranteedAmount": "100"}}
        assert update(server, cid, "GUARANTOR", 2, **amount)["userErrors"] == []
        assert move(server, cid, "verified", 3, "GUARANTOR")["userErrors"] == []
        # filters read the party as it is at delivery: end the role once these arrived
        received = [client.next_event() for _ in range(4)]
        assert end(server, cid, "GUARANTOR", 4)["userErrors"] == []
        received.append(client.next_event())
    assert {e["customerId"] for e in received} == {cid}  # not the other customer's update
    assert [e["type"] for e in received] == [
        "customer.role_added",
        "relationship.created",  # the party holds the guarantor role now
        "customer.role_updated",
        "customer.stage_changed",
        "customer.role_ended",  # held no longer, but about the guarantor role
    ]
    stage = received[3]["payload"]
    assert (stage["kind"], stage["primary"], stage["toStage"]) == ("guarantor", False, "verified")

    def of_guarantor() -> list[str] | None:
        found = [r.payload["type"] for r in receiver.delivered() if r.payload["customerId"] == cid]
        return found if len(found) == 5 else None

    assert poll("the role events delivered", of_guarantor) == [
        "customer.created",
        "customer.role_added",
        "customer.role_updated",
        "customer.stage_changed",
        "customer.role_ended",
    ]
