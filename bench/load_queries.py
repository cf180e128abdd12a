"""The GraphQL load benchmark's scenarios: one document per server for each,
and what both answers must agree on before anything is timed.

crmgraph and PostGraphile name things differently (``customers`` against
``allCustomers``, ``interactions`` against ``interactionsByCustomer``, global
IDs ``Customer:1`` against ``["Customer",1]``), so each scenario holds one
document per server, asking for the same rows in the same order, and the
answers are reduced to a common shape (every field asked for, in crmgraph's
terms: ids as primary keys, stages from PostGraphile's roles, Client fields
from its ``attributes`` column, related rows field by field, the connection's
totalCount, hasNextPage and cursors) that must be equal.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
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
PG_CONTACT_ORDER = "[IS_PRIMARY_DESC, NAME_FOLDED_ASC, ROW_ID_ASC]"
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
        found = data["customers"] if "customers" in data else data["customer"]
    else:
        found = data["allCustomers"] if "allCustomers" in data else data["customerByRowId"]
    if "customers" not in data and "allCustomers" not in data:
        return [customer_shape(found)]
    customers = [customer_shape(c) for c in nodes(found)]
    if "totalCount" not in found and "pageInfo" not in found:
        return customers
    page = found.get("pageInfo", {})
    edges = found.get("edges", [])
    return {
        "totalCount": found.get("totalCount"),
        "hasNextPage": page.get("hasNextPage"),
        # cursors differ between servers: each edge has one, the last is endCursor
        "cursors": [bool(e["cursor"]) for e in edges],
        "endCursorIsLast": bool(edges) and page.get("endCursor") == edges[-1]["cursor"],
        "customers": customers,
    }


def customer_shape(customer: dict[str, Any]) -> dict[str, Any]:
    """The fields asked for, in crmgraph's terms (PostGraphile's roles, owner,
    attributes and relations mapped onto them); absent fields stay absent."""
    c = customer
    shape: dict[str, Any] = {"id": row_id(c["id"]), "name": c["name"]}
    for key in ("email", "phone", "version"):
        if key in c:
            shape[key] = c[key]
    if "kind" in c:
        shape["kind"] = c["kind"].lower()
    for key in ("createdAt", "updatedAt"):
        if key in c:
            shape[key] = instant(c[key])
    if "stage" in c:
        shape["stage"] = c["stage"]
    if "customerRolesByCustomer" in c:
        roles = {r["kind"]: r["stage"] for r in nodes(c["customerRolesByCustomer"])}
        # without its kind asked for, the document selects the one role wanted
        only = next(iter(roles.values())) if len(roles) == 1 else None
        shape["stage"] = roles.get(c["kind"]) if "kind" in c else only
    owner = c.get("owner", c.get("crmUserByOwner", ()))
    if owner != ():
        shape["owner"] = owner
    if "attributes" in c:  # PostGraphile: the JSON column crmgraph's Client fields come from
        attributes = c["attributes"] or {}
        c = {
            **c,
            "segment": attributes.get("segment"),
            "industry": attributes.get("industry"),
            "annualRevenue": attributes.get("annual_revenue"),
        }
    for key in ("segment", "industry"):
        if key in c:
            shape[key] = c[key]
    if "annualRevenue" in c:
        revenue = c["annualRevenue"]
        shape["annualRevenue"] = None if revenue is None else Decimal(str(revenue))
    related = {
        "contacts": c.get("contacts", c.get("contactsByCustomer")),
        "interactions": c.get("interactions", c.get("interactionsByCustomer")),
        "needs": c.get("needs", c.get("needsByCustomer")),
        "stageHistory": c.get("stageHistory", c.get("stageChangesByCustomer")),
    }
    for key, value in related.items():
        if value is not None:
            shape[key] = [row_shape(row) for row in nodes(value)]
    if isinstance(related["interactions"], dict) and "edges" in related["interactions"]:
        shape["interactionCursors"] = [bool(e["cursor"]) for e in related["interactions"]["edges"]]
    return shape


def row_shape(row: dict[str, Any]) -> tuple[Any, ...]:
    """A related row's fields, ids as primary keys, instants and amounts parsed."""
    values = []
    for key, value in sorted(row.items()):
        if key == "id":
            value = row_id(value)
        elif key in ("at", "occurredAt") and value is not None:
            value = instant(value)
        elif key == "amount" and value is not None:
            value = Decimal(str(value))
        values.append((key, value))
    return tuple(values)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def nodes(value: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A connection's rows (nodes or edges' nodes), or a list as it is."""
    if isinstance(value, list):
        return value
    if "nodes" in value:
        return value["nodes"]
    return [edge["node"] for edge in value["edges"]]
