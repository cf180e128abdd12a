"""Customers over real HTTP on both engines: create, read, validate, update,
optimistic concurrency, soft delete."""

from __future__ import annotations

import threading

import httpx

from tests.conftest import LiveServer
from tests.helpers import CREATE, count_customers, create_customer

UPDATE = """
mutation($input: UpdateCustomerInput!) {
  updateCustomer(input: $input) {
    customer { id name email phone version ... on Client { segment industry annualRevenue } }
    userErrors { field message code }
  }
}
"""


def test_create_normalises_and_reads_back(server: LiveServer) -> None:
    created = create_customer(
        server,
        name="  Acme Ibérica S.L. ",
        email="Compras@ACME.es",
        phone="+34 912 34 56 78",
        client={"segment": "ENTERPRISE", "industry": "Steel"},
    )
    assert created["name"] == "Acme Ibérica S.L."
    assert created["email"] == "Compras@acme.es"
    assert created["phone"] == "+34912345678"
    assert (created["version"], created["kind"], created["stage"], created["phase"]) == (
        1,
        "CLIENT",
        "interest",
        "ENGAGEMENT",
    )
    again = server.gql(
        "query($id: ID!) { customer(id: $id) { id name ... on Client { segment industry } "
        "stageHistory { fromStage toStage reason } } }",
        {"id": created["id"]},
    )["customer"]
    assert again["segment"] == "ENTERPRISE"
    assert again["stageHistory"] == [
        {"fromStage": None, "toStage": "interest", "reason": "created"}
    ]


def test_bad_input_names_every_field_and_writes_nothing(server: LiveServer) -> None:
    before = count_customers(server)
    payload = server.gql(
        CREATE,
        {
            "input": {
                "kind": "CLIENT",
                "name": "x" * 201,
                "email": "not-an-email",
                "phone": "12345",
                "client": {"annualRevenue": "-5", "industry": "y" * 101},
            }
        },
    )["createCustomer"]
    assert payload["customer"] is None
    by_field = {e["field"]: e["code"] for e in payload["userErrors"]}
    assert by_field == {
        "name": "TOO_LONG",
        "email": "INVALID_EMAIL",
        "phone": "INVALID_PHONE",
        "client.annualRevenue": "OUT_OF_RANGE",
        "client.industry": "TOO_LONG",
    }
    assert count_customers(server) == before


def test_bad_email_alone(server: LiveServer) -> None:
    payload = server.gql(CREATE, {"input": {"kind": "CLIENT", "name": "Ok", "email": "a@b@c"}})
    errors = payload["createCustomer"]["userErrors"]
    assert [e["field"] for e in errors] == ["email"]
    assert "e-mail" in errors[0]["message"]
    assert count_customers(server) == 0


def test_unknown_owner_is_a_user_error_and_rolls_back(server: LiveServer) -> None:
    import base64

    ghost = base64.b64encode(b"User:999").decode()
    payload = server.gql(CREATE, {"input": {"kind": "CLIENT", "name": "Ok", "ownerId": ghost}})
    assert payload["createCustomer"]["userErrors"][0]["code"] == "NOT_FOUND"
    assert count_customers(server) == 0


def test_update_is_partial_and_null_clears(server: LiveServer) -> None:
    c = create_customer(server, name="Beta", email="b@beta.com", client={"segment": "CONSUMER"})
    out = server.gql(
        UPDATE,
        {
            "input": {
                "id": c["id"],
                "expectedVersion": 1,
                "email": None,
                "client": {"industry": "Food"},
            }
        },
    )["updateCustomer"]
    assert out["userErrors"] == []
    assert out["customer"]["name"] == "Beta"
    assert out["customer"]["email"] is None
    assert out["customer"]["segment"] == "CONSUMER"  # kept: not sent
    assert out["customer"]["industry"] == "Food"
    assert out["customer"]["version"] == 2


def test_stale_version_is_refused(server: LiveServer) -> None:
    c = create_customer(server, name="Gamma")
    server.gql(UPDATE, {"input": {"id": c["id"], "expectedVersion": 1, "name": "Gamma 2"}})
    out = server.gql(UPDATE, {"input": {"id": c["id"], "expectedVersion": 1, "name": "Lost"}})
    assert out["updateCustomer"]["customer"] is None
    assert out["updateCustomer"]["userErrors"][0]["code"] == "VERSION_CONFLICT"
    name = server.gql("query($id: ID!) { customer(id: $id) { name version } }", {"id": c["id"]})
    assert name["customer"] == {"name": "Gamma 2", "version": 2}


