"""The loyalty plugin in personal data requests: its accounts are in the
export, and an erasure keeps them (points and tier are what its metrics add
up, not personal data) while the award reasons it wrote in its events go."""

from __future__ import annotations

import json
from typing import Any

from crmgraph.testing import LiveServer, run_sql

PLUGIN = "loyalty"  # its stable name (PLUGIN_NAME), however it was loaded


def events(settings: Any, event_type: str) -> list[Any]:
    rows = run_sql(settings, "SELECT payload FROM event WHERE type = {}", event_type)
    return [json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]
            for r in rows]  # fmt: skip


def metrics(server: LiveServer) -> dict[str, Any]:
    found = server.gql("{ analytics { metrics { key value } } }")["analytics"]["metrics"]
    return {m["key"]: m["value"] for m in found}


def test_accounts_are_exported_and_kept_through_an_erasure(
    crmgraph_client: LiveServer, crmgraph_settings: Any
) -> None:
    client = crmgraph_client.gql(
        'mutation { createCustomer(input: {kind: CLIENT, name: "Lia Moreno"}) { customer { id } } }'
    )["createCustomer"]["customer"]["id"]
    crmgraph_client.gql(
        "mutation($id: ID!) { awardLoyaltyPoints(input: {customerId: $id, points: 600, "
        'reason: "anniversary of Lia Moreno"}) { userErrors { code } } }',
        {"id": client},
    )
    exported = crmgraph_client.gql(
        "query($id: ID!) { personalDataExport(customerId: $id) { document } }", {"id": client}
    )["personalDataExport"]["document"]
    (account,) = exported["plugins"][PLUGIN]["accounts"]
    assert (account["points"], account["tier"]) == (600, "SILVER")
    before = metrics(crmgraph_client)

    erased = crmgraph_client.gql(
        'mutation($id: ID!) { erasePersonalData(input: {customerId: $id, reason: "r-1"}) '
        "{ erasure { counts { what count } } userErrors { code } } }",
        {"id": client},
    )["erasePersonalData"]
    assert erased["userErrors"] == []
    assert {"what": f"{PLUGIN}.accountsKept", "count": 1} in erased["erasure"]["counts"]
    assert metrics(crmgraph_client) == before
    (payload,) = events(crmgraph_settings, "loyalty.points_awarded")
    assert (payload["reason"], payload["points"], payload["balance"]) == ("[erased]", 600, 600)
    assert "Lia" not in json.dumps(payload)
