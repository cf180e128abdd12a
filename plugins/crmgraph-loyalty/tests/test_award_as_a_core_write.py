"""awardLoyaltyPoints is written with crmgraph's public helpers only
(``run_mutation``, ``live_customer``, ``record_change``) and so behaves as a
core mutation does: an audit entry naming the caller and an outbox event in
its transaction, a role without the permission refused, row scope kept, and
input problems as ``userErrors`` with nothing written.

Agents are granted ``loyalty.award_points`` here (``CRMGRAPH_GRANTS``), so
row scope is what stands between an agent and another agent's customer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from crmgraph import Settings, encode_id
from crmgraph.testing import LiveServer, run_sql, settings_for

AWARD = """mutation($input: AwardLoyaltyPointsInput!) { awardLoyaltyPoints(input: $input) {
    account { points tier } userErrors { field message code } } }"""
CREATE = """mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
    customer { id } userErrors { code } } }"""
TRAIL = """query($id: ID!) { auditTrail(customerId: $id) { edges { node {
    action entityType byId changes { field old new } } } } }"""


@pytest.fixture
def crmgraph_settings(crmgraph_database_url: str, crmgraph_plugins: Sequence[str]) -> Settings:
    return settings_for(
        crmgraph_database_url,
        plugins=tuple(crmgraph_plugins),
        grants={"agent": ("loyalty.award_points",)},
    )


def award(server: LiveServer, key: str, customer_id: str, points: int = 120) -> dict[str, Any]:
    variables = {"input": {"customerId": customer_id, "points": points, "reason": "referral"}}
    return server.gql(AWARD, variables, key=key)["awardLoyaltyPoints"]


def create(server: LiveServer, key: str, name: str) -> str:
    payload = server.gql(CREATE, {"input": {"kind": "CLIENT", "name": name}}, key=key)
    assert payload["createCustomer"]["userErrors"] == []
    return payload["createCustomer"]["customer"]["id"]


def traces(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The award's audit entries and events, as stored."""
    audit = run_sql(
        settings,
        "SELECT action, entity_type, by, customer, changes FROM audit_entry "
        "WHERE action = 'loyalty.points_awarded' ORDER BY id",
    )
    events = run_sql(
        settings,
        "SELECT customer, payload FROM event WHERE type = 'loyalty.points_awarded' ORDER BY id",
    )
    return audit, events


def decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def test_an_award_leaves_an_audit_entry_and_an_event(
    crmgraph_client: LiveServer, crmgraph_settings: Settings, crmgraph_key: Any
) -> None:
    agent = crmgraph_key("agent")
    agent_id = crmgraph_client.gql("{ viewer { userId } }", key=agent)["viewer"]["userId"]
    mine = create(crmgraph_client, agent, "Own Shop")  # an agent owns what they create
    assert award(crmgraph_client, agent, mine) == {
        "account": {"points": 120, "tier": "BRONZE"},
        "userErrors": [],
    }
    (entry,), (event,) = traces(crmgraph_settings)
    customer_pk = int(event["customer"])
    assert (entry["entity_type"], entry["customer"]) == ("LoyaltyAccount", customer_pk)
    assert decoded(entry["changes"]) == {"points": [None, 120], "tier": [None, "BRONZE"]}
    assert decoded(event["payload"])["reason"] == "referral"
    # the entry names the caller and is in the customer's audit trail, as a core write's
    trail = crmgraph_client.gql(TRAIL, {"id": mine})["auditTrail"]["edges"]
    awarded = [e["node"] for e in trail if e["node"]["action"] == "loyalty.points_awarded"]
    assert awarded == [
        {
            "action": "loyalty.points_awarded",
            "entityType": "LoyaltyAccount",
            "byId": agent_id,
            "changes": [
                {"field": "points", "old": None, "new": "120"},
                {"field": "tier", "old": None, "new": "BRONZE"},
            ],
        }
    ]
    award(crmgraph_client, agent, mine, 400)  # only what changed: SILVER now
    second = decoded(traces(crmgraph_settings)[0][1]["changes"])
    assert second == {"points": [120, 520], "tier": ["BRONZE", "SILVER"]}


def test_a_refused_award_writes_nothing(
    crmgraph_client: LiveServer, crmgraph_settings: Settings, crmgraph_key: Any
) -> None:
    agent, viewer = crmgraph_key("agent"), crmgraph_key("viewer")
    others = create(crmgraph_client, crmgraph_key("manager"), "Someone Else's Shop")
    # a viewer may not award points
    assert award(crmgraph_client, viewer, others)["userErrors"] == [
        {
            "field": "customerId",
            "message": "your role may not award points: it needs the loyalty.award_points "
            "permission",
            "code": "FORBIDDEN",
        }
    ]
    # row scope: an agent's award to a customer they may not see gets exactly
    # the answer an award to a customer that does not exist gets
    hidden = award(crmgraph_client, agent, others)
    assert hidden == award(crmgraph_client, agent, encode_id("Customer", 999_999))
    assert hidden == {
        "account": None,
        "userErrors": [
            {"field": "customerId", "message": "customer not found", "code": "NOT_FOUND"}
        ],
    }
    # input problems, all at once, as userErrors
    bad = award(crmgraph_client, agent, "not-an-id", 0)
    assert {(e["field"], e["code"]) for e in bad["userErrors"]} == {
        ("customerId", "INVALID_ID"),
        ("points", "OUT_OF_RANGE"),
    }
    assert traces(crmgraph_settings) == ([], [])
    assert run_sql(crmgraph_settings, "SELECT id FROM loyalty_account") == []
