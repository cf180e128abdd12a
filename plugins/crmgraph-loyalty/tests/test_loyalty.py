"""The loyalty plugin end to end, over HTTP against a real crmgraph server."""

from __future__ import annotations

import json
from typing import Any

from crmgraph.testing import LiveServer, run_sql

CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    customer { id kind stage version ... on Distributor { territory discountPercent contractEndsOn } }
    userErrors { field message code }
  }
}
"""

UPDATE = """
mutation($input: UpdateCustomerInput!) {
  updateCustomer(input: $input) { customer { id version } userErrors { field message code } }
}
"""

TRANSITION = """
mutation($input: TransitionCustomerInput!) {
  transitionCustomer(input: $input) {
    customer { id stage version }
    userErrors { field message code }
  }
}
"""

AWARD = """
mutation($input: AwardLoyaltyPointsInput!) {
  awardLoyaltyPoints(input: $input) {
    account { customerId points tier customer { id name } }
    userErrors { field message code }
  }
}
"""

ACCOUNT = "query($id: ID!) { loyaltyAccount(customerId: $id) { points tier updatedAt } }"


def creating(server: LiveServer, **fields: Any) -> dict[str, Any]:
    """createCustomer's payload, user errors and all."""
    return server.gql(CREATE, {"input": fields})["createCustomer"]


def create(server: LiveServer, **fields: Any) -> dict[str, Any]:
    payload = creating(server, **fields)
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["customer"]


def move(server: LiveServer, customer: dict[str, Any], to_stage: str) -> dict[str, Any]:
    """Try a move; returns the payload and keeps ``customer`` up to date when it passes."""
    payload = server.gql(
        TRANSITION,
        {
            "input": {
                "id": customer["id"],
                "toStage": to_stage,
                "expectedVersion": customer["version"],
            }
        },
    )["transitionCustomer"]
    if payload["customer"]:
        customer.update(payload["customer"])
    return payload


def refusals(payload: dict[str, Any]) -> list[str]:
    assert payload["customer"] is None
    assert {e["code"] for e in payload["userErrors"]} == {"TRANSITION_REFUSED"}
    return [e["message"] for e in payload["userErrors"]]


def purchase(server: LiveServer, customer_id: str, amount: str = "250.00") -> None:
    data = server.gql(
        """mutation($input: LogInteractionInput!) {
          logInteraction(input: $input) { interaction { id channel } userErrors { message } }
        }""",
        {
            "input": {
                "customerId": customer_id,
                "channel": "LOYALTY_APP",
                "direction": "INBOUND",
                "subject": "order",
                "amount": amount,
            }
        },
    )["logInteraction"]
    assert data["userErrors"] == []
    assert data["interaction"]["channel"] == "LOYALTY_APP"


def award(
    server: LiveServer, customer_id: str, points: int, reason: str = "test"
) -> dict[str, Any]:
    return server.gql(
        AWARD, {"input": {"customerId": customer_id, "points": points, "reason": reason}}
    )["awardLoyaltyPoints"]


def sql(server_settings: Any, statement: str, *args: Any) -> list[dict[str, Any]]:
    return run_sql(server_settings, statement, *args)


def active_client(server: LiveServer) -> dict[str, Any]:
    client = create(server, kind="CLIENT", name="Ana Shop")
    for stage in ("engaged", "negotiating"):
        assert move(server, client, stage)["userErrors"] == []
    purchase(server, client["id"])
    assert move(server, client, "active")["userErrors"] == []
    return client


