"""Consent on both engines over a real server: outbound marketing on a channel
without consent is refused (NO_CONSENT) with nothing written; grants and
withdrawals are kept as history, the newest in force; a contact's own
statement decides over the customer's; other interactions need none;
recording consent needs customer.write."""

from __future__ import annotations

import asyncio
from typing import Any

from crmgraph.testing import LiveServer, settings_for, user_key
from tests.helpers import add_contact, create_customer

LOG = """
mutation($input: LogInteractionInput!) {
  logInteraction(input: $input) { interaction { id purpose } userErrors { field message code } }
}
"""
RECORD = """
mutation($input: RecordConsentInput!) {
  recordConsent(input: $input) {
    consent { id contactId channel purpose granted source evidence at recordedBy { name } }
    userErrors { field message code }
  }
}
"""
CONSENTS = """
query($id: ID!) {
  customer(id: $id) {
    consents { contactId channel purpose granted }
    consentHistory { channel purpose granted source evidence }
  }
}
"""


def log(server: LiveServer, customer: str, **fields: Any) -> dict[str, Any]:
    values = {
        "customerId": customer,
        "channel": "EMAIL",
        "direction": "OUTBOUND",
        "subject": "Spring offer",
        "purpose": "MARKETING",
        **fields,
    }
    return server.gql(LOG, {"input": values})["logInteraction"]


def consent_input(customer: str, granted: bool, **fields: Any) -> dict[str, Any]:
    """recordConsent's variables: e-mail marketing, from a web form unless ``fields`` say."""
    values = {
        "customerId": customer,
        "channel": "EMAIL",
        "purpose": "MARKETING",
        "granted": granted,
        "source": "WEB_FORM",
        **fields,
    }
    return {"input": values}


def record(server: LiveServer, customer: str, granted: bool, **fields: Any) -> dict[str, Any]:
    payload = server.gql(RECORD, consent_input(customer, granted, **fields))["recordConsent"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["consent"]


def codes(payload: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


def written(server: LiveServer, customer: str) -> tuple[int, list[str]]:
    """How many interactions the customer has, and its audit actions."""
    data = server.gql(
        "query($id: ID!) { customer(id: $id) { interactions(first: 50) { nodes { id } } } "
        "auditTrail(customerId: $id, first: 50) { edges { node { action } } } }",
        {"id": customer},
    )
    actions = [e["node"]["action"] for e in data["auditTrail"]["edges"]]
    return len(data["customer"]["interactions"]["nodes"]), actions


def test_marketing_without_consent_is_refused_and_nothing_is_written(server: LiveServer) -> None:
    c = create_customer(server, name="Gus Pinto", email="gus@example.com")["id"]
    before = written(server, c)
    refused = log(server, c)
    assert codes(refused) == [("purpose", "NO_CONSENT")]
    assert "not consented to EMAIL marketing" in refused["userErrors"][0]["message"]
    assert written(server, c) == before

    consent = record(server, c, True, evidence="newsletter form 81")
    assert (consent["granted"], consent["source"], consent["contactId"]) == (True, "WEB_FORM", None)
    assert log(server, c)["userErrors"] == []
    # another channel still has none
    assert codes(log(server, c, channel="PHONE")) == [("purpose", "NO_CONSENT")]

    record(server, c, False, source="EMAIL", evidence="unsubscribe link")
    refused = log(server, c)
    assert codes(refused) == [("purpose", "NO_CONSENT")]
    assert "withdrew consent" in refused["userErrors"][0]["message"]


def test_what_needs_no_consent(server: LiveServer) -> None:
    c = create_customer(server, name="Hana Ruiz")["id"]
    for fields in (
        {"direction": "INBOUND"},  # they wrote to us about an offer
        {"purpose": "SERVICE"},
        {"purpose": None},  # not stated: existing clients keep working
    ):
        payload = log(server, c, **fields)
        assert payload["userErrors"] == [], (fields, payload)
    purposes = [log(server, c, purpose="SERVICE")["interaction"]["purpose"]]
    assert purposes == ["SERVICE"]


def test_history_is_kept_and_the_newest_statement_is_in_force(server: LiveServer) -> None:
    c = create_customer(server, name="Ivo Lang")["id"]
    record(server, c, True)
    record(server, c, False, source="PHONE")
    record(
        server, c, True, channel="LETTER", purpose="SERVICE", source="PAPER", evidence="letter 3"
    )
    found = server.gql(CONSENTS, {"id": c})["customer"]
    assert found["consents"] == [
        {"contactId": None, "channel": "EMAIL", "purpose": "MARKETING", "granted": False},
        {"contactId": None, "channel": "LETTER", "purpose": "SERVICE", "granted": True},
    ]
    assert [(h["channel"], h["granted"], h["source"]) for h in found["consentHistory"]] == [
        ("LETTER", True, "PAPER"),
        ("EMAIL", False, "PHONE"),
        ("EMAIL", True, "WEB_FORM"),
    ]
    _, actions = written(server, c)
    assert actions.count("consent.changed") == 3


def test_a_contacts_own_statement_decides(server: LiveServer) -> None:
    c = create_customer(server, name="Jade Corp")["id"]
    ana = add_contact(server, c, name="Ana Sol")["id"]
    ben = add_contact(server, c, name="Ben Sol")["id"]
    record(server, c, True)  # the company agreed to e-mail marketing
    record(server, c, False, contactId=ana, source="EMAIL")  # Ana did not
    refused = log(server, c, contactId=ana)
    assert codes(refused) == [("purpose", "NO_CONSENT")]
    assert "the contact withdrew" in refused["userErrors"][0]["message"]
    assert log(server, c, contactId=ben)["userErrors"] == []  # Ben said nothing: the company's
    other = create_customer(server, name="Other Corp")["id"]
    stranger = add_contact(server, other, name="Cy Stranger")["id"]
    payload = server.gql(RECORD, consent_input(c, True, contactId=stranger, source="API"))[
        "recordConsent"
    ]
    assert codes(payload) == [("contactId", "INVALID")]


def test_recording_consent_needs_customer_write(server: LiveServer, database_url: str) -> None:
    c = create_customer(server, name="Kim Bay")["id"]
    viewer = asyncio.run(user_key(settings_for(database_url), "viewer"))
    payload = server.post(RECORD, consent_input(c, True, source="API"), key=viewer)["data"][
        "recordConsent"
    ]
    assert codes(payload) == [(None, "FORBIDDEN")]
    assert server.gql(CONSENTS, {"id": c})["customer"]["consentHistory"] == []
    future = server.gql(RECORD, consent_input(c, True, source="API", at="2999-01-01T00:00:00Z"))[
        "recordConsent"
    ]
    assert codes(future) == [("at", "OUT_OF_RANGE")]
