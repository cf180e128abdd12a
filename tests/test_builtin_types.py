"""Every built-in customer type: a legal walk through its lifecycle, each
guard refusing with its reason (nothing written), a move that is not an edge
refused, and the history recorded with its reasons."""

from __future__ import annotations

from typing import Any

from tests.conftest import LiveServer
from tests.helpers import log_interaction, record_need

CREATE = """mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
  customer { id __typename version stage } userErrors { field message code } } }"""
MOVE = """mutation($input: TransitionCustomerInput!) { transitionCustomer(input: $input) {
  customer { id __typename stage version }
  stageChange { fromStage toStage reason }
  userErrors { field message code } } }"""
UPDATE = """mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) {
  customer { version } userErrors { field message code } } }"""
LINK = """mutation($input: LinkCustomersInput!) { linkCustomers(input: $input) {
  relationship { id kind fromCustomer { id } toCustomer { id } } userErrors { field message code } } }"""
STATE = """query($id: ID!) { customer(id: $id) { __typename stage version
  stageHistory { fromStage toStage reason }
  allowedTransitions { toStage allowed reasons convertsTo } } }"""

History = list[tuple[str | None, str, str | None]]
KIND_KEYS = {"AgendaContact": "agenda"}


def create(server: LiveServer, kind: str, name: str, **attributes: Any) -> dict:
    key = kind.lower()
    variables: dict[str, Any] = {"kind": kind, "name": name}
    if attributes:
        variables[key] = attributes
    out = server.gql(CREATE, {"input": variables})["createCustomer"]
    assert out["userErrors"] == [], out["userErrors"]
    return out["customer"]


class Walker:
    """Moves one customer, keeping its stage, version and the history the
    server should have recorded, so a refusal costs two round trips."""

    def __init__(self, server: LiveServer, customer: dict) -> None:
        self.server, self.id = server, customer["id"]
        self.stage, self.version = customer["stage"], customer["version"]
        self.kind = KIND_KEYS.get(customer["__typename"], customer["__typename"].lower())
        self.history: History = [(None, self.stage, "created")]

    def _send(self, to: str, reason: str | None) -> dict:
        move = {"id": self.id, "toStage": to, "expectedVersion": self.version, "reason": reason}
        return self.server.gql(MOVE, {"input": move})["transitionCustomer"]

    def move(self, to: str, reason: str | None = None) -> dict:
        out = self._send(to, reason)
        assert out["userErrors"] == [], out["userErrors"]
        assert out["customer"]["version"] == self.version + 1
        self.history.append((self.stage, to, reason))
        change = out["stageChange"]  # the move asked for, also when it converts the type
        assert change == dict(
            zip(("fromStage", "toStage", "reason"), self.history[-1], strict=True)
        )
        if out["customer"]["stage"] != to:  # a conversion: the new type's first stage follows
            converted = f"converted from {self.kind}"
            self.history.append((None, out["customer"]["stage"], reason or converted))
        self.stage, self.version = out["customer"]["stage"], out["customer"]["version"]
        return out["customer"]

    def refused(self, to: str) -> list[str]:
        """The reasons a move is refused, after checking nothing was written."""
        out = self._send(to, "should not be recorded")
        assert out["customer"] is None and out["stageChange"] is None
        assert {(e["field"], e["code"]) for e in out["userErrors"]} == {
            ("toStage", "TRANSITION_REFUSED")
        }
        self.check()
        return [e["message"] for e in out["userErrors"]]

    def state(self) -> dict:
        return self.server.gql(STATE, {"id": self.id})["customer"]

    def check(self) -> dict:
        """The stored stage, version and full history are what we expect."""
        state = self.state()
        assert (state["stage"], state["version"]) == (self.stage, self.version)
        recorded = [(h["fromStage"], h["toStage"], h["reason"]) for h in state["stageHistory"]]
        assert recorded == self.history
        return state

    def update(self, kind_key: str, **attributes: Any) -> list[dict]:
        out = self.server.gql(
            UPDATE,
            {"input": {"id": self.id, "expectedVersion": self.version, kind_key: attributes}},
        )["updateCustomer"]
        if out["userErrors"] == []:
            self.version = out["customer"]["version"]
        return out["userErrors"]


def options(state: dict) -> dict[str, tuple[bool, list[str]]]:
    return {o["toStage"]: (o["allowed"], o["reasons"]) for o in state["allowedTransitions"]}


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