def test_distributor_lifecycle_walk_with_guards(crmgraph_client: LiveServer) -> None:
    d = create(server=crmgraph_client, kind="DISTRIBUTOR", name="Iberia Parts")
    assert d["kind"] == "DISTRIBUTOR"
    assert d["stage"] == "applicant"

    assert refusals(move(crmgraph_client, d, "authorised")) == [
        "authorising a distributor needs a territory"
    ]
    updated = crmgraph_client.gql(
        UPDATE,
        {
            "input": {
                "id": d["id"],
                "expectedVersion": d["version"],
                "distributor": {"territory": "Iberia", "discountPercent": "12.5"},
            }
        },
    )["updateCustomer"]
    assert updated["userErrors"] == []
    d["version"] = updated["customer"]["version"]
    assert move(crmgraph_client, d, "authorised")["userErrors"] == []

    assert refusals(move(crmgraph_client, d, "active")) == [
        "activating a distributor needs a purchase: log an interaction with an amount"
    ]
    purchase(crmgraph_client, d["id"])
    assert move(crmgraph_client, d, "active")["userErrors"] == []
    assert move(crmgraph_client, d, "suspended")["userErrors"] == []
    assert move(crmgraph_client, d, "active")["userErrors"] == []
    # not an edge of the lifecycle: the engine names where it can go instead
    [message] = refusals(move(crmgraph_client, d, "applicant"))
    assert "can move to: suspended, terminated" in message
    assert move(crmgraph_client, d, "terminated")["userErrors"] == []
    assert d["stage"] == "terminated"

    kinds = crmgraph_client.gql("{ customerKinds { kind plugin stages { key } } }")["customerKinds"]
    [info] = [k for k in kinds if k["kind"] == "DISTRIBUTOR"]
    assert info["plugin"] == "crmgraph_loyalty.plugin"
    assert [s["key"] for s in info["stages"]] == [
        "applicant",
        "authorised",
        "active",
        "suspended",
        "terminated",
    ]


def test_distributor_attributes_are_typed_and_validated(crmgraph_client: LiveServer) -> None:
    d = create(
        crmgraph_client,
        kind="DISTRIBUTOR",
        name="Nordic Supply",
        distributor={
            "territory": "Nordics",
            "discountPercent": "20",
            "contractEndsOn": "2031-12-31",
        },
    )
    assert d["territory"] == "Nordics"
    assert d["discountPercent"] == "20"
    assert d["contractEndsOn"] == "2031-12-31"

    too_much = creating(
        crmgraph_client, kind="DISTRIBUTOR", name="Greedy", distributor={"discountPercent": "60"}
    )
    assert too_much["customer"] is None
    assert [e["field"] for e in too_much["userErrors"]] == ["distributor.discountPercent"]

    unbounded = creating(
        crmgraph_client,
        kind="DISTRIBUTOR",
        name="Open-ended",
        distributor={"discountPercent": "35"},
    )
    assert unbounded["userErrors"] == [
        {
            "field": "distributor.contractEndsOn",
            "message": "a discount above 30 % needs a contract end date",
            "code": "INVALID",
        }
    ]


def test_awarding_points_and_tiers(crmgraph_client: LiveServer) -> None:
    client = create(crmgraph_client, kind="CLIENT", name="Bea Books")
    assert crmgraph_client.gql(ACCOUNT, {"id": client["id"]})["loyaltyAccount"] is None

    first = award(crmgraph_client, client["id"], 120, "referral")
    assert first["userErrors"] == []
    assert first["account"]["points"] == 120
    assert first["account"]["tier"] == "BRONZE"
    assert first["account"]["customer"] == {"id": client["id"], "name": "Bea Books"}
    assert award(crmgraph_client, client["id"], 400)["account"]["tier"] == "SILVER"
    assert award(crmgraph_client, client["id"], 1500)["account"] == {
        "customerId": client["id"],
        "points": 2020,
        "tier": "GOLD",
        "customer": {"id": client["id"], "name": "Bea Books"},
    }
    account = crmgraph_client.gql(ACCOUNT, {"id": client["id"]})["loyaltyAccount"]
    assert account["points"] == 2020
    assert account["updatedAt"]


