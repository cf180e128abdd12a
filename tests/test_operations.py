"""The core's writes called as plain functions (crmgraph.operations), without
GraphQL, on both engines: what a write leaves (the row, its audit entry and
its event, in its transaction), and the refusals that touch nothing (a
caller without the permission, bad input), with the input's problems in the
order the API reports them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import orjson
import pluggy
import pytest

from crmgraph import auth
from crmgraph.access import Policy
from crmgraph.auth import Principal
from crmgraph.db.engine import Database, StatementCounter, current_counter, make_engine
from crmgraph.db.tables import CORE_TABLES
from crmgraph.ids import encode_id
from crmgraph.operations import contacts, customers
from crmgraph.operations.actor import Actor
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.testing import settings_for
from crmgraph.validation import Problem, UserInputError


@dataclass
class World:
    db: Database
    catalog: Catalog
    pm: pluggy.PluginManager
    policy: Policy

    async def actor(self, role: str) -> Actor:
        user_id = await auth.create_user(self.db, f"Test {role}", f"{role}@test.example", role)
        principal = Principal(user_id=user_id, name=f"Test {role}", role=role)
        return Actor(self.policy.access(principal), phone_region="ES")


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    settings = settings_for(database_url)
    db = Database(make_engine(settings), CORE_TABLES)
    await db.start(settings)
    pm = make_plugin_manager(settings)
    catalog = Catalog.from_plugin_manager(pm)
    try:
        yield World(db, catalog, pm, Policy.from_catalog(catalog))
    finally:
        await db.stop()


@contextlib.contextmanager
def counting() -> Iterator[StatementCounter]:
    """The SQL statements run inside the block."""
    counter = StatementCounter()
    token = current_counter.set(counter)
    try:
        yield counter
    finally:
        current_counter.reset(token)


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
    with counting() as counter, pytest.raises(UserInputError) as refused:
        await customers.create_customer(world.db, world.catalog, world.pm, manager, new)
    assert [p.field for p in refused.value.problems] == ["name", "email", "ownerId"]
    assert counter.count == 0, counter.statements
    assert await world.db.fetch("SELECT id FROM customer") == []


async def test_a_viewer_is_refused_before_any_statement(world: World) -> None:
    viewer = await world.actor("viewer")
    new = customers.NewCustomerInput("client", {"name": "Acme"})
    with counting() as counter, pytest.raises(UserInputError) as refused:
        await customers.create_customer(world.db, world.catalog, world.pm, viewer, new)
    assert [(p.field, p.code) for p in refused.value.problems] == [(None, "FORBIDDEN")]
    assert counter.count == 0, counter.statements


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
