"""One party, several roles (issue 24, first slice), on both engines over a
real server: a client gains a guarantor role whose guard reads the role's own
attributes, the two lifecycles move apart with their own histories, a role
ends and comes back, refusals come back as userErrors, a guarded attribute
of a role needs its permission, erasure clears a role's attributes, and the
compiled read path answers ``roles`` as the resolvers do."""

from __future__ import annotations

import asyncio
from typing import Any

from crmgraph.testing import LiveServer, live_server, settings_for, user_key
from tests.helpers import create_customer, log_interaction

ROLES = """roles { __typename kind primary stage phase addedAt
  stageHistory { fromStage toStage reason }
  ... on GuarantorRole { guaranteedAmount guaranteeType }
  ... on ClientRole { segment } }"""

ADD = f"""mutation($input: AddRoleInput!) {{ addRole(input: $input) {{
  customer {{ id version {ROLES} }} userErrors {{ field message code }} }} }}"""

END = f"""mutation($input: EndRoleInput!) {{ endRole(input: $input) {{
  customer {{ id version {ROLES} }} userErrors {{ field message code }} }} }}"""

MOVE = """mutation($input: TransitionCustomerInput!) { transitionCustomer(input: $input) {
  customer { __typename stage version }
  stageChange { kind fromStage toStage }
  userErrors { field message code } } }"""

LINK = """mutation($input: LinkCustomersInput!) { linkCustomers(input: $input) {
  relationship { id } userErrors { field message code } } }"""

READ = f"""query($id: ID!) {{ customer(id: $id) {{ __typename kind stage version
  stageHistory {{ kind toStage }} {ROLES} }} }}"""


def add(server: LiveServer, cid: str, kind: str, version: int, **attrs: Any) -> dict[str, Any]:
    data = {"customerId": cid, "kind": kind, "expectedVersion": version, **attrs}
    return server.gql(ADD, {"input": data})["addRole"]


def end(server: LiveServer, cid: str, kind: str, version: int) -> dict[str, Any]:
    data = {"customerId": cid, "kind": kind, "expectedVersion": version}
    return server.gql(END, {"input": data})["endRole"]


def move(
    server: LiveServer, cid: str, to: str, version: int, kind: str | None = None
) -> dict[str, Any]:
    data = {"id": cid, "toStage": to, "expectedVersion": version, "kind": kind}
    return server.gql(MOVE, {"input": data})["transitionCustomer"]