def test_awarding_refuses_bad_input_and_writes_nothing(crmgraph_client: LiveServer) -> None:
    client = create(crmgraph_client, kind="CLIENT", name="Cleo Cafe")
    bad = award(crmgraph_client, client["id"], 0, " ")
    assert bad["account"] is None
    assert {(e["field"], e["code"]) for e in bad["userErrors"]} == {
        ("points", "OUT_OF_RANGE"),
        ("reason", "REQUIRED"),
    }
    assert award(crmgraph_client, client["id"], 10_001)["userErrors"][0]["code"] == "OUT_OF_RANGE"
    assert award(crmgraph_client, "nope", 5)["userErrors"][0]["code"] == "INVALID_ID"
    missing = award(crmgraph_client, "Q3VzdG9tZXI6OTk5OTk=", 5)  # Customer:99999
    assert missing["userErrors"] == [
        {"field": "customerId", "message": "customer not found", "code": "NOT_FOUND"}
    ]
    assert crmgraph_client.gql(ACCOUNT, {"id": client["id"]})["loyaltyAccount"] is None


def test_loyal_needs_a_hundred_points(crmgraph_client: LiveServer) -> None:
    client = active_client(crmgraph_client)
    # the welcome bonus alone is not enough
    assert refusals(move(crmgraph_client, client, "loyal")) == [
        "becoming loyal needs 100 loyalty points; it has 50"
    ]
    options = crmgraph_client.gql(
        "query($id: ID!) { customer(id: $id) { allowedTransitions { toStage allowed reasons } } }",
        {"id": client["id"]},
    )["customer"]["allowedTransitions"]
    loyal = next(o for o in options if o["toStage"] == "loyal")
    assert loyal == {
        "toStage": "loyal",
        "allowed": False,
        "reasons": ["becoming loyal needs 100 loyalty points; it has 50"],
    }

    assert award(crmgraph_client, client["id"], 50)["account"]["points"] == 100
    assert move(crmgraph_client, client, "loyal")["userErrors"] == []
    assert client["stage"] == "loyal"


def test_the_rule_leaves_other_types_alone(crmgraph_client: LiveServer) -> None:
    d = create(crmgraph_client, kind="DISTRIBUTOR", name="Solo", distributor={"territory": "Alps"})
    assert move(crmgraph_client, d, "authorised")["userErrors"] == []
    assert crmgraph_client.gql(ACCOUNT, {"id": d["id"]})["loyaltyAccount"] is None


def test_becoming_active_opens_an_account_once(
    crmgraph_client: LiveServer, crmgraph_settings: Any
) -> None:
    client = create(crmgraph_client, kind="CLIENT", name="Dario Deli")
    for stage in ("engaged", "negotiating"):
        move(crmgraph_client, client, stage)
    assert refusals(move(crmgraph_client, client, "active"))  # no purchase yet
    assert crmgraph_client.gql(ACCOUNT, {"id": client["id"]})["loyaltyAccount"] is None

    purchase(crmgraph_client, client["id"])
    assert move(crmgraph_client, client, "active")["userErrors"] == []
    account = crmgraph_client.gql(ACCOUNT, {"id": client["id"]})["loyaltyAccount"]
    assert (account["points"], account["tier"]) == (50, "BRONZE")

    # back to active later: the existing balance is kept, no second bonus
    award(crmgraph_client, client["id"], 30)
    assert move(crmgraph_client, client, "at_risk")["userErrors"] == []
    assert move(crmgraph_client, client, "active")["userErrors"] == []
    assert crmgraph_client.gql(ACCOUNT, {"id": client["id"]})["loyaltyAccount"]["points"] == 80
    rows = sql(crmgraph_settings, "SELECT COUNT(*) AS n FROM loyalty_account")
    assert rows[0]["n"] == 1


def test_the_plugin_table_exists(crmgraph_client: LiveServer, crmgraph_settings: Any) -> None:
    if crmgraph_settings.is_sqlite:
        found = sql(
            crmgraph_settings,
            "SELECT name FROM pragma_table_info('loyalty_account') ORDER BY name",
        )
    else:
        found = sql(
            crmgraph_settings,
            "SELECT column_name AS name FROM information_schema.columns "
            "WHERE table_name = 'loyalty_account' ORDER BY column_name",
        )
    assert [r["name"] for r in found] == ["customer_id", "id", "points", "tier", "updated_at"]
    applied = sql(
        crmgraph_settings,
        "SELECT name FROM migration WHERE app_name = {}",
        "crmgraph_loyalty",
    )
    assert [r["name"] for r in applied] == ["2026-11-23T10:00:00:000000"]


