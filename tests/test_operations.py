"""The core's writes called as plain functions (crmgraph.operations), without
GraphQL, on both engines: what a write leaves (the row, its audit entry and
its event, in its transaction), and the refusals that touch nothing (a
caller without the permission, bad input), with the input's problems in the
order the API reports them."""

from __future__ import annotations

import orjson
import pytest

from crmgraph.auth import Principal
from crmgraph.ids import encode_id
from crmgraph.operations import contacts, customers
from crmgraph.operations.actor import Actor
from crmgraph.validation import Problem, UserInputError
from tests.operations_world import (
    World,
    problems_of,
    world_fixture,  # noqa: F401  (the world fixture)
)


async def test_a_new_customer_leaves_its_row_audit_entry_and_event(world: World) -> None:
    manager = await world.actor("manager")
    seen_in_transaction: list[tuple[int, bool]] = []

    async def then(pk: int) -> None:
        seen_in_transaction.append((pk, world.db.in_transaction))

    new = customers.NewCustomerInput("client", {"name": "Acme", "phone": "600 000 001"})
    pk = await customers.create_customer(world.db, world.catalog, world.pm, manager, new, then=then)

    assert seen_in_transaction == [(pk, True)]
    (row,) = await world.db.fetch("SELECT kind, name, phone, version FROM customer")
    # the actor's default phone region read the national number
    assert row == {"kind": "client", "name": "Acme", "phone": "+34600000001", "version": 1}
    (audit,) = await world.db.fetch("SELECT action, by, entity_id, changes FROM audit_entry")
    assert (audit["action"], audit["by"], audit["entity_id"]) == (
        "customer.created",
        manager.user_id,
        pk,
    )
    assert orjson.loads(audit["changes"])["name"] == [None, "Acme"]
    (event,) = await world.db.fetch("SELECT type, customer, payload FROM event")
    assert (event["type"], event["customer"]) == ("customer.created", pk)
    assert orjson.loads(event["payload"])["customerId"] == encode_id("Customer", pk)
    (change,) = await world.db.fetch("SELECT by, reason, to_stage FROM stage_change")
    assert (change["by"], change["reason"]) == (manager.user_id, "created")


async def test_bad_input_is_refused_before_any_statement(world: World) -> None:
    manager = await world.actor("manager")
    new = customers.NewCustomerInput(
        "client",
        {"name": "", "email": "not an e-mail", "owner": None},
        # found decoding the input's IDs: the owner's follows the party fields'
        problems=[Problem("ownerId", "ownerId: 'x' is not a valid ID", "INVALID_ID")],
    )
    refused = await world.refused(customers.create_customer, manager, new)
    assert [p.field for p in refused.value.problems] == ["name", "email", "ownerId"]
    assert await world.db.fetch("SELECT id FROM customer") == []


async def test_a_viewer_is_refused_before_any_statement(world: World) -> None:
    viewer = await world.actor("viewer")
    new = customers.NewCustomerInput("client", {"name": "Acme"})
    refused = await world.refused(customers.create_customer, viewer, new)
    assert problems_of(refused) == [(None, "FORBIDDEN")]


async def test_row_scope_an_agent_owns_what_they_create_and_no_other_agent_sees_it(
    world: World,
) -> None:
    owner, other = await world.actor("agent"), await world.actor("manager")
    stranger = Actor(
        world.policy.access(Principal(user_id=None, name="x", role="agent")), phone_region="ES"
    )
    new = customers.NewCustomerInput("client", {"name": "Mine"})
    pk = await customers.create_customer(world.db, world.catalog, world.pm, owner, new)
    (row,) = await world.db.fetch("SELECT owner FROM customer WHERE id = {}", pk)
    assert row["owner"] == owner.user_id

    contact = contacts.NewContact(pk, {"name": "Ana", "is_primary": True})
    with pytest.raises(UserInputError) as refused:
        await contacts.add_contact(world.db, world.catalog, world.pm, stranger, contact)
    assert [(p.field, p.code) for p in refused.value.problems] == [("customerId", "NOT_FOUND")]
    added = await contacts.add_contact(world.db, world.catalog, world.pm, other, contact)
    actions = await world.db.fetch("SELECT action, entity_id FROM audit_entry ORDER BY id")
    assert actions == [
        {"action": "customer.created", "entity_id": pk},
        {"action": "contact.added", "entity_id": added},
    ]


async def test_a_stale_version_rolls_the_whole_write_back(world: World) -> None:
    manager = await world.actor("manager")
    pk = await customers.create_customer(
        world.db,
        world.catalog,
        world.pm,
        manager,
        customers.NewCustomerInput("client", {"name": "A"}),
    )
    change = customers.CustomerChange(pk, expected_version=7, fields={"name": "B"})
    with pytest.raises(UserInputError) as refused:
        await customers.update_customer(world.db, world.catalog, world.pm, manager, change)
    assert [p.code for p in refused.value.problems] == ["VERSION_CONFLICT"]
    (row,) = await world.db.fetch("SELECT name, version FROM customer WHERE id = {}", pk)
    assert row == {"name": "A", "version": 1}
    assert len(await world.db.fetch("SELECT id FROM event")) == 1