def codes(payload: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


def events(server: LiveServer, cid: str) -> list[tuple[str, dict[str, Any]]]:
    async def read(state: Any) -> list[tuple[str, dict[str, Any]]]:
        from crmgraph.db.queries import load_json
        from crmgraph.ids import decode_id

        pk = decode_id(cid)[1]
        rows = await state.db.fetch(
            "SELECT type, payload FROM event WHERE customer = {} ORDER BY id", pk
        )
        return [(r["type"], load_json(r["payload"])) for r in rows]

    return server.run(read)


def test_a_client_gains_a_guarantor_role_with_a_lifecycle_of_its_own(server: LiveServer) -> None:
    ana = create_customer(server, name="Ana Roles", client={"segment": "CONSUMER"})["id"]
    bo = create_customer(server, name="Bo Borrower")["id"]
    added = add(server, ana, "GUARANTOR", 1, guarantor={"guaranteeType": "PERSONAL"})
    assert added["userErrors"] == []
    customer = added["customer"]
    assert customer["version"] == 2
    primary, guarantor = customer["roles"]
    assert (primary["__typename"], primary["primary"], primary["stage"]) == (
        "ClientRole",
        True,
        "interest",
    )
    assert primary["segment"] == "CONSUMER" and primary["addedAt"] is None
    assert guarantor["__typename"] == "GuarantorRole" and guarantor["primary"] is False
    assert (guarantor["kind"], guarantor["stage"], guarantor["phase"]) == (
        "GUARANTOR",
        "proposed",
        "ENGAGEMENT",
    )
    assert guarantor["guaranteeType"] == "PERSONAL" and guarantor["guaranteedAmount"] is None
    assert guarantor["stageHistory"] == [
        {"fromStage": None, "toStage": "proposed", "reason": "role added"}
    ]

    # a guarantees link needs a party holding the guarantor role, whatever its primary kind
    link = {"fromId": ana, "toId": bo, "kind": "guarantees"}
    assert server.gql(LINK, {"input": link})["linkCustomers"]["userErrors"] == []
    # the guarantor's guard reads the role's own attributes: no amount yet
    refused = move(server, ana, "verified", 2, "GUARANTOR")
    assert codes(refused) == [("toStage", "TRANSITION_REFUSED")]
    assert "guaranteed amount" in refused["userErrors"][0]["message"]

    # ended and taken up again with an amount: the guard passes
    assert end(server, ana, "GUARANTOR", 2)["customer"]["roles"][1:] == []
    again = add(server, ana, "GUARANTOR", 3, guarantor={"guaranteedAmount": "5000"})
    assert again["userErrors"] == [] and again["customer"]["roles"][1]["guaranteedAmount"] == "5000"
    moved = move(server, ana, "verified", 4, "GUARANTOR")
    assert moved["userErrors"] == []
    assert moved["stageChange"] == {
        "kind": "guarantor",
        "fromStage": "proposed",
        "toStage": "verified",
    }
    assert (moved["customer"]["__typename"], moved["customer"]["stage"]) == ("Client", "interest")

    # the primary kind moves on its own
    assert move(server, ana, "engaged", 5)["userErrors"] == []
    read = server.gql(READ, {"id": ana})["customer"]
    assert (read["__typename"], read["kind"], read["stage"], read["version"]) == (
        "Client",
        "CLIENT",
        "engaged",
        6,
    )
    primary, guarantor = read["roles"]
    assert [h["toStage"] for h in primary["stageHistory"]] == ["interest", "engaged"]
    assert [h["toStage"] for h in guarantor["stageHistory"]] == ["proposed", "proposed", "verified"]
    assert guarantor["stage"] == "verified" and guarantor["phase"] == "ACQUISITION"

    seen = events(server, ana)
    types = [t for t, _ in seen]
    assert types.count("customer.role_added") == 2 and types.count("customer.role_ended") == 1
    stage_events = [p for t, p in seen if t == "customer.stage_changed"]
    assert [(p["kind"], p["primary"], p["toStage"]) for p in stage_events] == [
        ("guarantor", False, "verified"),
        ("client", True, "engaged"),
    ]


def test_refusals_are_user_errors(server: LiveServer) -> None:
    cid = create_customer(server, name="Cy Refused")["id"]
    assert codes(add(server, cid, "CLIENT", 1)) == [("kind", "ROLE_HELD")]
    assert codes(add(server, cid, "AGENDA", 1)) == [("kind", "NOT_COMBINABLE")]
    assert codes(add(server, cid, "COMPETITOR", 1)) == [("kind", "NOT_COMBINABLE")]
    assert codes(add(server, cid, "GUARANTOR", 7)) == [("expectedVersion", "VERSION_CONFLICT")]
    wrong = add(server, cid, "GUARANTOR", 1, client={"segment": "CONSUMER"})
    assert codes(wrong) == [("client", "INVALID")]
    out = add(server, cid, "GUARANTOR", 1, guarantor={"guaranteedAmount": "-1"})
    assert codes(out) == [("guarantor.guaranteedAmount", "OUT_OF_RANGE")]
    assert add(server, cid, "GUARANTOR", 1)["userErrors"] == []
    assert codes(add(server, cid, "GUARANTOR", 2)) == [("kind", "ROLE_HELD")]
    assert codes(end(server, cid, "CLIENT", 2)) == [("kind", "INVALID")]
    assert codes(end(server, cid, "SUPPLIER", 2)) == [("kind", "NOT_FOUND")]
    assert codes(move(server, cid, "active", 2, "SUPPLIER")) == [("kind", "NOT_FOUND")]
    assert server.gql(READ, {"id": cid})["customer"]["version"] == 2  # nothing written


def test_a_role_attribute_guarded_by_a_permission(server: LiveServer, database_url: str) -> None:
    agent = asyncio.run(user_key(settings_for(database_url), "agent"))
    cid = create_customer(server, name="Di Staff")["id"]
    paid = {"employee": {"jobTitle": "Clerk", "salary": "30000"}}
    refused = server.post(
        ADD.replace(ROLES, "kind"),
        {"input": {"customerId": cid, "kind": "EMPLOYEE", "expectedVersion": 1, **paid}},
        key=agent,
    )["data"]["addRole"]
    assert codes(refused) == [("employee.salary", "FORBIDDEN")]
    assert add(server, cid, "EMPLOYEE", 1, **paid)["userErrors"] == []
    query = "query($id: ID!) { customer(id: $id) { roles { ... on EmployeeRole { salary } } } }"
    denied = server.post(query, {"id": cid}, key=agent)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "EmployeeRole.salary" in denied["errors"][0]["message"]
    assert server.gql(query, {"id": cid})["customer"]["roles"][1] == {"salary": "30000"}


def test_erasure_clears_a_role(server: LiveServer) -> None:
    cid = create_customer(server, name="Eve Erased")["id"]
    add(server, cid, "GUARANTOR", 1, guarantor={"documentId": "X123", "guaranteedAmount": "10"})
    erased = server.gql(
        """mutation($input: ErasePersonalDataInput!) { erasePersonalData(input: $input) {
          userErrors { code } } }""",
        {"input": {"customerId": cid, "reason": "request 7"}},
    )["erasePersonalData"]
    assert erased["userErrors"] == []
    roles = server.gql(READ, {"id": cid})["customer"]["roles"]
    assert roles[1]["guaranteedAmount"] is None and roles[1]["stage"] == "proposed"


def test_the_compiled_path_answers_roles_as_the_resolvers_do(
    server: LiveServer, database_url: str
) -> None:
    cid = create_customer(server, name="Flo Compiled", client={"segment": "CONSUMER"})["id"]
    add(server, cid, "GUARANTOR", 1, guarantor={"guaranteedAmount": "12.50"})
    create_customer(server, name="Gil Single")
    query = f"{{ customers(first: 5) {{ nodes {{ id name stage {ROLES} }} }} }}"
    compiled = server.gql(query)
    with live_server(settings_for(database_url, compiled_reads=False)) as resolved:
        assert resolved.gql(query) == compiled
    kinds = [[r["kind"] for r in n["roles"]] for n in compiled["customers"]["nodes"]]
    assert sorted(kinds) == [["CLIENT"], ["CLIENT", "GUARANTOR"]]


def test_a_conversion_keeps_the_further_roles(server: LiveServer) -> None:
    cid = create_customer(server, kind="PROSPECT", name="Hal Converted")["id"]
    assert add(server, cid, "SUPPLIER", 1)["userErrors"] == []
    refused = move(server, cid, "active", 2, "SUPPLIER")
    assert codes(refused) == [("toStage", "TRANSITION_REFUSED")]
    log_interaction(server, cid, subject="First order", amount="99.00")
    version = 2
    for stage in ("contacted", "qualified", "converted"):
        assert move(server, cid, stage, version)["userErrors"] == []
        version += 1
    read = server.gql(READ, {"id": cid})["customer"]
    assert (read["__typename"], read["stage"]) == ("Client", "active")
    roles = [(r["kind"], r["primary"], r["stage"]) for r in read["roles"]]
    assert roles == [("CLIENT", True, "active"), ("SUPPLIER", False, "evaluation")]
    # the prospect kind it left is history, not a role: it may be added afresh
    assert add(server, cid, "PROSPECT", version)["userErrors"] == []