def test_channel_and_schema(crmgraph_client: LiveServer) -> None:
    sdl = crmgraph_client.gql('{ __type(name: "InteractionChannel") { enumValues { name } } }')
    assert "LOYALTY_APP" in {v["name"] for v in sdl["__type"]["enumValues"]}
    distributor = crmgraph_client.gql('{ __type(name: "Distributor") { interfaces { name } } }')
    assert {"name": "Customer"} in distributor["__type"]["interfaces"]


def test_metric_permission_and_award_event(
    crmgraph_client: LiveServer, crmgraph_settings: Any
) -> None:
    client = create(crmgraph_client, kind="CLIENT", name="Eva Estudio")
    award(crmgraph_client, client["id"], 2500, "launch party")
    create(crmgraph_client, kind="CLIENT", name="Sin Puntos")
    data = crmgraph_client.gql(
        "{ analytics { metrics { key value } } permissions { key roles } "
        "distributors: analytics(filter: {kinds: [DISTRIBUTOR]}) { metrics { key value } } }"
    )
    metrics = {m["key"]: m["value"] for m in data["analytics"]["metrics"]}
    assert metrics["loyalty_points_total"] == 2500
    assert metrics["loyalty_gold_accounts"] == 1
    assert metrics["loyalty_member_share"] == 0.5  # one of the two clients has an account
    # the metrics follow the analytics filter: no distributor holds points
    others = {m["key"]: m["value"] for m in data["distributors"]["metrics"]}
    assert others == {
        "loyalty_gold_accounts": 0.0,
        "loyalty_member_share": None,
        "loyalty_points_total": 0.0,
    }
    assert {"key": "loyalty.award_points", "roles": ["admin", "manager"]} in data["permissions"]
    events = sql(
        crmgraph_settings,
        "SELECT payload FROM event WHERE type = {}",
        "loyalty.points_awarded",
    )
    assert len(events) == 1
    payload = events[0]["payload"]
    payload = json.loads(payload) if isinstance(payload, str) else payload
    assert (payload["reason"], payload["balance"], payload["tier"]) == (
        "launch party",
        2500,
        "GOLD",
    )


def test_awarding_needs_the_permission_and_a_visible_customer(
    crmgraph_client: LiveServer, crmgraph_key: Any
) -> None:
    client = create(crmgraph_client, kind="CLIENT", name="Guarded Co")
    award(crmgraph_client, client["id"], 10, "welcome")
    query = """mutation($input: AwardLoyaltyPointsInput!) { awardLoyaltyPoints(input: $input) {
        account { points } userErrors { field code } } }"""
    variables = {"input": {"customerId": client["id"], "points": 5, "reason": "try"}}
    for role in ("agent", "viewer"):  # not granted loyalty.award_points
        payload = crmgraph_client.gql(query, variables, key=crmgraph_key(role))
        assert payload["awardLoyaltyPoints"]["userErrors"] == [
            {"field": "customerId", "code": "FORBIDDEN"}
        ]
    manager = crmgraph_client.gql(query, variables, key=crmgraph_key("manager"))
    assert manager["awardLoyaltyPoints"]["account"] == {"points": 15}
    # an agent does not see the account of a customer they neither own nor share
    account = "query($id: ID!) { loyaltyAccount(customerId: $id) { points customer { id } } }"
    hidden = crmgraph_client.gql(account, {"id": client["id"]}, key=crmgraph_key("agent"))
    assert hidden["loyaltyAccount"] is None
    seen = crmgraph_client.gql(account, {"id": client["id"]}, key=crmgraph_key("viewer"))
    assert seen["loyaltyAccount"] == {"points": 15, "customer": {"id": client["id"]}}
