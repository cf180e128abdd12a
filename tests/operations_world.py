"""What the tests calling crmgraph.operations as plain functions share: a
database with the built-in plugins (the ``world`` fixture), callers of any
role, and their refusals checked to have run no SQL statement."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pluggy
import pytest

from crmgraph import auth
from crmgraph.access import Policy
from crmgraph.auth import Principal
from crmgraph.db.engine import Database, StatementCounter, current_counter, make_engine
from crmgraph.db.tables import CORE_TABLES
from crmgraph.operations import customers
from crmgraph.operations.actor import Actor
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.testing import settings_for
from crmgraph.validation import UserInputError


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

    async def customer(self, actor: Actor, name: str, **fields: Any) -> int:
        new = customers.NewCustomerInput("client", {"name": name, **fields})
        return await customers.create_customer(self.db, self.catalog, self.pm, actor, new)

    async def actions(self) -> list[tuple[str, str, int]]:
        rows = await self.db.fetch("SELECT action, entity_type, entity_id FROM audit_entry")
        return [(r["action"], r["entity_type"], r["entity_id"]) for r in rows]

    async def refused(
        self, write: Callable[..., Awaitable[object]], actor: Actor, data: object
    ) -> pytest.ExceptionInfo[UserInputError]:
        """The refusal ``write(db, catalog, pm, actor, data)`` raises, checked
        to come before any SQL statement."""
        with counting() as counter, pytest.raises(UserInputError) as refused:
            await write(self.db, self.catalog, self.pm, actor, data)
        assert counter.count == 0, counter.statements
        return refused


# imported by name as world_fixture, so a test's ``world`` parameter shadows no import
@pytest.fixture(name="world")
async def world_fixture(database_url: str) -> AsyncIterator[World]:
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


def problems_of(refused: pytest.ExceptionInfo[UserInputError]) -> list[tuple[str | None, str]]:
    return [(p.field, p.code) for p in refused.value.problems]
