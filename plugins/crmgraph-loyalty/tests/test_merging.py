"""Loyalty accounts follow crmgraph's customer merges (the plugin's
``crmgraph_merge_customers``), and come back as they were when a merge is undone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from crmgraph.testing import LiveServer, run_sql

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
    return run_sql(settings, "SELECT * FROM loyalty_account ORDER BY id")


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
    # the award is audited on the survivor like any core write (crmgraph.record_change),
    # so crmgraph itself refuses the undo before asking the plugins
    [refusal] = undo(crmgraph_client, done["id"])
    assert refusal["code"] == "MERGE_NOT_UNDOABLE"
    assert "written to since the merge (loyalty.points_awarded)" in refusal["message"]
    assert [a["points"] for a in accounts(crmgraph_settings)] == [35]


def test_undo_is_vetoed_when_the_balance_changed_behind_the_api(
    crmgraph_client: LiveServer, crmgraph_settings: Any
) -> None:
    """A balance changed with no audited write (a script, another plugin): the
    plugin's own check in crmgraph_merge_customers vetoes the undo."""
    survivor, merged = client(crmgraph_client, "Dora"), client(crmgraph_client, "Dora D.", 30)
    done = merge(crmgraph_client, survivor, merged)
    run_sql(crmgraph_settings, "UPDATE loyalty_account SET points = points + 5")
    [refusal] = undo(crmgraph_client, done["id"])
    assert refusal["code"] == "MERGE_VETOED"
    assert "loyalty balance changed" in refusal["message"]
    assert [a["points"] for a in accounts(crmgraph_settings)] == [35]


AWARD = """mutation($id: ID!) { awardLoyaltyPoints(input: {customerId: $id, points: 5,
  reason: "race"}) { account { points } userErrors { field message code } } }"""
RACE_ROUNDS = {"postgres": 10, "sqlite": 3}


def test_points_awarded_as_the_customer_is_merged_are_not_lost(
    crmgraph_server: LiveServer,
) -> None:
    """awardLoyaltyPoints on the merged customer, sent at the same moment as
    the merge (two threads, released by a barrier): the award takes the
    customer's party lock like the core's writes, so its points are counted
    in the survivor's account, or it is refused (MERGED) after the merge."""
    server = crmgraph_server
    wrong = []
    for i in range(RACE_ROUNDS[server.engine]):
        survivor, merged = client(server, f"Sur {i}", 10), client(server, f"Mer {i}", 20)
        barrier = threading.Barrier(2)

        def send(document: str, variables: dict[str, Any], barrier: Any = barrier) -> Any:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                http.get("/healthz")  # connected before the start
                barrier.wait(timeout=30)
                return http.post("/graphql", json={"query": document, "variables": variables})

        with ThreadPoolExecutor(max_workers=2) as pool:
            merging = pool.submit(send, MERGE, {"input": {"survivorId": survivor,
                                                          "mergedId": merged}})  # fmt: skip
            awarding = pool.submit(send, AWARD, {"id": merged})
            merge_body, award_body = merging.result().json(), awarding.result().json()
        assert "errors" not in merge_body and "errors" not in award_body, (merge_body, award_body)
        assert merge_body["data"]["mergeCustomers"]["userErrors"] == []
        refused = award_body["data"]["awardLoyaltyPoints"]["userErrors"]
        assert [e["code"] for e in refused] in ([], ["MERGED"]), refused
        expected = 10 + 20 + (0 if refused else 5)
        found = server.gql(
            "query($id: ID!) { loyaltyAccount(customerId: $id) { points } }", {"id": survivor}
        )["loyaltyAccount"]
        if found["points"] != expected:
            wrong.append(f"round {i}: {found['points']} points, not {expected}")
    assert wrong == []
