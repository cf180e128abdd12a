"""The audit trail: every write records each field's old and new value in
its own transaction; refused writes record nothing; the API cannot alter it."""

from __future__ import annotations

from tests.conftest import LiveServer
from tests.helpers import add_contact, audit_trail, create_customer, log_interaction


def changes_of(entry: dict) -> dict[str, tuple]:
    return {c["field"]: (c["old"], c["new"]) for c in entry["changes"]}


def test_every_write_is_in_the_trail_newest_first(server: LiveServer) -> None:
    c = create_customer(server, name="Audited", email="a@audit.es", client={"segment": "CONSUMER"})
    cid = c["id"]
    server.gql(
        "mutation($id: ID!) { updateCustomer(input: {id: $id, expectedVersion: 1, email: null, "
        "client: {segment: ENTERPRISE}}) { userErrors { code } } }",
        {"id": cid},
    )
    stale = server.gql(
        'mutation($id: ID!) { updateCustomer(input: {id: $id, expectedVersion: 1, name: "Lost"}) '
        "{ userErrors { code } } }",
        {"id": cid},
    )
    assert stale["updateCustomer"]["userErrors"][0]["code"] == "VERSION_CONFLICT"
    contact = add_contact(server, cid, name="Eva")
    log_interaction(server, cid, subject="Call", amount="10.00")
    server.gql(
        'mutation($id: ID!) { transitionCustomer(input: {id: $id, toStage: "engaged", '
        "expectedVersion: 2}) { userErrors { code } } }",
        {"id": cid},
    )
    for action in ("deleteCustomer", "restoreCustomer"):
        server.gql(f"mutation($id: ID!) {{ {action}(input: {{id: $id}}) {{ userErrors {{ code }} }} }}",
                   {"id": cid})  # fmt: skip

    entries = audit_trail(server, cid, page_size=3)  # small pages: the cursor is used
    assert [e["action"] for e in entries] == [
        "customer.restored", "customer.deleted", "customer.stage_changed", "interaction.logged",
        "contact.added", "customer.updated", "customer.created",
    ]  # fmt: skip
    created = changes_of(entries[-1])
    assert created["name"] == (None, "Audited") and created["email"] == (None, "a@audit.es")
    assert created["client.segment"] == (None, "CONSUMER")
    assert changes_of(entries[-2]) == {
        "email": ("a@audit.es", None),
        "client.segment": ("CONSUMER", "ENTERPRISE"),
    }
    assert entries[-3]["entityId"] == contact["id"] and entries[-3]["entityType"] == "Contact"
    assert changes_of(entries[-4])["amount"] == (None, "10.00")
    assert changes_of(entries[2]) == {"stage": ("interest", "engaged")}
    deleted_at = changes_of(entries[1])["deletedAt"]
    assert deleted_at[0] is None and deleted_at[1] is not None
    assert changes_of(entries[0])["deletedAt"] == (deleted_at[1], None)


def test_trail_cannot_be_changed_through_the_api(server: LiveServer) -> None:
    fields = server.gql('{ __type(name: "Mutation") { fields { name } } }')["__type"]["fields"]
    assert not [f["name"] for f in fields if "audit" in f["name"].lower()]
    refused = server.post('{ auditTrail(customerId: "bad") { edges { cursor } } }')
    assert "customerId" in refused["errors"][0]["message"]
