"""Point-in-time reads on both engines, through a real server: a customer
read with ``asOf`` after each write of a history (updates, a transition,
contact changes, a need, an interaction, a soft delete and a restore) is the
customer as that write left it; ``node(id:, asOf:)`` rebuilds a contact, a
need and an interaction; ``fieldHistory`` lists a field's values; a merged
party reads through its merge; an erased customer's past shows no erased
value; row scope and field permissions are the present's."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from crmgraph.privacy import ERASED_NAME
from tests.helpers import RoleWorld, pk

ROLES = ("admin", "manager", "agent", "viewer")
PLUGINS: tuple[str, ...] = ()

STATE = """query($id: ID!, $at: DateTime) { customer(id: $id, asOf: $at) {
  id kind name email phone stage stageLabel phase version deletedAt erasedAt
  owner { name }
  ... on Client { segment industry website }
  contacts { id name email jobTitle isPrimary }
  needs { id title status priority volume dueDate }
  interactions(first: 20) { nodes { id subject channel amount } }
  stageHistory { toStage }
  consents { channel purpose granted }
  consentHistory { purpose granted source }
} }"""
LAST_AT = """query($id: ID!) { auditTrail(customerId: $id, first: 1) {
  edges { node { at action } } } }"""


class World(RoleWorld):
    def state(self, gid: str, at: str | None = None, role: str = "admin") -> Any:
        return self.data(STATE, {"id": gid, "at": at}, role)["customer"]

    def last_at(self, gid: str) -> str:
        """The time of the customer's newest audit entry: the moment its last write made."""
        return self.data(LAST_AT, {"id": gid})["auditTrail"]["edges"][0]["node"]["at"]

    def history(self, gid: str, name: str, role: str = "admin") -> Any:
        query = (
            "query($id: ID!, $f: String!) { customer(id: $id) { fieldHistory(field: $f) "
            "{ value since until action byId } } }"
        )
        return self.post(query, {"id": gid, "f": name}, role)


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with World.serving(database_url, PLUGINS, ROLES, "pit.example") as world:
        yield world


def before(moment: str) -> str:
    return (datetime.datetime.fromisoformat(moment) - datetime.timedelta(seconds=1)).isoformat()


def consent(gid: str, granted: bool, source: str = "WEB_FORM") -> dict[str, Any]:
    values = {"channel": "EMAIL", "purpose": "MARKETING", "granted": granted, "source": source}
    return {"customerId": gid, **values}


def customer_writes(world: World, gid: str) -> Iterator[str]:
    """The writes of the history, one at a time (each yields its name)."""
    version = world.version
    world.ok("updateCustomer", {"id": gid, "expectedVersion": version(gid), "name": "Beta SL",
                                "email": None, "client": {"segment": "ENTERPRISE"}})  # fmt: skip
    yield "update"
    eva = world.ok("addContact", {"customerId": gid, "name": "Eva", "isPrimary": True},
                   "contact { id }")["contact"]["id"]  # fmt: skip
    yield "contact"
    world.ok("recordConsent", consent(gid, True))
    yield "consent granted"
    world.ok("transitionCustomer", {"id": gid, "toStage": "engaged",
                                    "expectedVersion": version(gid)})  # fmt: skip
    yield "transition"
    world.ok("addContact", {"customerId": gid, "name": "Luis", "isPrimary": True})
    yield "second primary contact"
    world.ok("updateContact", {"id": eva, "jobTitle": "Buyer", "email": "eva@beta.example"})
    yield "contact change"
    need = world.ok("recordNeed", {"customerId": gid, "title": "Boxes", "volume": 3.5},
                    "need { id }")["need"]["id"]  # fmt: skip
    yield "need"
    world.ok("updateNeed", {"id": need, "status": "MET", "dueDate": "2030-01-02"})
    yield "need change"
    world.ok("recordConsent", consent(gid, False, "PHONE"))
    yield "consent withdrawn"
    world.ok("logInteraction", {"customerId": gid, "channel": "PHONE", "direction": "INBOUND",
                                "subject": "Order", "amount": "12.50"})  # fmt: skip
    yield "interaction"
    world.ok("updateCustomer", {"id": gid, "expectedVersion": version(gid),
                                "client": {"industry": "Packaging", "website": None}})  # fmt: skip
    yield "attributes"
    world.ok("deleteCustomer", {"id": gid})
    yield "delete"
    world.ok("restoreCustomer", {"id": gid})
    yield "restore"
    world.ok(
        "updateCustomer", {"id": gid, "expectedVersion": version(gid), "phone": "+34911000111"}
    )
    yield "update after restore"


