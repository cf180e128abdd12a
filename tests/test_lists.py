"""Connections: keyset pagination, limits, filters that reach related records,
nested lists and the SQL statements they cost."""

from __future__ import annotations

from typing import Any

import pytest

from crmgraph.db import text_keys
from tests.conftest import GraphQLFailure, LiveServer
from tests.helpers import add_contact, create_customer, log_interaction, record_need

PAGE = """
query($first: Int, $after: String, $order: CustomerOrder) {
  customers(first: $first, after: $after, orderBy: $order) {
    edges { cursor node { id name createdAt updatedAt } }
    pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
    totalCount
  }
}
"""

NAMES = [
    "Zeta",
    "alpha",
    "Mu",
    "Beta",
    "Omega",
    "Eta",
    "Iota",
    "Kappa",
    "Lambda",
    "Nu",
    "Xi",
    "Omicron",
    "Pi",
    "Rho",
    "Sigma",
    "Tau",
    "Upsilon",
    "Phi",
    "Chi",
    "Psi",
    "Mu",
]


def walk(server: LiveServer, first: int, order: dict[str, str] | None) -> list[dict]:
    seen: list[dict] = []
    after = None
    for _ in range(100):
        page = server.gql(PAGE, {"first": first, "after": after, "order": order})["customers"]
        seen.extend(edge["node"] for edge in page["edges"])
        assert page["totalCount"] == len(NAMES)
        assert len(page["edges"]) <= first
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(
    "order",
    [
        None,
        {"field": "NAME", "direction": "ASC"},
        {"field": "NAME", "direction": "DESC"},
        {"field": "UPDATED_AT", "direction": "ASC"},
        {"field": "CREATED_AT", "direction": "ASC"},
    ],
)
def test_paging_walks_everything_once_in_order(server: LiveServer, order: dict | None) -> None:
    created = [create_customer(server, name=name)["id"] for name in NAMES]
    nodes = walk(server, 4, order)
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids)) == len(created)  # no duplicates, no gaps
    assert set(ids) == set(created)
    field = (order or {}).get("field", "CREATED_AT")
    key = {"NAME": "name", "UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt"}[field]
    descending = (order or {}).get("direction", "DESC") == "DESC"
    values = [n[key] for n in nodes]
    if key != "name":  # ISO timestamps in one zone sort as text
        assert values == sorted(values, reverse=descending)
    else:  # as people read them: case and accents aside (crmgraph.db.text_keys)
        assert values == sorted(values, key=text_keys.sort_key, reverse=descending)


