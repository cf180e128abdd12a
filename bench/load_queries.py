"""The GraphQL load benchmark's scenarios: one document per server for each,
and what both answers must agree on before anything is timed.

crmgraph and PostGraphile name things differently (``customers`` against
``allCustomers``, ``interactions`` against ``interactionsByCustomer``, global
IDs ``Customer:1`` against ``["Customer",1]``), so each scenario holds one
document per server, asking for the same rows in the same order, and the
answers are reduced to a common shape (customer ids, names and kinds, their
contacts' names, their interactions' ids and subjects) that must be equal.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from crmgraph.schema.ids import decode_id

CRMGRAPH = "crmgraph"
POSTGRAPHILE = "postgraphile"

NESTED_CUSTOMERS = 50
NESTED_INTERACTIONS = 5
TIMELINE_INTERACTIONS = 20
SEARCH_RESULTS = 20
SEARCH_TEXT = "7"
SEARCH_KIND = "client"

# crmgraph's orders (queries.customer_page, interaction_pages, the contacts loader)
# spelled in PostGraphile's orderBy
PG_CUSTOMER_ORDER = "[CREATED_AT_DESC, ROW_ID_DESC]"
PG_INTERACTION_ORDER = "[OCCURRED_AT_DESC, ROW_ID_DESC]"
PG_CONTACT_ORDER = "[IS_PRIMARY_DESC, NAME_ASC, ROW_ID_ASC]"
PG_ACTIVE = "deletedAt: {isNull: true}"

INTERACTION_FIELDS = "id channel direction occurredAt subject outcome satisfaction amount"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    documents: dict[str, str]  # server kind -> GraphQL document

    def body(self, server: str) -> bytes:
        return json.dumps({"query": self.documents[server]}).encode()


def scenarios(timeline_customer: int) -> list[Scenario]:
    """The scenarios; ``timeline_customer`` is the id of a customer with
    at least TIMELINE_INTERACTIONS interactions."""
    gid = base64.b64encode(f"Customer:{timeline_customer}".encode()).decode()

    def nested_crmgraph(extra: str) -> str:
        """The nested list, with ``extra`` fields selected on each customer."""
        return (
            f"{{ customers(first: {NESTED_CUSTOMERS}) {{ nodes {{ id name email kind "
            "createdAt contacts { name jobTitle } "
            f"interactions(first: {NESTED_INTERACTIONS}) {{ nodes {{ id channel "
            f"occurredAt subject }} }} {extra}}} }} }}"
        )

    nested_postgraphile = (
        f"{{ allCustomers(first: {NESTED_CUSTOMERS}, filter: {{{PG_ACTIVE}}}, "
        f"orderBy: {PG_CUSTOMER_ORDER}) {{ nodes {{ id name email kind createdAt "
        f"contactsByCustomer(orderBy: {PG_CONTACT_ORDER}) "
        "{ nodes { name jobTitle } } "
        f"interactionsByCustomer(first: {NESTED_INTERACTIONS}, "
        f"orderBy: {PG_INTERACTION_ORDER}) "
        "{ nodes { id channel occurredAt subject } } "
        "} } }"
    )
    return [
        Scenario(
            "nested",
            f"{NESTED_CUSTOMERS} customers, their contacts, "
            f"{NESTED_INTERACTIONS} interactions each",
            {
                CRMGRAPH: nested_crmgraph(""),
                POSTGRAPHILE: nested_postgraphile,
            },
        ),
        Scenario(
            "mixed",
            "nested, plus each customer's consents in force (0 to 3 each; PostGraphile "
            "has no such field and answers nested)",
            {
                CRMGRAPH: nested_crmgraph("consents { channel purpose granted } "),
                POSTGRAPHILE: nested_postgraphile,
            },
        ),
        Scenario(
            "timeline",
            f"one customer and its {TIMELINE_INTERACTIONS} newest interactions",
            {
                CRMGRAPH: (
                    f'{{ customer(id: "{gid}") {{ id name email kind '
                    f"interactions(first: {TIMELINE_INTERACTIONS}) {{ nodes {{ "
                    f"{INTERACTION_FIELDS} }} }} }} }}"
                ),
                POSTGRAPHILE: (
                    f"{{ customerByRowId(rowId: {timeline_customer}) {{ id name email kind "
                    f"interactionsByCustomer(first: {TIMELINE_INTERACTIONS}, "
                    f"orderBy: {PG_INTERACTION_ORDER}) {{ nodes {{ {INTERACTION_FIELDS} }} }} }} }}"
                ),
            },
        ),
        Scenario(
            "search",
            f"{SEARCH_RESULTS} {SEARCH_KIND}s whose name or e-mail contains {SEARCH_TEXT!r}",
            {
                CRMGRAPH: (
                    f"{{ customers(first: {SEARCH_RESULTS}, filter: {{ search: "
                    f'"{SEARCH_TEXT}", kinds: [{SEARCH_KIND.upper()}] }}) {{ nodes {{ id name '
                    "email kind createdAt } } }"
                ),
                POSTGRAPHILE: (
                    f"{{ allCustomers(first: {SEARCH_RESULTS}, filter: {{{PG_ACTIVE}, "
                    f'kind: {{equalTo: "{SEARCH_KIND}"}}, or: [{{name: {{includesInsensitive: '
                    f'"{SEARCH_TEXT}"}}}}, {{email: {{includesInsensitive: "{SEARCH_TEXT}"}}}}]}}, '
                    f"orderBy: {PG_CUSTOMER_ORDER}) "
                    "{ nodes { id name email kind createdAt } } }"
                ),
            },
        ),
        Scenario(
            "typename",
            "{ __typename }",
            {CRMGRAPH: "{ __typename }", POSTGRAPHILE: "{ __typename }"},
        ),
    ]


def row_id(global_id: str) -> int:
    """The primary key in either server's global ID."""
    if base64.b64decode(global_id).startswith(b"["):  # PostGraphile: ["Customer", 1]
        return int(json.loads(base64.b64decode(global_id))[-1])
    return decode_id(global_id)[1]


def common_shape(server: str, answer: dict[str, Any]) -> Any:
    """What the scenario's answer says, the same for both servers when they
    return the same data; raises on GraphQL errors or a missing answer."""
    if answer.get("errors") or "data" not in answer:
        raise ValueError(f"{server} answered with errors: {answer.get('errors')}")
    data = answer["data"]
    if "__typename" in data:
        return data
    if server == CRMGRAPH:
        customers = data["customers"]["nodes"] if "customers" in data else [data["customer"]]
    else:
        customers = (
            data["allCustomers"]["nodes"] if "allCustomers" in data else [data["customerByRowId"]]
        )
    return [customer_shape(c) for c in customers]


def customer_shape(customer: dict[str, Any]) -> dict[str, Any]:
    contacts = customer.get("contacts", customer.get("contactsByCustomer"))
    interactions = customer.get("interactions", customer.get("interactionsByCustomer"))
    return {
        "id": row_id(customer["id"]),
        "name": customer["name"],
        "kind": customer["kind"].lower(),
        "contacts": None if contacts is None else [c["name"] for c in nodes(contacts)],
        "interactions": None
        if interactions is None
        else [(row_id(i["id"]), i["subject"]) for i in nodes(interactions)],
    }


def nodes(value: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return value["nodes"] if isinstance(value, dict) else value