def test_each_intermediate_state_is_rebuilt_exactly(world: World) -> None:
    gid = world.create("Alfa SA", email="alfa@alfa.example",
                       client={"segment": "CONSUMER", "website": "alfa.example"})  # fmt: skip
    states = [(world.last_at(gid), world.state(gid), "create")]
    for step in customer_writes(world, gid):
        states.append((world.last_at(gid), world.state(gid), step))
    assert len({str(s) for _, s, _ in states}) == len(states)  # every write changed something
    for at, state, step in states:
        assert world.state(gid, at) == state, step
    # before its creation there was no such customer
    assert world.state(gid, before(states[0][0])) is None
    # the deleted state reads deleted, as a present read of a deleted customer does
    deleted = dict((step, s) for _, s, step in states)["delete"]
    assert deleted["deletedAt"] is not None
    # a moment between two writes reads as the earlier one left it
    earlier, later = (datetime.datetime.fromisoformat(states[i][0]) for i in (2, 3))
    assert world.state(gid, (earlier + (later - earlier) / 2).isoformat()) == states[2][1]
    # null asOf: as it is now
    assert world.state(gid, None) == states[-1][1]


def test_node_as_of_rebuilds_records(world: World) -> None:
    gid = world.create("Gamma")
    contact = world.ok("addContact", {"customerId": gid, "name": "Ana", "phone": "+34600111222"},
                       "contact { id }")["contact"]["id"]  # fmt: skip
    first = world.last_at(gid)
    world.ok("updateContact", {"id": contact, "name": "Ana María", "phone": None})
    need = world.ok("recordNeed", {"customerId": gid, "title": "Ink"}, "need { id }")["need"]["id"]
    recorded = world.last_at(gid)
    world.ok("updateNeed", {"id": need, "title": "Toner", "priority": "HIGH"})
    call = world.ok("logInteraction", {"customerId": gid, "channel": "PHONE",
                                       "direction": "INBOUND", "subject": "Ring"},
                    "interaction { id }")["interaction"]["id"]  # fmt: skip
    query = """query($id: ID!, $at: DateTime) { node(id: $id, asOf: $at) {
      ... on Contact { name phone customerId } ... on Need { title priority }
      ... on Interaction { subject } } }"""
    node = lambda gid_, at: world.data(query, {"id": gid_, "at": at})["node"]  # noqa: E731
    assert node(contact, first) == {"name": "Ana", "phone": "+34600111222", "customerId": gid}
    assert node(contact, None) == {"name": "Ana María", "phone": None, "customerId": gid}
    assert node(contact, before(first)) is None  # not yet added
    assert node(need, first) is None
    assert node(need, recorded) == {"title": "Ink", "priority": "MEDIUM"}
    assert node(need, None) == {"title": "Toner", "priority": "HIGH"}
    assert node(call, recorded) is None  # logged later
    assert node(call, world.last_at(gid)) == {"subject": "Ring"}
    # a type point-in-time reads do not rebuild answers null with asOf
    assert node(world.users["admin"], recorded) is None


def test_field_history(world: World) -> None:
    gid = world.create("Delta", email="one@delta.example")
    created = world.last_at(gid)
    world.ok("updateCustomer", {"id": gid, "expectedVersion": 1, "email": "two@delta.example"})
    changed = world.last_at(gid)
    body = world.history(gid, "email")
    assert body.get("errors") is None, body
    values = body["data"]["customer"]["fieldHistory"]
    assert [(v["value"], v["since"], v["until"], v["action"]) for v in values] == [
        ("one@delta.example", created, changed, "customer.created"),
        ("two@delta.example", changed, None, "customer.updated"),
    ]
    assert values[0]["byId"] == world.users["admin"]
    unknown = world.history(gid, "nope")
    assert unknown["errors"][0]["extensions"]["code"] == "INVALID_FIELD"


