"""The lifecycle engine on the plain client type: edges, guards, history,
outbox event, optimistic concurrency — all in one transaction."""

from __future__ import annotations

from tests.conftest import LiveServer
from tests.helpers import create_customer, log_interaction

MOVE = """mutation($input: TransitionCustomerInput!) { transitionCustomer(input: $input) {
  customer { id stage phase version stageHistory { fromStage toStage reason } }
  stageChange { fromStage toStage reason }
  userErrors { field message code } } }"""

STATE = """query($id: ID!) { customer(id: $id) { stage version
  allowedTransitions { toStage allowed reasons convertsTo } } }"""


def move(server: LiveServer, cid: str, to: str, version: int, reason: str | None = None) -> dict:
    return server.gql(
        MOVE,
        {"input": {"id": cid, "toStage": to, "expectedVersion": version, "reason": reason}},
    )["transitionCustomer"]


def test_client_walk_with_purchase_guard(server: LiveServer) -> None:
    c = create_customer(server, name="Walker")
    cid = c["id"]
    assert move(server, cid, "engaged", 1, "replied to campaign")["userErrors"] == []
    assert move(server, cid, "negotiating", 2)["userErrors"] == []

    refused = move(server, cid, "active", 3)
    assert refused["customer"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        ("toStage", "TRANSITION_REFUSED")
    ]
    assert "purchase" in refused["userErrors"][0]["message"]
    state = server.gql(STATE, {"id": cid})["customer"]
    assert (state["stage"], state["version"]) == ("negotiating", 3)  # nothing written
    options = {o["toStage"]: o for o in state["allowedTransitions"]}
    assert options["active"]["allowed"] is False and "purchase" in options["active"]["reasons"][0]
    assert options["churned"] == {
        "toStage": "churned",
        "allowed": True,
        "reasons": [],
        "convertsTo": None,
    }

    not_an_edge = move(server, cid, "loyal", 3)
    assert "cannot move from 'negotiating' to 'loyal'" in not_an_edge["userErrors"][0]["message"]
    unknown = move(server, cid, "bogus", 3)
    assert "not a stage of Client" in unknown["userErrors"][0]["message"]

    log_interaction(server, cid, subject="First order", amount="1200.00")
    done = move(server, cid, "active", 3, "first order")
    assert done["userErrors"] == []
    assert done["stageChange"] == {
        "fromStage": "negotiating",
        "toStage": "active",
        "reason": "first order",
    }
    customer = done["customer"]
    assert (customer["stage"], customer["phase"], customer["version"]) == ("active", "RETENTION", 4)
    assert [(h["fromStage"], h["toStage"]) for h in customer["stageHistory"]] == [
        (None, "interest"),
        ("interest", "engaged"),
        ("engaged", "negotiating"),
        ("negotiating", "active"),
    ]
    stale = move(server, cid, "loyal", 3)
    assert stale["userErrors"][0]["code"] == "VERSION_CONFLICT"
    by_stage = server.gql(
        '{ customers(filter: {stages: ["active"], phases: [RETENTION]}) { totalCount } }'
    )
    assert by_stage["customers"]["totalCount"] == 1