def test_client_becomes_active_only_after_a_purchase(server: LiveServer) -> None:
    c = Walker(server, create(server, "CLIENT", "Comprador", segment="SMALL_BUSINESS"))
    assert c.refused("active") == [
        "Client cannot move from 'interest' to 'active'; from 'interest' it can move to: engaged"
    ]
    c.move("engaged", "replied to the campaign")
    c.move("negotiating")
    reasons = c.refused("active")
    assert reasons == ["becoming active needs a purchase: log an interaction with an amount first"]
    assert options(c.check()) == {"active": (False, reasons), "churned": (True, [])}
    log_interaction(server, c.id, subject="Quote sent")  # no amount: not a purchase
    assert c.refused("active") == reasons
    log_interaction(server, c.id, subject="First order", channel="STORE", amount="120.00")
    c.move("active", "first order")
    c.move("at_risk", "no order in 90 days")
    c.move("churned")
    c.move("engaged", "win-back campaign")
    c.check()


def test_prospect_qualifies_then_converts_into_a_client(server: LiveServer) -> None:
    p = Walker(server, create(server, "PROSPECT", "Lead Co", source="WEB", estimatedValue="5000"))
    assert "cannot move from 'new' to 'qualified'" in p.refused("qualified")[0]
    p.move("contacted")
    assert p.refused("qualified") == [
        "qualifying needs at least one logged interaction with the prospect"
    ]
    p.move("disqualified", "no budget this year")
    p.move("contacted", "budget approved after all")  # re-opened
    log_interaction(server, p.id, subject="Discovery call")
    p.move("qualified")
    purchase = "converting needs a purchase: a prospect that buys becomes a client"
    assert p.refused("converted") == [purchase]
    state = p.check()
    assert state["__typename"] == "Prospect"
    convert = next(o for o in state["allowedTransitions"] if o["toStage"] == "converted")
    assert convert == {
        "toStage": "converted", "allowed": False, "reasons": [purchase], "convertsTo": "CLIENT",
    }  # fmt: skip
    assert options(state)["disqualified"] == (True, [])

    log_interaction(server, p.id, subject="First order", amount="99.90")
    converted = p.move("converted")
    assert converted["id"] == p.id  # same record, same ID
    assert (converted["__typename"], converted["stage"]) == ("Client", "active")
    assert p.history[-2:] == [
        ("qualified", "converted", None), (None, "active", "converted from prospect"),
    ]  # fmt: skip
    data = server.gql(
        "query($id: ID!) { customer(id: $id) { kind ... on Prospect { source } "
        "interactions { edges { node { subject } } } } }",
        {"id": p.id},
    )["customer"]
    assert data["kind"] == "CLIENT" and "source" not in data
    assert [e["node"]["subject"] for e in data["interactions"]["edges"]] == [
        "First order", "Discovery call",
    ]  # fmt: skip
    state = p.check()  # the prospect's history is kept, the client's starts after it
    assert {o["toStage"] for o in state["allowedTransitions"]} == {"loyal", "expanding", "at_risk"}
    assert "'converted' is not a stage of Client" in p.refused("converted")[0]


def test_guarantor_needs_amount_and_guaranteed_client(server: LiveServer) -> None:
    client = create(server, "CLIENT", "Borrower")
    prospect = create(server, "PROSPECT", "Not a client")
    g = Walker(server, create(server, "GUARANTOR", "Avalista", guaranteeType="PERSONAL"))
    assert "cannot move from 'proposed' to 'active'" in g.refused("active")[0]
    assert g.refused("verified") == [
        "verifying needs a guaranteed amount greater than zero",
        "verifying needs a 'guarantees' relationship to a client",
    ]
    wrong = link(server, g.id, prospect["id"], "guarantees")
    assert wrong["relationship"] is None and wrong["userErrors"][0]["field"] == "toId"
    made = link(server, g.id, client["id"], "guarantees")
    assert made["userErrors"] == []
    assert made["relationship"]["kind"] == "guarantees"
    assert made["relationship"]["fromCustomer"]["id"] == g.id
    assert made["relationship"]["toCustomer"]["id"] == client["id"]
    assert link(server, g.id, client["id"], "guarantees")["userErrors"][0]["code"] == "DUPLICATE"
    assert g.update("guarantor", guaranteedAmount="0") == []
    assert g.refused("verified") == ["verifying needs a guaranteed amount greater than zero"]
    assert g.update("guarantor", guaranteedAmount="25000") == []
    g.move("verified", "documents checked")
    g.move("active")
    g.move("released", "loan repaid")
    g.check()


