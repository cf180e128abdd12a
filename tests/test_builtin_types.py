"""Every built-in customer type: a legal walk through its lifecycle, each
guard refusing with its reason (nothing written), and the history recorded."""

from __future__ import annotations

from typing import Any

from tests.conftest import LiveServer
from tests.helpers import log_interaction, record_need

CREATE = """mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
  customer { id __typename version stage } userErrors { field message code } } }"""
MOVE = """mutation($input: TransitionCustomerInput!) { transitionCustomer(input: $input) {
  customer { id __typename stage version } userErrors { field message code } } }"""
UPDATE = """mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) {
  customer { version } userErrors { field message code } } }"""
LINK = """mutation($input: LinkCustomersInput!) { linkCustomers(input: $input) {
  relationship { id kind fromCustomer { id } toCustomer { id } } userErrors { field message code } } }"""
STATE = """query($id: ID!) { customer(id: $id) { __typename stage version
  stageHistory { fromStage toStage }
  allowedTransitions { toStage allowed reasons convertsTo } } }"""


def create(server: LiveServer, kind: str, name: str, **attributes: Any) -> dict:
    key = {"AGENDA": "agenda"}.get(kind, kind.lower())
    variables: dict[str, Any] = {"kind": kind, "name": name}
    if attributes:
        variables[key] = attributes
    out = server.gql(CREATE, {"input": variables})["createCustomer"]
    assert out["userErrors"] == [], out["userErrors"]
    return out["customer"]


class Walker:
    """Moves one customer and keeps track of its version."""

    def __init__(self, server: LiveServer, customer: dict) -> None:
        self.server, self.id, self.version = server, customer["id"], customer["version"]

    def move(self, to: str) -> dict:
        out = self.server.gql(
            MOVE, {"input": {"id": self.id, "toStage": to, "expectedVersion": self.version}}
        )["transitionCustomer"]
        assert out["userErrors"] == [], out["userErrors"]
        self.version = out["customer"]["version"]
        return out["customer"]

    def refused(self, to: str) -> list[str]:
        """The reasons a move is refused; asserts nothing changed."""
        before = self.server.gql(STATE, {"id": self.id})["customer"]
        out = self.server.gql(
            MOVE, {"input": {"id": self.id, "toStage": to, "expectedVersion": self.version}}
        )["transitionCustomer"]
        assert out["customer"] is None
        assert {e["code"] for e in out["userErrors"]} == {"TRANSITION_REFUSED"}
        after = self.server.gql(STATE, {"id": self.id})["customer"]
        assert (after["stage"], after["version"], after["stageHistory"]) == (
            before["stage"], before["version"], before["stageHistory"],
        )  # fmt: skip
        return [e["message"] for e in out["userErrors"]]

    def update(self, kind_key: str, **attributes: Any) -> None:
        out = self.server.gql(
            UPDATE,
            {"input": {"id": self.id, "expectedVersion": self.version, kind_key: attributes}},
        )["updateCustomer"]
        assert out["userErrors"] == [], out["userErrors"]
        self.version = out["customer"]["version"]

    def history(self) -> list[tuple[str | None, str]]:
        state = self.server.gql(STATE, {"id": self.id})["customer"]
        return [(h["fromStage"], h["toStage"]) for h in state["stageHistory"]]


def link(server: LiveServer, source: str, target: str, kind: str) -> dict:
    out = server.gql(LINK, {"input": {"fromId": source, "toId": target, "kind": kind}})
    return out["linkCustomers"]


def test_every_builtin_type_is_in_the_schema(server: LiveServer) -> None:
    kinds = server.gql("{ customerKinds { kind typeName plugin } }")["customerKinds"]
    assert {k["typeName"] for k in kinds} == {
        "AgendaContact", "Beneficiary", "Client", "Competitor", "Employee", "Guarantor",
        "Prospect", "Supplier",
    }  # fmt: skip
    assert all(k["plugin"].startswith("crmgraph.plugins.") for k in kinds)


def test_prospect_qualifies_then_converts_into_a_client(server: LiveServer) -> None:
    p = Walker(server, create(server, "PROSPECT", "Lead Co", source="WEB"))
    p.move("contacted")
    assert "at least one logged interaction" in p.refused("qualified")[0]
    log_interaction(server, p.id, subject="Discovery call")
    p.move("qualified")
    assert "a prospect that buys becomes a client" in p.refused("converted")[0]
    options = server.gql(STATE, {"id": p.id})["customer"]["allowedTransitions"]
    convert = next(o for o in options if o["toStage"] == "converted")
    assert convert["allowed"] is False and convert["convertsTo"] == "CLIENT"
    log_interaction(server, p.id, subject="First order", amount="99.90")
    converted = p.move("converted")
    assert converted["id"] == p.id  # same ID
    assert (converted["__typename"], converted["stage"]) == ("Client", "active")
    data = server.gql(
        "query($id: ID!) { customer(id: $id) { kind interactions { edges { node { subject } } } "
        "stageHistory { fromStage toStage } } }",
        {"id": p.id},
    )["customer"]
    assert data["kind"] == "CLIENT"
    assert [e["node"]["subject"] for e in data["interactions"]["edges"]] == [
        "First order", "Discovery call",
    ]  # fmt: skip
    assert [(h["fromStage"], h["toStage"]) for h in data["stageHistory"]] == [
        (None, "new"), ("new", "contacted"), ("contacted", "qualified"),
        ("qualified", "converted"), (None, "active"),
    ]  # fmt: skip
    assert p.refused("bogus")  # now a client: prospect stages no longer apply


