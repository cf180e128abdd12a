"""Merging customers on both engines, through real API keys and a real server:
every related record moves to the survivor (checked in SQL and through
GraphQL), the merged customer's ID resolves to the survivor, the merge leaves
audit entries and a customer.merged event, a partner plugin (crmgraph-loyalty)
moves its own rows; undo restores every table exactly; undo is refused after
a later write; plugins veto, and a plugin that raises rolls everything back;
permissions and version conflicts are refused in userErrors."""

from __future__ import annotations

import datetime
import decimal
import json
from collections.abc import Iterator
from typing import Any

import pytest

from crmgraph.schema.ids import encode_id
from tests.helpers import RoleWorld, codes, pk

PLUGINS = ("crmgraph_loyalty.plugin", "tests.plugins_for_tests.merge_guard")
ROLES = ("admin", "manager", "agent")
# Every table holding a customer's data, core and plugin (the outbox, the audit
# trail, the merge records and webhook deliveries are history: they only grow).
SNAPSHOT_TABLES = (
    "customer",
    "customer_role",
    "contact",
    "interaction",
    "need",
    "relationship",
    "stage_change",
    "note",
    "note_mention",
    "task",
    "consent_change",
    "loyalty_account",
    "customer_match_key",  # rebuilt (new ids) by the merge and the undo: compared by value
)
# An undo is a new change: these move on, everything else comes back.
ADVANCING = {"customer": ("version", "updated_at")}

CUSTOMER = """
  id name email phone version deletedAt
  ... on Client { segment industry website }
  owner { name }
  contacts { id isPrimary }
  interactions(first: 50) { nodes { id } }
  needs { id }
  relationships { id kind fromCustomer { id } toCustomer { id } }
  notes(first: 50) { nodes { id mentions { email } } }
  tasks(first: 50) { nodes { id needId } }
  stageHistory { id kind toStage }
  merges { id mergedId undoneAt movedCounts { what count } }
"""
MERGE_OUT = "customer { id version name email } merge { id movedCounts { what count } }"