def test_beneficiary_shares_may_not_exceed_one_hundred_percent(server: LiveServer) -> None:
    holder = create(server, "CLIENT", "Policy holder")
    first = Walker(server, create(server, "BENEFICIARY", "Hija", sharePercent="60"))
    second = Walker(server, create(server, "BENEFICIARY", "Hijo", sharePercent="50"))
    assert "cannot move from 'designated' to 'active'" in first.refused("active")[0]
    assert first.refused("confirmed") == [
        "confirming needs a 'beneficiary_of' relationship to a client"
    ]
    for b in (first, second):
        assert link(server, b.id, holder["id"], "beneficiary_of")["userErrors"] == []
    first.move("confirmed")
    assert second.refused("confirmed") == [
        "the shares of Policy holder's beneficiaries would add up to 110%, "
        "more than 100% (60% already assigned)"
    ]
    assert options(second.check())["confirmed"][0] is False
    assert second.update("beneficiary", sharePercent="40") == []
    second.move("confirmed", "signed by the holder")

    # A counted beneficiary's share may not be raised past the total either.
    errors = first.update("beneficiary", sharePercent="70")
    assert [(e["field"], e["code"]) for e in errors] == [("beneficiary.sharePercent", "INVALID")]
    assert "110%, more than 100%" in errors[0]["message"]
    first.check()  # version unchanged
    assert first.update("beneficiary", sharePercent="55") == []
    first.move("active")
    first.move("ended", "policy cancelled")
    first.check()


def test_employee_needs_title_and_a_hire_date_not_in_the_future(server: LiveServer) -> None:
    e = Walker(server, create(server, "EMPLOYEE", "Nuevo Empleado", salary="30000"))
    assert "cannot move from 'candidate' to 'active'" in e.refused("active")[0]
    e.move("onboarding", "offer accepted")
    assert e.refused("active") == [
        "becoming active needs a job title",
        "becoming active needs a hire date",
    ]
    assert e.update("employee", jobTitle="Analyst", hireDate="2099-01-01") == []
    assert e.refused("active") == [
        "becoming active cannot happen before the hire date (2099-01-01)"
    ]
    assert e.update("employee", hireDate="2024-03-01") == []
    e.move("active")
    e.move("on_leave", "parental leave")
    e.move("active")
    e.move("departed")
    assert "cannot move from 'departed' to 'active'" in e.refused("active")[0]


def test_agenda_contact_archives_only_without_open_needs(server: LiveServer) -> None:
    a = Walker(server, create(server, "AGENDA", "Periodista", category="PRESS"))
    assert "cannot move from 'active' to 'active'" in a.refused("active")[0]
    need = record_need(server, a.id, title="Interview")
    assert a.refused("archived") == ["archiving needs no open needs; this contact has 1"]
    assert options(a.check()) == {
        "archived": (False, ["archiving needs no open needs; this contact has 1"])
    }
    server.gql(
        "mutation($id: ID!) { updateNeed(input: {id: $id, status: MET}) { userErrors { code } } }",
        {"id": need["id"]},
    )
    a.move("archived", "lost touch")
    a.move("active")
    a.check()


def test_competitor_monitoring_and_alliance(server: LiveServer) -> None:
    c = Walker(server, create(server, "COMPETITOR", "Rival S.A.", marketShare="12.5"))
    assert "cannot move from 'identified' to 'allied'" in c.refused("allied")[0]
    assert c.refused("monitored") == [
        "monitoring needs at least one recorded interaction (intelligence gathered)"
    ]
    log_interaction(server, c.id, subject="Trade fair chat", channel="MEETING")
    c.move("monitored")
    assert c.refused("allied") == ["allying needs the date the agreement was signed"]
    assert c.update("competitor", agreementSignedOn="2026-06-01") == []
    c.move("allied", "joint bid")
    c.move("dormant")
    c.move("monitored", "back in our market")
    c.check()


def test_supplier_approval_reports_every_reason(server: LiveServer) -> None:
    s = Walker(server, create(server, "SUPPLIER", "Proveedor", category="Packaging"))
    both = ["approval needs a rating of at least 3; none is recorded", "approval needs a tax id"]
    assert s.refused("approved") == both
    assert options(s.check())["approved"] == (False, both)
    assert s.update("supplier", rating=2, taxId="B12345678") == []
    assert s.refused("approved") == ["approval needs a rating of at least 3 (it is 2)"]
    assert s.update("supplier", rating=4, paymentTermsDays=60) == []
    s.move("approved", "audit passed")
    s.move("active")
    s.move("suspended", "late deliveries")
    s.move("active")
    s.move("terminated")
    assert s.refused("active") == [
        "Supplier cannot move from 'terminated' to 'active'; "
        "from 'terminated' it can move to: nothing"
    ]


def test_link_validation(server: LiveServer) -> None:
    a = create(server, "CLIENT", "A")
    out = link(server, a["id"], a["id"], "nonsense")
    assert {(e["field"], e["code"]) for e in out["userErrors"]} == {
        ("kind", "INVALID_CHOICE"), ("toId", "INVALID"),
    }  # fmt: skip
