"""Small GraphQL helpers shared by the API tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import LiveServer

CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    customer { id name email phone version kind stage phase ... on Client { segment industry } }
    userErrors { field message code }
  }
}
"""


def create_customer(server: LiveServer, **fields: Any) -> dict[str, Any]:
    payload = server.gql(CREATE, {"input": {"kind": "CLIENT", **fields}})["createCustomer"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["customer"]


def log_interaction(server: LiveServer, customer_id: str, **fields: Any) -> dict[str, Any]:
    data = server.gql(
        """mutation($input: LogInteractionInput!) {
          logInteraction(input: $input) {
            interaction { id channel direction occurredAt subject satisfaction amount }
            userErrors { field message code }
          }
        }""",
        {
            "input": {
                "customerId": customer_id,
                "channel": "EMAIL",
                "direction": "INBOUND",
                "subject": "hello",
                **fields,
            }
        },
    )["logInteraction"]
    assert data["userErrors"] == [], data["userErrors"]
    return data["interaction"]


def add_contact(server: LiveServer, customer_id: str, **fields: Any) -> dict[str, Any]:
    data = server.gql(
        """mutation($input: AddContactInput!) {
          addContact(input: $input) { contact { id name email phone isPrimary } userErrors { field message code } }
        }""",
        {"input": {"customerId": customer_id, "name": "Ana García", **fields}},
    )["addContact"]
    assert data["userErrors"] == [], data["userErrors"]
    return data["contact"]


def record_need(server: LiveServer, customer_id: str, **fields: Any) -> dict[str, Any]:
    data = server.gql(
        """mutation($input: RecordNeedInput!) {
          recordNeed(input: $input) { need { id title status priority } userErrors { field message code } }
        }""",
        {"input": {"customerId": customer_id, "title": "Quarterly supply", **fields}},
    )["recordNeed"]
    assert data["userErrors"] == [], data["userErrors"]
    return data["need"]


def count_customers(server: LiveServer, deleted: str = "ALL") -> int:
    return server.gql(
        "query($d: DeletedState!) { customers(filter: {deleted: $d}) { totalCount } }",
        {"d": deleted},
    )["customers"]["totalCount"]