class World(RoleWorld):
    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every customer table, as comparable plain values."""
        found = {}
        for table in SNAPSHOT_TABLES:
            rows = self.sql(f"SELECT * FROM {table} ORDER BY id")
            found[table] = [{k: plain(v) for k, v in row.items()} for row in rows]
        keys = found["customer_match_key"]
        found["customer_match_key"] = sorted(
            ({k: v for k, v in row.items() if k != "id"} for row in keys),
            key=lambda row: (row["customer"], row["key_type"], row["key_value"]),
        )
        return found

    def events(self, event_type: str) -> list[dict[str, Any]]:
        rows = self.sql("SELECT payload FROM event WHERE type = {} ORDER BY id", event_type)
        return [loads(r["payload"]) for r in rows]

    def customer(self, gid: str, role: str = "admin") -> dict[str, Any] | None:
        query = f"query($id: ID!) {{ customer(id: $id) {{ {CUSTOMER} }} }}"
        return self.data(query, {"id": gid}, role)["customer"]


def plain(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, str) and value[:1] in "{[":
        return loads(value)  # JSON text (SQLite) and json (PostgreSQL) compare alike
    return value


def loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def without_advancing(snapshot: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        table: [{k: v for k, v in row.items() if k not in ADVANCING.get(table, ())} for row in rows]
        for table, rows in snapshot.items()
    }


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with World.serving(database_url, PLUGINS, ROLES, "merge.example") as world:
        yield world


def award(world: World, gid: str, points: int) -> None:
    out = "account { points }"
    world.ok("awardLoyaltyPoints", {"customerId": gid, "points": points, "reason": "t"}, out)


def link(world: World, from_id: str, to_id: str) -> str:
    made = world.ok("linkCustomers", {"fromId": from_id, "toId": to_id, "kind": "refers"},
                    "relationship { id }")  # fmt: skip
    return made["relationship"]["id"]


def populate(world: World) -> dict[str, Any]:
    """A survivor, the customer merged into it with one of everything, and a third party."""
    s = world.create("Acme", phone="+34912345678", client={"segment": "ENTERPRISE"})
    m = world.create(
        "ACME Corporation",
        email="sales@acme.example",
        phone="+34600000000",
        ownerId=world.users["manager"],
        client={"segment": "SMALL_BUSINESS", "industry": "Tools", "website": "acme.example"},
    )
    t = world.create("Third party")
    world.ok("addContact", {"customerId": s, "name": "Sol", "isPrimary": True})
    m_primary = world.ok("addContact", {"customerId": m, "name": "Mia", "isPrimary": True},
                         "contact { id }")["contact"]["id"]  # fmt: skip
    world.ok("addContact", {"customerId": m, "name": "Max"})
    for subject in ("first call", "order"):
        world.ok("logInteraction", {"customerId": m, "channel": "PHONE", "direction": "INBOUND",
                                    "subject": subject, "amount": "120.00"})  # fmt: skip
    need = world.ok("recordNeed", {"customerId": m, "title": "Bolts"}, "need { id }")["need"]["id"]
    world.ok("createTask", {"customerId": m, "title": "Quote bolts", "needId": need})
    world.ok("addNote", {"customerId": m, "body": "ask @agent@merge.example"})
    version = world.version(m)
    for stage in ("engaged", "negotiating"):
        world.ok("transitionCustomer", {"id": m, "toStage": stage, "expectedVersion": version})
        version += 1
    kept = link(world, t, m)  # T -> M becomes T -> S
    dropped_duplicate = link(world, m, t)  # M -> T repeats S -> T
    link(world, s, t)
    dropped_self = link(world, m, s)  # M -> S would link S to itself
    award(world, s, 40)
    award(world, m, 70)
    return {
        "s": s, "m": m, "t": t, "m_primary": m_primary, "kept": kept,
        "dropped": {dropped_duplicate, dropped_self},
    }  # fmt: skip


def test_merge_moves_every_related_record_and_undo_restores_both(world: World) -> None:
    ids = populate(world)
    s, m = ids["s"], ids["m"]
    before = world.snapshot()
    merged_rows = {
        table: {r["id"] for r in before[table] if r.get("customer") == pk(m)}
        for table in ("contact", "interaction", "need", "note", "task", "stage_change")
    }
    assert all(merged_rows.values()), merged_rows  # one of everything to move
    assert any(k["customer"] == pk(m) for k in before["customer_match_key"])

    payload = world.ok(
        "mergeCustomers",
        {
            "survivorId": s,
            "mergedId": m,
            "fieldChoices": [{"field": "name", "source": "MERGED"},
                             {"field": "segment", "source": "SURVIVOR"}],
            "expectedSurvivorVersion": world.version(s),
            "expectedMergedVersion": world.version(m),
            "reason": "same company",
        },
        MERGE_OUT,
    )  # fmt: skip
    # fields: the choice (name), the survivor's own (phone, segment), the merged
    # customer's where the survivor had none (e-mail, industry, website, owner)
    survivor = world.customer(s)
    assert survivor is not None
    assert (survivor["name"], survivor["email"], survivor["phone"]) == (
        "ACME Corporation", "sales@acme.example", "+34912345678",
    )  # fmt: skip
    assert (survivor["segment"], survivor["industry"], survivor["website"]) == (
        "ENTERPRISE", "Tools", "acme.example",
    )  # fmt: skip
    assert survivor["owner"] == {"name": "Manager"}
    assert payload["customer"] == {"id": s, "version": survivor["version"],
                                   "name": "ACME Corporation", "email": "sales@acme.example"}  # fmt: skip

    # in SQL: nothing is left on the merged customer, everything it had is the survivor's
    for table, moved in merged_rows.items():
        assert world.sql(f"SELECT id FROM {table} WHERE customer = {{}}", pk(m)) == []
        owned = {r["id"] for r in world.sql(f"SELECT id FROM {table} WHERE customer = {{}}", pk(s))}
        assert moved <= owned, table
    assert {(r["kind"]) for r in world.sql(
        "SELECT kind FROM stage_change WHERE customer = {}", pk(s))} == {"client"}  # fmt: skip
    rels = world.sql("SELECT id, from_customer, to_customer FROM relationship ORDER BY id")
    assert all(pk(m) not in (r["from_customer"], r["to_customer"]) for r in rels)
    assert {encode_id("Relationship", r["id"]) for r in rels} & ids["dropped"] == set()
    assert (pk(ids["t"]), pk(s)) in {(r["from_customer"], r["to_customer"]) for r in rels}
    # one primary contact: the survivor's
    primaries = world.sql("SELECT name FROM contact WHERE customer = {} AND is_primary = {}",
                          pk(s), True)  # fmt: skip
    assert [r["name"] for r in primaries] == ["Sol"]
    # the merged customer: marked, soft-deleted, its lifecycle role left with it
    (row,) = world.sql("SELECT merged_into, deleted_at FROM customer WHERE id = {}", pk(m))
    assert row["merged_into"] == pk(s) and row["deleted_at"] is not None
    assert world.sql("SELECT stage FROM customer_role WHERE customer = {}", pk(m)) == [
        {"stage": "negotiating"}
    ]
    # matching skips it: no blocking keys; the survivor's follow its new fields
    assert world.sql("SELECT key_type FROM customer_match_key WHERE customer = {}", pk(m)) == []
    survivor_keys = world.sql(
        "SELECT key_value FROM customer_match_key WHERE customer = {} AND key_type = 'EMAIL'",
        pk(s),
    )
    assert [k["key_value"] for k in survivor_keys] == ["sales@acme.example"]
    # the partner plugin moved its rows: one account, the points of both
    assert world.sql("SELECT customer_id, points FROM loyalty_account ORDER BY id") == [
        {"customer_id": pk(s), "points": 110}
    ]
    counts = {c["what"]: c["count"] for c in payload["merge"]["movedCounts"]}
    assert counts == {
        "contacts": 2, "interactions": 2, "needs": 1, "notes": 1, "tasks": 1,
        "consents": 0, "stageChanges": 3, "relationships": 1, "relationshipsDropped": 2,
        "loyaltyAccounts": 1,
    }  # fmt: skip

    # through GraphQL: the survivor shows every record; the old ID resolves to it
    assert len(survivor["contacts"]) == 3
    assert len(survivor["interactions"]["nodes"]) == 2
    assert len(survivor["needs"]) == 1
    assert survivor["tasks"]["nodes"][0]["needId"] == survivor["needs"][0]["id"]
    assert survivor["notes"]["nodes"][0]["mentions"] == [{"email": "agent@merge.example"}]
    assert [h["toStage"] for h in survivor["stageHistory"]].count("negotiating") == 1
    assert len(survivor["relationships"]) == 2
    assert survivor["merges"][0]["mergedId"] == m
    assert world.customer(m) == survivor
    node = world.data("query($id: ID!) { node(id: $id) { id } }", {"id": m})["node"]
    assert node == {"id": s}
    listed = world.data("{ customers(first: 50) { nodes { id } } }")["customers"]["nodes"]
    assert {"id": m} not in listed and {"id": s} in listed

    # the audit trail and the outbox
    audit = world.sql("SELECT customer, changes FROM audit_entry WHERE action = 'customer.merged' "
                      "ORDER BY customer")  # fmt: skip
    assert {a["customer"] for a in audit} == {pk(s), pk(m)}
    trail = {a["customer"]: loads(a["changes"]) for a in audit}
    assert trail[pk(s)]["name"] == ["Acme", "ACME Corporation"]
    assert trail[pk(s)]["mergedFrom"] == [None, m]
    assert trail[pk(m)]["mergedInto"] == [None, s]
    (event,) = world.events("customer.merged")
    assert (event["survivorId"], event["mergedId"], event["movedCounts"]) == (s, m, counts)
    assert event["mergeId"] == payload["merge"]["id"]

    # writes to the merged customer are refused, naming the survivor
    refused = world.mutate("updateCustomer", {"id": m, "expectedVersion": 1, "name": "x"})
    assert codes(refused) == [("id", "MERGED")] and s in refused["userErrors"][0]["message"]
    assert codes(world.mutate("restoreCustomer", {"id": m})) == [("id", "MERGED")]

    # undo: every table as it was (versions move on)
    out = "survivor { id name } merged { id name deletedAt } merge { undoneAt undoneBy { name } }"
    undone = world.ok("undoMerge", {"mergeId": payload["merge"]["id"]}, out)
    assert undone["survivor"] == {"id": s, "name": "Acme"}
    assert undone["merged"] == {"id": m, "name": "ACME Corporation", "deletedAt": None}
    assert undone["merge"]["undoneAt"] and undone["merge"]["undoneBy"] == {"name": "Admin"}
    after = world.snapshot()
    assert without_advancing(after) == without_advancing(before)
    versions = {r["id"]: r["version"] for r in after["customer"]}
    assert all(versions[r["id"]] > r["version"] for r in before["customer"] if r["id"] in
               (pk(s), pk(m)))  # fmt: skip
    assert world.customer(m)["id"] == m
    (unmerged,) = world.events("customer.unmerged")
    assert (unmerged["survivorId"], unmerged["mergedId"]) == (s, m)
    assert len(world.sql("SELECT id FROM audit_entry WHERE action = 'customer.unmerged'")) == 2
    again = world.mutate("undoMerge", {"mergeId": payload["merge"]["id"]})
    assert codes(again) == [("mergeId", "MERGE_NOT_UNDOABLE")]


def test_a_chain_of_merges_resolves_to_its_end(world: World) -> None:
    a, b, c = (world.create(name) for name in ("A", "B", "C"))
    world.ok("mergeCustomers", {"survivorId": b, "mergedId": a})
    world.ok("mergeCustomers", {"survivorId": c, "mergedId": b})
    query = "query($a: ID!) { customer(id: $a) { id name } node(id: $a) { id } }"
    assert world.data(query, {"a": a}) == {"customer": {"id": c, "name": "C"}, "node": {"id": c}}
    # the first merge cannot be undone any more: its survivor was merged since
    first = world.data("query($id: ID!) { customer(id: $id) { merges { id } } }", {"id": c})
    (second,) = first["customer"]["merges"]
    merges = world.sql("SELECT id, survivor FROM customer_merge ORDER BY id")
    first_id = encode_id("CustomerMerge", merges[0]["id"])
    assert second["id"] == encode_id("CustomerMerge", merges[1]["id"])
    blockers = world.data("query($id: ID!) { node(id: $id) { ... on CustomerMerge { undoBlockers } } }",
                          {"id": first_id})["node"]["undoBlockers"]  # fmt: skip
    assert any("survivor was changed" in b for b in blockers), blockers
    assert codes(world.mutate("undoMerge", {"mergeId": first_id})) == [
        ("mergeId", "MERGE_NOT_UNDOABLE")
    ] * len(blockers)
    # undoing the later merge gives B back, still holding A: an undo is a write
    # too (B's version moved on), so the first merge stays as it is
    world.ok("undoMerge", {"mergeId": second["id"]})
    assert world.data(query, {"a": a}) == {"customer": {"id": b, "name": "B"}, "node": {"id": b}}
    assert codes(world.mutate("undoMerge", {"mergeId": first_id}))[0] == (
        "mergeId",
        "MERGE_NOT_UNDOABLE",
    )


def test_consents_move_with_the_merge_and_a_withdrawal_keeps_binding(world: World) -> None:
    s = world.create("Consenting", email="yes@merge.example")
    m = world.create("Withdrawn", email="no@merge.example")
    statement = {"channel": "EMAIL", "purpose": "MARKETING", "source": "API"}
    world.ok("recordConsent", {"customerId": s, "granted": True, **statement,
                               "at": "2026-01-01T00:00:00Z"})  # fmt: skip
    world.ok("recordConsent", {"customerId": m, "granted": False, **statement,
                               "at": "2026-02-01T00:00:00Z"})  # fmt: skip
    marketing = {"customerId": s, "channel": "EMAIL", "direction": "OUTBOUND",
                 "subject": "Offer", "purpose": "MARKETING"}  # fmt: skip
    assert world.mutate("logInteraction", marketing)["userErrors"] == []
    done = world.ok("mergeCustomers", {"survivorId": s, "mergedId": m}, MERGE_OUT)
    assert {"what": "consents", "count": 1} in done["merge"]["movedCounts"]
    # the person withdrew it (on the merged record), later than they granted it
    consents = (
        "query($id: ID!) { customer(id: $id) { consents { granted } consentHistory { id } } }"
    )
    after = world.data(consents, {"id": s})["customer"]
    assert (after["consents"], len(after["consentHistory"])) == ([{"granted": False}], 2)
    assert codes(world.mutate("logInteraction", marketing)) == [("purpose", "NO_CONSENT")]
    # undone: the withdrawal goes back with the merged customer
    world.ok("undoMerge", {"mergeId": done["merge"]["id"]})
    back = world.data(consents, {"id": s})["customer"]
    assert (back["consents"], len(back["consentHistory"])) == ([{"granted": True}], 1)


@pytest.mark.parametrize("later", ["interaction", "update", "link_to", "loyalty"])
def test_undo_is_refused_after_a_later_write_to_the_survivor(world: World, later: str) -> None:
    s, m, other = world.create("S"), world.create("M"), world.create("Other")
    award(world, m, 10)  # moved to the survivor, which has no account
    merge = world.ok("mergeCustomers", {"survivorId": s, "mergedId": m}, "merge { id }")["merge"]
    query = "query($id: ID!) { node(id: $id) { ... on CustomerMerge { undoBlockers } } }"
    assert world.data(query, {"id": merge["id"]})["node"]["undoBlockers"] == []
    if later == "interaction":
        world.ok("logInteraction", {"customerId": s, "channel": "EMAIL", "direction": "OUTBOUND",
                                    "subject": "welcome"})  # fmt: skip
    elif later == "update":
        world.ok("updateCustomer", {"id": s, "expectedVersion": world.version(s), "name": "S2"})
    elif later == "link_to":  # audited under the other party, found all the same
        link(world, other, s)
    else:  # a plugin's mutation, audited like a core write (crmgraph.record_change)
        award(world, s, 5)
    before = world.snapshot()
    refused = world.mutate("undoMerge", {"mergeId": merge["id"]})
    assert {c for _, c in codes(refused)} == {"MERGE_NOT_UNDOABLE"}
    assert world.data(query, {"id": merge["id"]})["node"]["undoBlockers"]
    assert world.snapshot() == before


def test_plugins_veto_and_a_failing_plugin_rolls_everything_back(world: World) -> None:
    s = world.create("Keep apart Ltd")
    m = world.create("Keep apart Limited")
    award(world, m, 25)  # the loyalty plugin moves it before the guard speaks
    world.ok("addContact", {"customerId": m, "name": "Ana"})
    before = world.snapshot()
    events = world.sql("SELECT COUNT(*) AS n FROM event")[0]["n"]

    vetoed = world.mutate("mergeCustomers", {"survivorId": s, "mergedId": m}, MERGE_OUT)
    assert vetoed["merge"] is None
    assert codes(vetoed) == [(None, "MERGE_VETOED")] * 2
    assert all("tests.plugins_for_tests.merge_guard" in e["message"] for e in vetoed["userErrors"])
    assert world.snapshot() == before

    t = world.create("Plain")
    before = world.snapshot()
    body = world.post(
        "mutation($input: MergeCustomersInput!) { mergeCustomers(input: $input) { merge { id } } }",
        {"input": {"survivorId": t, "mergedId": m, "reason": "explode"}},
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "PLUGIN_ERROR"
    assert error["extensions"]["plugin"] == "tests.plugins_for_tests.merge_guard"
    assert world.snapshot() == before  # the loyalty account too: it had moved in the transaction
    assert world.sql("SELECT COUNT(*) AS n FROM customer_merge") == [{"n": 0}]
    assert world.sql("SELECT COUNT(*) AS n FROM event")[0]["n"] == events + 1  # t's creation

    final = world.ok("mergeCustomers", {"survivorId": t, "mergedId": m, "reason": "final"},
                     "merge { id }")["merge"]  # fmt: skip
    refused = world.mutate("undoMerge", {"mergeId": final["id"]})
    assert codes(refused) == [(None, "MERGE_VETOED")]
    assert "declared final" in refused["userErrors"][0]["message"]


def test_permission_versions_and_validation(world: World) -> None:
    s = world.create("S", ownerId=world.users["agent"])
    m = world.create("M", ownerId=world.users["agent"])
    agent = world.mutate("mergeCustomers", {"survivorId": s, "mergedId": m}, role="agent")
    assert codes(agent) == [(None, "FORBIDDEN")]
    stale = world.mutate("mergeCustomers", {"survivorId": s, "mergedId": m,
                                            "expectedMergedVersion": 7})  # fmt: skip
    assert codes(stale) == [("expectedMergedVersion", "VERSION_CONFLICT")]
    assert codes(world.mutate("mergeCustomers", {"survivorId": s, "mergedId": s})) == [
        ("mergedId", "INVALID")
    ]
    # an agenda entry may not be a further role (tests/test_role_merge.py: kinds that combine)
    agenda = world.ok("createCustomer", {"kind": "AGENDA", "name": "A"}, "customer { id }")
    other_kind = world.mutate(
        "mergeCustomers", {"survivorId": s, "mergedId": agenda["customer"]["id"]}
    )
    assert codes(other_kind) == [("mergedId", "NOT_COMBINABLE")]
    unknown = world.mutate("mergeCustomers", {"survivorId": s, "mergedId": m, "fieldChoices": [
        {"field": "shoeSize", "source": "MERGED"}]})  # fmt: skip
    assert codes(unknown) == [("fieldChoices", "INVALID_CHOICE")]
    twice = world.mutate("mergeCustomers", {"survivorId": s, "mergedId": m, "fieldChoices": [
        {"field": "name", "source": "MERGED"}, {"field": "name", "source": "SURVIVOR"}]})  # fmt: skip
    assert codes(twice) == [("fieldChoices.1.field", "DUPLICATE")]
    assert world.snapshot()["customer"] == world.snapshot()["customer"]  # nothing half-done
    assert world.sql("SELECT COUNT(*) AS n FROM customer_merge") == [{"n": 0}]

    # a manager may merge; the merged customer cannot be merged again
    done = world.ok("mergeCustomers", {"survivorId": s, "mergedId": m}, "merge { id }",
                    role="manager")  # fmt: skip
    assert done["merge"]["id"]
    again = world.mutate("mergeCustomers", {"survivorId": world.create("X"), "mergedId": m})
    assert codes(again) == [("mergedId", "MERGED")]
    # the agent who owns the survivor sees the merge but may not undo it
    assert codes(world.mutate("undoMerge", {"mergeId": done["merge"]["id"]}, role="agent")) == [
        (None, "FORBIDDEN")
    ]
    perms = world.data("{ permissions { key roles } }")["permissions"]
    assert {"key": "customer.merge", "roles": ["manager"]} in perms
