"""Duplicates and merges across kinds (issue 24), on both engines through a
real server: a client and a supplier sharing an e-mail are listed as likely
duplicates; merging them keeps the client primary and gives it the supplier
role with the merged party's stage, attributes and history (and its further
roles; a role both hold keeps the survivor's, its attributes settled like a
same-kind merge's fields); the audit entry and the event name the roles
gained; undo restores every table as it was; a kind that may not be combined
refuses the merge with NOT_COMBINABLE and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import codes, pk
from tests.test_merge import PLUGINS, ROLES, World, loads, without_advancing

PARTY = """id kind stage version createdAt
  stageHistory { kind toStage }
  roles { kind primary stage phase addedAt stageHistory { fromStage toStage }
    ... on ClientRole { segment }
    ... on SupplierRole { rating taxId category paymentTermsDays }
    ... on GuarantorRole { guaranteedAmount guaranteeType documentId } }"""


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with World.serving(database_url, PLUGINS, ROLES, "roles.example") as world:
        yield world


def party(world: World, gid: str) -> dict[str, Any]:
    return world.data(f"query($id: ID!) {{ customer(id: $id) {{ {PARTY} }} }}", {"id": gid})[
        "customer"
    ]


def add_role(world: World, gid: str, kind: str, **attributes: Any) -> None:
    values = {"customerId": gid, "kind": kind, "expectedVersion": world.version(gid)}
    world.ok("addRole", {**values, **attributes})


def move(world: World, gid: str, to: str, kind: str | None = None) -> None:
    values = {"id": gid, "toStage": to, "expectedVersion": world.version(gid), "kind": kind}
    world.ok("transitionCustomer", values)


def client_and_supplier(world: World) -> tuple[str, str]:
    """Nora the client (also a guarantor, no amount yet) and Nora's supplier
    record (approved, also a guarantor with an amount): one party twice."""
    client = world.create(
        "Nora Trading", email="orders@nora.example", client={"segment": "ENTERPRISE"}
    )
    add_role(world, client, "GUARANTOR", guarantor={"guaranteeType": "PERSONAL"})
    made = world.ok(
        "createCustomer",
        {
            "kind": "SUPPLIER",
            "name": "Nora Trading SL",
            "email": "ORDERS@nora.example",
            "supplier": {"rating": 4, "taxId": "B123", "category": "Bolts"},
            "allowDuplicate": True,  # suppliers block likely duplicates: this is one
        },
        "customer { id }",
    )
    supplier = made["customer"]["id"]
    move(world, supplier, "approved")
    add_role(world, supplier, "GUARANTOR",
             guarantor={"guaranteeType": "BANK", "guaranteedAmount": "5000"})  # fmt: skip
    return client, supplier


def test_a_client_and_a_supplier_are_duplicates_and_merge_keeping_both_roles(
    world: World,
) -> None:
    client, supplier = client_and_supplier(world)
    # the finder pairs them across kinds: the same e-mail
    query = """query($id: ID!) { duplicateCandidates(customerId: $id) {
      customer { id __typename } reasons { code } } }"""
    (found,) = world.data(query, {"id": client})["duplicateCandidates"]
    assert found["customer"] == {"id": supplier, "__typename": "Supplier"}
    assert "EMAIL_EXACT" in [r["code"] for r in found["reasons"]]
    pairs = world.data("""{ duplicates(kind: SUPPLIER) { nodes {
      left { id __typename } right { id __typename } } } }""")["duplicates"]["nodes"]
    assert pairs == [{"left": {"id": client, "__typename": "Client"},
                      "right": {"id": supplier, "__typename": "Supplier"}}]  # fmt: skip

    merged_before = party(world, supplier)
    before = world.snapshot()
    choices = [{"field": "guarantor.documentId", "source": "MERGED"},
               {"field": "guarantor.guaranteeType", "source": "SURVIVOR"}]  # fmt: skip
    done = world.ok(
        "mergeCustomers",
        {"survivorId": client, "mergedId": supplier, "fieldChoices": choices},
        "merge { id movedCounts { what count } }",
    )
    survivor = party(world, client)
    assert (survivor["kind"], survivor["stage"]) == ("CLIENT", "interest")
    roles = {r["kind"]: r for r in survivor["roles"]}
    assert [r["kind"] for r in survivor["roles"]] == ["CLIENT", "GUARANTOR", "SUPPLIER"]
    assert roles["CLIENT"]["primary"] and roles["CLIENT"]["segment"] == "ENTERPRISE"
    # the supplier role: the merged party's stage, attributes and history
    gained = roles["SUPPLIER"]
    assert (gained["primary"], gained["stage"], gained["phase"]) == (
        False,
        "approved",
        "ACQUISITION",
    )
    assert (gained["rating"], gained["taxId"], gained["category"]) == (4, "B123", "Bolts")
    assert gained["stageHistory"] == merged_before["roles"][0]["stageHistory"]
    assert [h["toStage"] for h in gained["stageHistory"]] == ["evaluation", "approved"]
    assert gained["addedAt"] == merged_before["createdAt"]
    # a role both held: the survivor's stage (both histories, as in a
    # same-kind merge), attributes settled as fields are (its own value, the
    # merged party's where it had none)
    guarantor = roles["GUARANTOR"]
    assert guarantor["stage"] == "proposed" and len(guarantor["stageHistory"]) == 2
    assert (guarantor["guaranteeType"], guarantor["guaranteedAmount"]) == ("PERSONAL", "5000")
    assert guarantor["documentId"] is None  # MERGED: the merged party had none
    # in SQL: one open stay per kind, the gained role's own going on
    open_stays = world.sql(
        "SELECT kind, to_stage FROM stage_change WHERE customer = {} AND left_at IS NULL "
        "ORDER BY kind",
        pk(client),
    )
    assert open_stays == [
        {"kind": "client", "to_stage": "interest"},
        {"kind": "guarantor", "to_stage": "proposed"},
        {"kind": "supplier", "to_stage": "approved"},
    ]
    counts = {c["what"]: c["count"] for c in done["merge"]["movedCounts"]}
    assert counts["stageChanges"] == 3  # two supplier entries, one guarantor

    # the audit entry and the event name what the survivor gained
    (audit,) = world.sql(
        "SELECT changes FROM audit_entry WHERE action = 'customer.merged' AND customer = {}",
        pk(client),
    )
    changes = loads(audit["changes"])
    assert changes["rolesGained"] == [None, ["supplier"]]
    assert changes["roles.supplier.stage"] == [None, "approved"]
    assert changes["supplier.rating"] == [None, 4]
    assert changes["guarantor.guaranteedAmount"] == [None, "5000"]
    (event,) = world.events("customer.merged")
    assert event["rolesGained"] == ["supplier"] and "roles.supplier.stage" in event["fields"]

    # undo: both parties as they were, roles, attributes, stages and histories
    out = "survivor { id } merged { id deletedAt }"
    world.ok("undoMerge", {"mergeId": done["merge"]["id"]}, out)
    assert without_advancing(world.snapshot()) == without_advancing(before)
    assert [r["kind"] for r in party(world, client)["roles"]] == ["CLIENT", "GUARANTOR"]
    restored = party(world, supplier)
    assert {k: v for k, v in restored.items() if k != "version"} == {
        k: v for k, v in merged_before.items() if k != "version"
    }
    (unaudit,) = world.sql(
        "SELECT changes FROM audit_entry WHERE action = 'customer.unmerged' AND customer = {}",
        pk(client),
    )
    assert loads(unaudit["changes"])["rolesGained"] == [["supplier"], None]


def test_a_kind_that_may_not_be_combined_refuses_the_merge_and_writes_nothing(
    world: World,
) -> None:
    client = world.create("Olga Rival", email="olga@rival.example")
    competitor = world.ok(
        "createCustomer",
        {"kind": "COMPETITOR", "name": "Olga Rival Ltd", "email": "olga@rival.example"},
        "customer { id }",
    )["customer"]["id"]
    supplier = world.ok(
        "createCustomer", {"kind": "SUPPLIER", "name": "Olga Rival Supplies"}, "customer { id }"
    )["customer"]["id"]
    add_role(world, supplier, "COMPETITOR")  # a supplier may be a competitor, a client not
    before = world.snapshot()
    for survivor, merged, kinds in (
        (client, competitor, ("COMPETITOR", "CLIENT")),
        (competitor, client, ("CLIENT", "COMPETITOR")),  # either side's declaration counts
        (client, supplier, ("COMPETITOR", "CLIENT")),  # a further role counts too
    ):
        refused = world.mutate("mergeCustomers", {"survivorId": survivor, "mergedId": merged})
        assert codes(refused) == [("mergedId", "NOT_COMBINABLE")], refused
        message = refused["userErrors"][0]["message"]
        assert all(kind in message for kind in kinds), message
    assert world.snapshot() == before
    assert world.sql("SELECT COUNT(*) AS n FROM customer_merge") == [{"n": 0}]
    assert world.sql("SELECT COUNT(*) AS n FROM audit_entry WHERE action = 'customer.merged'") == [
        {"n": 0}
    ]
    # the survivor's attributes are choices only when the merged party holds its kind
    other = world.ok(
        "createCustomer", {"kind": "SUPPLIER", "name": "Pia Parts"}, "customer { id }"
    )["customer"]["id"]
    unknown = world.mutate("mergeCustomers", {"survivorId": other, "mergedId": client,
                                              "fieldChoices": [{"field": "rating",
                                                                "source": "MERGED"}]})  # fmt: skip
    assert codes(unknown) == [("fieldChoices", "INVALID_CHOICE")]


def test_a_role_gained_over_a_kind_left_behind_and_undone(world: World) -> None:
    """A client converted from a prospect keeps the prospect row as history;
    merging a live prospect into it makes PROSPECT a held role again (the
    history row taken over, its stay ended), and undo puts both back."""
    made = world.ok("createCustomer", {"kind": "PROSPECT", "name": "Quim Converted"},
                    "customer { id }")  # fmt: skip
    client = made["customer"]["id"]
    world.ok("logInteraction", {"customerId": client, "channel": "EMAIL", "direction": "INBOUND",
                                "subject": "First order", "amount": "99.00"})  # fmt: skip
    for stage in ("contacted", "qualified", "converted"):
        move(world, client, stage)
    lead = world.ok("createCustomer", {"kind": "PROSPECT", "name": "Quim C."}, "customer { id }")
    prospect = lead["customer"]["id"]
    move(world, prospect, "contacted")
    before = world.snapshot()
    done = world.ok("mergeCustomers", {"survivorId": client, "mergedId": prospect}, "merge { id }")
    roles = [(r["kind"], r["primary"], r["stage"]) for r in party(world, client)["roles"]]
    assert roles == [("CLIENT", True, "active"), ("PROSPECT", False, "contacted")]
    open_stays = world.sql("SELECT kind, to_stage FROM stage_change WHERE customer = {} "
                           "AND left_at IS NULL ORDER BY kind", pk(client))  # fmt: skip
    assert open_stays == [{"kind": "client", "to_stage": "active"},
                          {"kind": "prospect", "to_stage": "contacted"}]  # fmt: skip
    world.ok("undoMerge", {"mergeId": done["merge"]["id"]})
    assert without_advancing(world.snapshot()) == without_advancing(before)
    assert [r["kind"] for r in party(world, client)["roles"]] == ["CLIENT"]