def test_concurrent_updates_exactly_one_wins(server: LiveServer) -> None:
    for round_no in range(5):
        c = create_customer(server, name=f"Race {round_no}")
        barrier = threading.Barrier(2)
        results: dict[str, dict] = {}

        def update(
            label: str,
            customer_id: str = c["id"],
            barrier: threading.Barrier = barrier,
            results: dict[str, dict] = results,
        ) -> None:
            # a connection per thread to a real socket (server.url): callers at once
            with httpx.Client(base_url=server.url, timeout=60) as http:
                barrier.wait(timeout=30)
                response = http.post(
                    "/graphql",
                    json={
                        "query": UPDATE,
                        "variables": {
                            "input": {"id": customer_id, "expectedVersion": 1, "name": label}
                        },
                    },
                )
                results[label] = response.json()["data"]["updateCustomer"]

        threads = [threading.Thread(target=update, args=(label,)) for label in ("left", "right")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        winners = [label for label, r in results.items() if not r["userErrors"]]
        losers = [label for label, r in results.items() if r["userErrors"]]
        assert len(winners) == 1 and len(losers) == 1, results
        assert results[losers[0]]["userErrors"][0]["code"] == "VERSION_CONFLICT"
        stored = server.gql(
            "query($id: ID!) { customer(id: $id) { name version } }", {"id": c["id"]}
        )
        assert stored["customer"] == {"name": winners[0], "version": 2}


def test_soft_delete_and_restore(server: LiveServer) -> None:
    keep = create_customer(server, name="Keep")
    gone = create_customer(server, name="Gone")
    out = server.gql(
        "mutation($id: ID!) { deleteCustomer(input: {id: $id, expectedVersion: 1}) "
        "{ customer { deletedAt version } userErrors { code } } }",
        {"id": gone["id"]},
    )["deleteCustomer"]
    assert out["userErrors"] == [] and out["customer"]["deletedAt"] is not None
    listed = server.gql("{ customers { edges { node { id } } } }")["customers"]["edges"]
    assert [e["node"]["id"] for e in listed] == [keep["id"]]
    deleted = server.gql("{ customers(filter: {deleted: DELETED}) { edges { node { id } } } }")
    assert [e["node"]["id"] for e in deleted["customers"]["edges"]] == [gone["id"]]
    blocked = server.gql(UPDATE, {"input": {"id": gone["id"], "expectedVersion": 2, "name": "X"}})
    assert blocked["updateCustomer"]["userErrors"][0]["code"] == "DELETED"
    again = server.gql(
        "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { userErrors { code } } }",
        {"id": gone["id"]},
    )
    assert again["deleteCustomer"]["userErrors"][0]["code"] == "DELETED"
    restored = server.gql(
        "mutation($id: ID!) { restoreCustomer(input: {id: $id}) "
        "{ customer { deletedAt name version } userErrors { code } } }",
        {"id": gone["id"]},
    )["restoreCustomer"]
    assert restored["customer"] == {"deletedAt": None, "name": "Gone", "version": 3}
    assert count_customers(server, "ACTIVE") == 2


def test_attributes_of_another_kind_or_bad_choice_are_refused(server: LiveServer) -> None:
    payload = server.gql(
        CREATE,
        {"input": {"kind": "CLIENT", "name": "Delta", "client": {"preferredLanguage": "x" * 9}}},
    )["createCustomer"]
    assert payload["userErrors"][0]["field"] == "client.preferredLanguage"


def test_node_lookup_and_bad_ids(server: LiveServer) -> None:
    c = create_customer(server, name="Node Co")
    data = server.gql(
        "query($id: ID!) { node(id: $id) { id __typename ... on Customer { name } } "
        'bad: node(id: "bm9wZQ==") { id } garbage: customer(id: "%%%") { id } }',
        {"id": c["id"]},
    )
    assert data["node"] == {"id": c["id"], "__typename": "Client", "name": "Node Co"}
    assert data["bad"] is None and data["garbage"] is None


def test_get_request_and_health(server: LiveServer) -> None:
    response = server.http.get("/graphql", params={"query": "{ customerKinds { kind typeName } }"})
    assert response.status_code == 200
    assert {"kind": "CLIENT", "typeName": "Client"} in response.json()["data"]["customerKinds"]
    assert server.http.get("/healthz").json() == {"status": "ok"}
    ready = server.http.get("/readyz").json()
    assert ready["status"] == "ok" and ready["database"] == server.engine