def test_a_merged_party_reads_through_its_merge(world: World) -> None:
    survivor = world.create("Epsilon", client={"segment": "CONSUMER"})
    merged = world.create("Epsilon Ltd", email="info@epsilon.example")
    world.ok("addContact", {"customerId": merged, "name": "Marta"})
    world.ok("recordConsent", consent(merged, True))
    world.ok("addContact", {"customerId": survivor, "name": "Pau"})
    for gid, subject in ((merged, "Merged's call"), (survivor, "Survivor's call")):
        world.ok("logInteraction", {"customerId": gid, "channel": "PHONE",
                                    "direction": "OUTBOUND", "subject": subject})  # fmt: skip
    before_merge = max(world.last_at(merged), world.last_at(survivor))
    survivor_before = world.state(survivor)
    merged_before = world.state(merged)
    world.ok("mergeCustomers", {"survivorId": survivor, "mergedId": merged})
    after_merge = world.last_at(survivor)
    survivor_after = world.state(survivor)
    assert {c["name"] for c in survivor_after["contacts"]} == {"Marta", "Pau"}
    assert len(survivor_after["interactions"]["nodes"]) == 2
    assert survivor_after["consents"] == [{"channel": "EMAIL", "purpose": "MARKETING",
                                           "granted": True}]  # fmt: skip
    assert survivor_before["consents"] == []
    # before the merge each reads as itself, with its own contacts
    assert world.state(survivor, before_merge) == survivor_before
    assert world.state(merged, before_merge) == merged_before
    # after it, the merged customer's ID stands for the survivor, as it does now
    assert world.state(merged, after_merge) == survivor_after
    assert world.state(survivor, after_merge) == survivor_after


def test_erased_values_stay_erased_in_the_past(world: World) -> None:
    gid = world.create("Zeta Personal", email="zeta@private.example", phone="+34622000111",
                       client={"segment": "CONSUMER", "website": "zeta.example"})  # fmt: skip
    profile = {"birthday": "1980-05-06", "homeAddress": "Private street 1"}
    zoe = world.ok("addContact", {"customerId": gid, "name": "Zoe Private",
                                  "email": "zoe@private.example", **profile},
                   "contact { id }")["contact"]["id"]  # fmt: skip
    world.ok("updateContact", {"id": zoe, "jobTitle": "Private banker", "birthday": "1981-05-06"})
    world.ok("recordNeed", {"customerId": gid, "title": "Private need"})
    world.ok("logInteraction", {"customerId": gid, "channel": "EMAIL", "direction": "INBOUND",
                                "subject": "Private subject"})  # fmt: skip
    moments = [world.last_at(gid)]
    world.ok("updateCustomer", {"id": gid, "expectedVersion": world.version(gid),
                                "name": "Zeta Renamed", "email": "z2@private.example"})  # fmt: skip
    moments.append(world.last_at(gid))
    world.ok("erasePersonalData", {"customerId": gid, "reason": "request #1"})
    personal = ("Zeta", "zeta", "Zoe", "private", "+34622000111", "Private")
    for at in moments:
        past = world.state(gid, at)
        assert past["name"] == ERASED_NAME and past["email"] is None and past["phone"] is None
        assert past["erasedAt"] is None  # it was not erased yet, but its values are gone
        assert past["segment"] is None and past["website"] is None
        assert len(past["contacts"]) == 1 and len(past["needs"]) == 1
        assert not [p for p in personal if p in str(past)], past
    contact = "query($id: ID!, $at: DateTime) { node(id: $id, asOf: $at) { ... on Contact { name email jobTitle birthday homeAddress } } }"
    for at in moments:
        assert world.data(contact, {"id": zoe, "at": at})["node"] == {
            "name": "[erased]", "email": None, "jobTitle": None, "birthday": None,
            "homeAddress": None,
        }  # fmt: skip
    for name in ("name", "email", "phone"):
        values = world.history(gid, name)["data"]["customer"]["fieldHistory"]
        assert values and not [p for p in personal if p in str(values)], values
    assert world.history(gid, "segment")["data"]["customer"]["fieldHistory"][0]["value"] is None