def test_page_size_limits_and_bad_cursor(server: LiveServer) -> None:
    create_customer(server, name="Only")
    for first in (1000, 101, -1):
        body = server.post(f"{{ customers(first: {first}) {{ edges {{ node {{ id }} }} }} }}")
        assert body["data"] is None
        error = body["errors"][0]
        assert "between 0 and 100" in error["message"]
        assert error["extensions"]["code"] == "PAGE_SIZE_OUT_OF_RANGE"
    body = server.post('{ customers(after: "garbage") { edges { node { id } } } }')
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    first_page = server.gql(PAGE, {"first": 1})["customers"]
    cursor = first_page["pageInfo"]["endCursor"]
    body = server.post(
        "query($a: String) { customers(after: $a, orderBy: {field: NAME}) { edges { cursor } } }",
        {"a": cursor},
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"  # cursor of another order
    nested = server.post(
        "{ customers { edges { node { interactions(first: 500) { edges { cursor } } } } } }"
    )
    assert nested["errors"][0]["extensions"]["code"] == "PAGE_SIZE_OUT_OF_RANGE"


def ids_of(server: LiveServer, filter_: dict) -> set[str]:
    data = server.gql(
        "query($f: CustomerFilter) { customers(first: 100, filter: $f) { edges { node { id } } totalCount } }",
        {"f": filter_},
    )["customers"]
    assert data["totalCount"] == len(data["edges"])
    return {e["node"]["id"] for e in data["edges"]}


def test_filters_reach_related_records(server: LiveServer) -> None:
    acme = create_customer(server, name="Acme Steel", email="buy@acme.com")
    beta = create_customer(server, name="Beta Foods", email="hola@beta.es")
    gamma = create_customer(server, name="Gamma 100% Pure_Water")
    log_interaction(server, acme["id"], channel="PHONE", occurredAt="2026-03-10T10:00:00Z")
    log_interaction(server, beta["id"], channel="EMAIL", occurredAt="2026-05-01T09:00:00+02:00")
    add_contact(server, beta["id"], name="Lucía Fernández", email="lucia@beta.es")
    record_need(server, gamma["id"], title="Filters", status="IN_PROGRESS")
    record_need(server, acme["id"], title="Old", status="MET")

    assert ids_of(server, {"search": "ACME"}) == {acme["id"]}
    assert ids_of(server, {"search": "beta.es"}) == {beta["id"]}
    assert ids_of(server, {"search": "100%"}) == {gamma["id"]}  # LIKE wildcards are literal
    assert ids_of(server, {"search": "a_1"}) == set()  # would match "a 1" as a wildcard
    assert ids_of(server, {"search": "e_w"}) == {gamma["id"]}
    assert ids_of(
        server, {"kinds": ["CLIENT"], "stages": ["interest"], "phases": ["ENGAGEMENT"]}
    ) == {
        acme["id"],
        beta["id"],
        gamma["id"],
    }
    assert ids_of(server, {"phases": ["RETENTION"]}) == set()
    assert ids_of(server, {"hasInteraction": {"channels": ["PHONE"]}}) == {acme["id"]}
    assert ids_of(
        server,
        {"hasInteraction": {"since": "2026-04-01T00:00:00Z", "until": "2026-06-01T00:00:00Z"}},
    ) == {beta["id"]}
    assert ids_of(server, {"hasInteraction": {"until": "2026-01-01T00:00:00Z"}}) == set()
    assert ids_of(server, {"contactSearch": "lucía"}) == {beta["id"]}
    assert ids_of(server, {"hasOpenNeed": True}) == {gamma["id"]}
    assert ids_of(server, {"hasOpenNeed": False}) == {acme["id"], beta["id"]}
    assert ids_of(
        server, {"createdAfter": "2000-01-01T00:00:00Z", "createdBefore": "2100-01-01T00:00:00Z"}
    ) == {
        acme["id"],
        beta["id"],
        gamma["id"],
    }
    assert ids_of(server, {"updatedAfter": "2100-01-01T00:00:00Z"}) == set()


def test_owner_filter(server: LiveServer) -> None:
    import base64

    ghost = base64.b64encode(b"User:424242").decode()
    create_customer(server, name="Unowned")
    assert ids_of(server, {"ownerIds": [ghost]}) == set()
    with pytest.raises(GraphQLFailure):
        ids_of(server, {"ownerIds": ["not-an-id"]})


def test_interactions_connection_newest_first_with_filters(server: LiveServer) -> None:
    c = create_customer(server, name="Chatty")
    times = [f"2026-0{m}-01T12:00:00Z" for m in range(1, 8)]
    for i, at in enumerate(times):
        log_interaction(
            server,
            c["id"],
            occurredAt=at,
            channel="EMAIL" if i % 2 else "PHONE",
            subject=f"s{i}",
            satisfaction=(i % 5) + 1,
            amount="10.5",
        )
    query = """query($id: ID!, $after: String, $f: InteractionFilter) { customer(id: $id) {
      interactions(first: 3, after: $after, filter: $f) {
        edges { node { subject occurredAt amount } } pageInfo { hasNextPage endCursor } } } }"""
    subjects: list[str] = []
    after = None
    while True:
        conn = server.gql(query, {"id": c["id"], "after": after})["customer"]["interactions"]
        subjects += [e["node"]["subject"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert subjects == [f"s{i}" for i in reversed(range(7))]
    emails = server.gql(query, {"id": c["id"], "f": {"channels": ["EMAIL"]}})
    assert [e["node"]["subject"] for e in emails["customer"]["interactions"]["edges"]] == [
        "s5",
        "s3",
        "s1",
    ]
    assert emails["customer"]["interactions"]["edges"][0]["node"]["amount"] == "10.50"


def logging_refused(server: LiveServer, customer_id: str, **fields: Any) -> list[dict[str, str]]:
    """The user errors of logging an outbound e-mail with ``fields``."""
    values = {"customerId": customer_id, "channel": "EMAIL", "direction": "OUTBOUND", **fields}
    return server.gql(
        """mutation($input: LogInteractionInput!) { logInteraction(input: $input) {
             interaction { id } userErrors { field code } } }""",
        {"input": values},
    )["logInteraction"]["userErrors"]


def test_interaction_validation(server: LiveServer) -> None:
    c = create_customer(server, name="Rated")
    other = create_customer(server, name="Other")
    contact = add_contact(server, other["id"])
    refused = logging_refused(
        server,
        c["id"],
        subject="",
        satisfaction=6,
        amount="-1",
        occurredAt="2999-01-01T00:00:00Z",
    )
    assert {(e["field"], e["code"]) for e in refused} == {
        ("subject", "REQUIRED"),
        ("satisfaction", "OUT_OF_RANGE"),
        ("amount", "OUT_OF_RANGE"),
        ("occurredAt", "OUT_OF_RANGE"),
    }
    wrong_contact = logging_refused(server, c["id"], subject="x", contactId=contact["id"])
    assert wrong_contact == [{"field": "contactId", "code": "INVALID"}]
    count = server.gql(
        "query($id: ID!) { customer(id: $id) { interactions { edges { cursor } } } }",
        {"id": c["id"]},
    )
    assert count["customer"]["interactions"]["edges"] == []


def test_contacts_and_needs(server: LiveServer) -> None:
    c = create_customer(server, name="People Inc")
    first = add_contact(server, c["id"], name="Ana", isPrimary=True, phone="+1 650 253 0000")
    assert first["phone"] == "+16502530000"
    second = add_contact(server, c["id"], name="Bruno", isPrimary=True)
    contacts = server.gql(
        "query($id: ID!) { customer(id: $id) { contacts { name isPrimary } } }", {"id": c["id"]}
    )["customer"]["contacts"]
    assert contacts == [{"name": "Bruno", "isPrimary": True}, {"name": "Ana", "isPrimary": False}]
    upd = server.gql(
        """mutation($input: UpdateContactInput!) { updateContact(input: $input) {
            contact { name jobTitle email } userErrors { field code } } }""",
        {"input": {"id": second["id"], "jobTitle": "CFO", "email": "bad"}},
    )["updateContact"]
    assert upd["userErrors"] == [{"field": "email", "code": "INVALID_EMAIL"}]
    need = record_need(server, c["id"], title="Cement", volume=20, unit="t", priority="HIGH")
    assert (need["status"], need["priority"]) == ("OPEN", "HIGH")
    moved = server.gql(
        """mutation($input: UpdateNeedInput!) { updateNeed(input: $input) {
            need { status volume } userErrors { field code } } }""",
        {"input": {"id": need["id"], "status": "MET", "volume": 25}},
    )["updateNeed"]
    assert moved == {"need": {"status": "MET", "volume": 25.0}, "userErrors": []}
    bad = server.gql(
        """mutation($input: UpdateNeedInput!) { updateNeed(input: $input) {
            need { status } userErrors { field code } } }""",
        {"input": {"id": need["id"], "status": None, "volume": -3}},
    )["updateNeed"]
    assert {(e["field"], e["code"]) for e in bad["userErrors"]} == {
        ("status", "REQUIRED"),
        ("volume", "OUT_OF_RANGE"),
    }
    open_only = server.gql(
        "query($id: ID!) { customer(id: $id) { needs(status: [OPEN]) { id } } }", {"id": c["id"]}
    )
    assert open_only["customer"]["needs"] == []
