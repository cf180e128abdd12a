"""Loyalty accounts follow crmgraph's customer merges (the plugin's
``crmgraph_merge_customers``), and come back as they were when a merge is undone."""

from __future__ import annotations

import asyncio
from typing import Any

from crmgraph.db.engine import make_engine
from crmgraph.testing import LiveServer
from piccolo.querystring import QueryString

MERGE = """
mutation($input: MergeCustomersInput!) {
  mergeCustomers(input: $input) {
    merge { id movedCounts { what count } }
    userErrors { field message code }
  }
}
"""
UNDO = """
mutation($id: ID!) { undoMerge(input: {mergeId: $id}) { userErrors { field message code } } }
"""


def client(server: LiveServer, name: str, points: int = 0) -> str:
    made = server.gql(
        "mutation($name: String!) { createCustomer(input: {kind: CLIENT, name: $name}) "
        "{ customer { id } } }",
        {"name": name},
    )["createCustomer"]["customer"]["id"]
    if points:
        award = server.gql(
            "mutation($id: ID!, $p: Int!) { awardLoyaltyPoints(input: "
            '{customerId: $id, points: $p, reason: "t"}) { userErrors { message } } }',
            {"id": made, "p": points},
        )
        assert award["awardLoyaltyPoints"]["userErrors"] == []
    return made


def accounts(settings: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        statement = "SELECT * FROM loyalty_account ORDER BY id"
        rows = await make_engine(settings).run_querystring(QueryString(statement))
        return [dict(row) for row in rows or []]

    return asyncio.run(run())


def merge(server: LiveServer, survivor: str, merged: str) -> dict[str, Any]:
    payload = server.gql(MERGE, {"input": {"survivorId": survivor, "mergedId": merged}})
    assert payload["mergeCustomers"]["userErrors"] == []
    return payload["mergeCustomers"]["merge"]


def undo(server: LiveServer, merge_id: str) -> list[dict[str, Any]]:
    return server.gql(UNDO, {"id": merge_id})["undoMerge"]["userErrors"]


def test_an_account_moves_to_a_survivor_without_one_and_back(
    crmgraph_client: LiveServer, crmgraph_settings: Any
) -> None:
    survivor, merged = client(crmgraph_client, "Ana"), client(crmgraph_client, "Ana B.", 70)
    before = accounts(crmgraph_settings)
    done = merge(crmgraph_client, survivor, merged)
    assert {"what": "loyaltyAccounts", "count": 1} in done["movedCounts"]
    (account,) = accounts(crmgraph_settings)
    assert account["points"] == 70 and account["id"] == before[0]["id"]
    assert account["customer_id"] != before[0]["customer_id"]
    assert undo(crmgraph_client, done["id"]) == []
    assert accounts(crmgraph_settings) == before


def test_two_accounts_add_up_and_split_again(
    crmgraph_client: LiveServer, crmgraph_settings: Any
) -> None:
    survivor = client(crmgraph_client, "Bea", 450)
    merged = client(crmgraph_client, "Bea S.", 100)
    before = accounts(crmgraph_settings)
    done = merge(crmgraph_client, survivor, merged)
    (account,) = accounts(crmgraph_settings)
    assert (account["points"], account["tier"]) == (550, "SILVER")  # re-tiered
    assert undo(crmgraph_client, done["id"]) == []
    assert accounts(crmgraph_settings) == before  # ids, points, tiers, times


def test_undo_is_refused_once_the_survivor_earned_points(
    crmgraph_client: LiveServer, crmgraph_settings: Any
) -> None:
    survivor, merged = client(crmgraph_client, "Cleo"), client(crmgraph_client, "Cleo C.", 30)
    done = merge(crmgraph_client, survivor, merged)
    client_points = crmgraph_client.gql(
        "mutation($id: ID!) { awardLoyaltyPoints(input: "
        '{customerId: $id, points: 5, reason: "later"}) { account { points } } }',
        {"id": survivor},
    )
    assert client_points["awardLoyaltyPoints"]["account"] == {"points": 35}
    [refusal] = undo(crmgraph_client, done["id"])
    assert refusal["code"] == "MERGE_VETOED"
    assert "loyalty balance changed" in refusal["message"]
    assert [a["points"] for a in accounts(crmgraph_settings)] == [35]