def test_row_scope_and_field_permissions_apply_to_the_past(world: World) -> None:
    gid = world.create("Eta", client={"segment": "CONSUMER"})
    at = world.last_at(gid)
    assert world.state(gid, at, role="agent") is None  # not theirs now: no past either
    contact = world.ok("addContact", {"customerId": gid, "name": "Ivo"}, "contact { id }")
    query = "query($id: ID!, $at: DateTime) { node(id: $id, asOf: $at) { id } }"
    cid = contact["contact"]["id"]
    assert world.data(query, {"id": cid, "at": world.last_at(gid)}, "agent")["node"] is None
    # given to the agent now, its past is theirs to read
    agent = world.users["agent"]
    world.ok("assignCustomer", {"customerId": gid, "ownerId": agent})
    assert world.state(gid, at, role="agent")["name"] == "Eta"
    assert world.data(query, {"id": cid, "at": world.last_at(gid)}, "agent")["node"] == {"id": cid}
    # a guarded attribute stays guarded in the past and in its history
    employee = world.ok("createCustomer", {"kind": "EMPLOYEE", "name": "Theta", "ownerId": agent,
                                           "employee": {"salary": "30000"}},
                        "customer { id }")["customer"]["id"]  # fmt: skip
    salary = "query($id: ID!, $at: DateTime) { customer(id: $id, asOf: $at) { ... on Employee { salary } } }"
    refused = world.post(salary, {"id": employee, "at": world.last_at(employee)}, "agent")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (
        world.history(employee, "salary", "agent")["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    )
    shown = world.history(employee, "salary", "admin")["data"]["customer"]["fieldHistory"]
    assert [v["value"] for v in shown] == ["30000"]
    # who made a change is shown with audit.read only (an agent's, not a viewer's)
    by = world.history(gid, "name", "agent")["data"]["customer"]["fieldHistory"][0]["byId"]
    assert by == world.users["admin"]
    assert world.history(gid, "name", "viewer")["data"]["customer"]["fieldHistory"][0] == {
        "value": "Eta", "since": at, "until": None, "action": "customer.created", "byId": None,
    }  # fmt: skip


def test_records_older_than_the_trail_read_with_what_is_known(world: World) -> None:
    """A customer and contact whose entries are gone (as for seeded data, or
    data older than the audit trail) read as they are since their creation,
    and the field history starts with the value held before the first entry."""
    gid = world.create("Iota", email="iota@old.example")
    world.ok("addContact", {"customerId": gid, "name": "Olga", "isPrimary": True})
    world.sql("DELETE FROM audit_entry WHERE customer = {}", pk(gid))
    created = world.state(gid)
    world.ok("updateCustomer", {"id": gid, "expectedVersion": world.version(gid), "name": "Kappa"})
    renamed = world.last_at(gid)
    at = (datetime.datetime.fromisoformat(renamed) - datetime.timedelta(milliseconds=1)).isoformat()
    past = world.state(gid, at)
    assert past == created
    assert [c["name"] for c in past["contacts"]] == ["Olga"] and past["contacts"][0]["isPrimary"]
    values = world.history(gid, "name")["data"]["customer"]["fieldHistory"]
    assert [(v["value"], v["until"], v["action"]) for v in values] == [
        ("Iota", renamed, None),
        ("Kappa", None, "customer.updated"),
    ]
    email = world.history(gid, "email")["data"]["customer"]["fieldHistory"]
    assert [(v["value"], v["until"], v["action"]) for v in email] == [
        ("iota@old.example", None, None)
    ]


def test_the_compiled_path_leaves_as_of_to_the_resolvers(world: World) -> None:
    """A query whose ``customer`` reads compile (the test server compiles
    reads) answers an ``asOf`` field beside them with the resolvers: a
    literal, a variable and a null variable alike."""
    gid = world.create("Lambda")
    at = world.last_at(gid)
    world.ok("updateCustomer", {"id": gid, "expectedVersion": 1, "name": "Mu"})
    query = """query($id: ID!, $at: DateTime, $none: DateTime) {
      now: customer(id: $id) { name contacts { name } }
      then: customer(id: $id, asOf: $at) { name contacts { name } }
      literal: customer(id: $id, asOf: "AT") { name }
      same: customer(id: $id, asOf: $none) { name }
      node(id: $id, asOf: $at) { ... on Client { name } }
    }""".replace("AT", at)
    assert world.data(query, {"id": gid, "at": at, "none": None}) == {
        "now": {"name": "Mu", "contacts": []},
        "then": {"name": "Lambda", "contacts": []},
        "literal": {"name": "Lambda"},
        "same": {"name": "Mu"},
        "node": {"name": "Lambda"},
    }


CONVERSION = """query($id: ID!, $at: DateTime) { customer(id: $id, asOf: $at) {
  kind stage stageLabel phase version ... on Prospect { source interest }
  ... on Client { segment } stageHistory { kind toStage } } }"""


def test_a_conversion_and_a_undone_merge(world: World) -> None:
    gid = world.ok("createCustomer", {"kind": "PROSPECT", "name": "Nu",
                                      "prospect": {"source": "WEB", "interest": "chairs"}},
                   "customer { id }")["customer"]["id"]  # fmt: skip
    read = lambda at=None: world.data(CONVERSION, {"id": gid, "at": at})["customer"]  # noqa: E731
    states = [(world.last_at(gid), read())]

    def move(stage: str) -> None:
        world.ok("transitionCustomer", {"id": gid, "toStage": stage,
                                        "expectedVersion": world.version(gid)})  # fmt: skip
        states.append((world.last_at(gid), read()))

    world.ok("logInteraction", {"customerId": gid, "channel": "PHONE", "direction": "INBOUND",
                                "subject": "Order", "amount": "90.00"})  # fmt: skip
    for stage in ("contacted", "qualified", "converted", "loyal"):
        move(stage)
    assert states[3][1]["kind"] == "CLIENT" and states[3][1]["stage"] == "active"
    for at, state in states:
        assert read(at) == state, at

    # a merge undone: between the merge and its undo the merged ID stands for
    # the survivor; before and after, each reads as itself
    other = world.create("Xi", client={"segment": "CONSUMER"})
    lone = world.create("Xi Two")
    world.ok("addContact", {"customerId": lone, "name": "Rita"})
    parted = world.state(lone)
    merge = world.ok("mergeCustomers", {"survivorId": other, "mergedId": lone},
                     "merge { id }")["merge"]["id"]  # fmt: skip
    merged_at = world.last_at(other)
    together = world.state(other)
    world.ok("undoMerge", {"mergeId": merge})
    assert world.state(lone, merged_at) == together
    assert [c["name"] for c in world.state(other, merged_at)["contacts"]] == ["Rita"]
    undone_at = world.last_at(lone)
    assert world.state(other, undone_at)["contacts"] == []
    assert world.state(lone, undone_at)["contacts"] == parted["contacts"]


ROLES_STATE = """query($id: ID!, $at: DateTime) { customer(id: $id, asOf: $at) {
  kind stage
  roles { kind primary stage stageLabel phase stageEnteredAt addedAt
          stageHistory { toStage }
          ... on GuarantorRole { guaranteedAmount guaranteeType }
          ... on ClientRole { segment } ... on ProspectRole { source } }
} }"""


def role_writes(world: World, gid: str) -> Iterator[str]:
    """A further role's life, and the party's conversion, one write at a time."""
    version = world.version
    role = {"customerId": gid, "kind": "GUARANTOR"}
    world.ok("addRole", {**role, "expectedVersion": version(gid),
                         "guarantor": {"guaranteedAmount": "50", "guaranteeType": "BANK"}})  # fmt: skip
    yield "role added"
    world.ok("updateRole", {**role, "expectedVersion": version(gid),
                            "guarantor": {"guaranteedAmount": "75"}})  # fmt: skip
    yield "role's attributes changed"
    world.ok("transitionCustomer", {"id": gid, "kind": "GUARANTOR", "toStage": "released",
                                    "expectedVersion": version(gid)})  # fmt: skip
    yield "role moved"
    world.ok("endRole", {**role, "expectedVersion": version(gid)})
    yield "role ended"
    world.ok("addRole", {**role, "expectedVersion": version(gid), "guarantor": {}})
    yield "role taken up again"
    for stage in ("contacted", "qualified", "converted"):  # to a client, on a purchase
        amount = {"amount": "9.90"} if stage == "converted" else {}
        world.ok("logInteraction", {"customerId": gid, "channel": "PHONE",
                                    "direction": "INBOUND", "subject": stage, **amount})  # fmt: skip
        world.ok("transitionCustomer", {"id": gid, "toStage": stage,
                                        "expectedVersion": version(gid)})  # fmt: skip
        yield f"primary kind moved to {stage}"


def test_roles_as_they_were(world: World) -> None:
    """Each write of a further role (added, changed, moved, ended, taken up
    again) and a conversion of the primary kind: asOf each write's moment
    reads the roles exactly as a present read did right after it."""
    gid = world.create("Theta Prospect", kind="PROSPECT")

    def roles(at: str | None = None) -> Any:
        return world.data(ROLES_STATE, {"id": gid, "at": at})["customer"]

    states = [(world.last_at(gid), roles(), "create")]
    for step in role_writes(world, gid):
        states.append((world.last_at(gid), roles(), step))
    # every write changed them (ending the role brings back the state created)
    assert all(a[1] != b[1] for a, b in itertools.pairwise(states))
    for at, state, step in states:
        assert roles(at) == state, step