def test_guarantor_needs_amount_and_guaranteed_client(server: LiveServer) -> None:
    client = create(server, "CLIENT", "Borrower")
    prospect = create(server, "PROSPECT", "Not a client")
    g = Walker(server, create(server, "GUARANTOR", "Avalista"))
    reasons = g.refused("verified")
    assert len(reasons) == 2
    assert "guaranteed amount" in reasons[0] and "'guarantees' relationship" in reasons[1]
    wrong = link(server, g.id, prospect["id"], "guarantees")
    assert wrong["userErrors"][0]["field"] == "toId"
    assert link(server, g.id, client["id"], "guarantees")["userErrors"] == []
    assert link(server, g.id, client["id"], "guarantees")["userErrors"][0]["code"] == "DUPLICATE"
    g.update("guarantor", guaranteedAmount="25000")
    g.move("verified")
    g.move("active")
    g.move("released")
    assert g.history()[-3:] == [
        ("proposed", "verified"),
        ("verified", "active"),
        ("active", "released"),
    ]


def test_beneficiary_shares_may_not_exceed_one_hundred_percent(server: LiveServer) -> None:
    holder = create(server, "CLIENT", "Policy holder")
    first = Walker(server, create(server, "BENEFICIARY", "Hija", sharePercent="60"))
    second = Walker(server, create(server, "BENEFICIARY", "Hijo", sharePercent="50"))
    assert "'beneficiary_of' relationship" in first.refused("confirmed")[0]
    for b in (first, second):
        assert link(server, b.id, holder["id"], "beneficiary_of")["userErrors"] == []
    first.move("confirmed")
    reason = second.refused("confirmed")[0]
    assert "110" in reason and "more than 100%" in reason
    second.update("beneficiary", sharePercent="40")
    second.move("confirmed")
    raise_share = server.gql(
        UPDATE, {"input": {"id": first.id, "expectedVersion": first.version,
                           "beneficiary": {"sharePercent": "70"}}},
    )["updateCustomer"]  # fmt: skip
    assert raise_share["userErrors"][0]["field"] == "beneficiary.sharePercent"
    first.move("active")
    first.move("ended")


def test_employee_needs_title_and_hire_date(server: LiveServer) -> None:
    e = Walker(server, create(server, "EMPLOYEE", "Nuevo Empleado", salary="30000"))
    e.move("onboarding")
    reasons = e.refused("active")
    assert reasons == ["becoming active needs a job title", "becoming active needs a hire date"]
    e.update("employee", jobTitle="Analyst", hireDate="2099-01-01")
    assert "before the hire date" in e.refused("active")[0]
    e.update("employee", hireDate="2024-03-01")
    e.move("active")
    e.move("on_leave")
    e.move("active")
    e.move("departed")
    assert e.history()[-2:] == [("on_leave", "active"), ("active", "departed")]


def test_agenda_contact_archives_only_without_open_needs(server: LiveServer) -> None:
    a = Walker(server, create(server, "AGENDA", "Periodista", category="PRESS"))
    need = record_need(server, a.id, title="Interview")
    assert "no open needs" in a.refused("archived")[0]
    server.gql(
        "mutation($id: ID!) { updateNeed(input: {id: $id, status: MET}) { userErrors { code } } }",
        {"id": need["id"]},
    )
    a.move("archived")
    a.move("active")
    assert a.history() == [(None, "active"), ("active", "archived"), ("archived", "active")]


def test_competitor_monitoring_and_alliance(server: LiveServer) -> None:
    c = Walker(server, create(server, "COMPETITOR", "Rival S.A.", marketShare="12.5"))
    assert "intelligence" in c.refused("monitored")[0]
    log_interaction(server, c.id, subject="Trade fair chat", channel="MEETING")
    c.move("monitored")
    assert "agreement" in c.refused("allied")[0]
    c.update("competitor", agreementSignedOn="2026-06-01")
    c.move("allied")
    c.move("dormant")
    c.move("monitored")
    assert len(c.history()) == 5


def test_supplier_approval_reports_every_reason(server: LiveServer) -> None:
    s = Walker(server, create(server, "SUPPLIER", "Proveedor"))
    reasons = s.refused("approved")
    assert reasons == [
        "approval needs a rating of at least 3 (it is None)",
        "approval needs a tax id",
    ]
    s.update("supplier", rating=2, taxId="B12345678")
    assert s.refused("approved") == ["approval needs a rating of at least 3 (it is 2)"]
    s.update("supplier", rating=4)
    s.move("approved")
    s.move("active")
    s.move("suspended")
    s.move("active")
    s.move("terminated")
    assert "cannot move from 'terminated'" in s.refused("active")[0]
    assert s.history()[-1] == ("active", "terminated")


def test_link_validation(server: LiveServer) -> None:
    a = create(server, "CLIENT", "A")
    out = link(server, a["id"], a["id"], "nonsense")
    assert {(e["field"], e["code"]) for e in out["userErrors"]} == {
        ("kind", "INVALID_CHOICE"), ("toId", "INVALID"),
    }  # fmt: skip
