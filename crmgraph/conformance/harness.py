"""The app a check talks to: ``create_app`` (what ``crmgraph serve`` runs)
over a temporary SQLite file migrated for the plugin, its lifespan run and
GraphQL answered in process by httpx, all on the caller's event loop.

Not crmgraph.testing's ``live_server``: that module is a pytest plugin (it
imports pytest), and ``crmgraph plugin check`` must run where only crmgraph
and the plugin are installed; this is the same app, driven from one loop.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from crmgraph import auth
from crmgraph.app import AppState, create_app
from crmgraph.db.engine import make_engine
from crmgraph.db.migrate import catalog_apps, migrate
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.settings import Settings


class Refused(Exception):
    """A request the contract needed answered came back with GraphQL errors."""


def settings_for(path: Path, module: str, **overrides: Any) -> Settings:
    """Only the built-ins and the plugin under check (no entry points), no
    Redis, requests without a key let in as an admin, no rate limit."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{path}",
        "plugins": (module,),
        "disabled_plugins": (),  # every built-in, whatever CRMGRAPH_DISABLE_PLUGINS says
        "load_entry_points": False,
        "migrate_on_start": False,
        "anonymous": True,
        "rate_limit_cost": 0,
        "redis_url": None,
    }
    return Settings(**{**values, **overrides})


async def migrated_copies(folder: Path, module: str, count: int) -> list[Path]:
    """``count`` migrated database files (one migration, then copies)."""
    first = folder / "conformance-0.sqlite"
    settings = settings_for(first, module)
    catalog = Catalog.from_plugin_manager(make_plugin_manager(settings))
    await migrate(make_engine(settings), catalog_apps(catalog))
    paths = [first]
    for index in range(1, count):
        copy = folder / f"conformance-{index}.sqlite"
        shutil.copyfile(first, copy)
        paths.append(copy)
    return paths


@dataclass
class Running:
    """A started app: its state (database pool open) and GraphQL over HTTP."""

    state: AppState
    http: httpx.AsyncClient

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        body = {"query": query, "variables": variables or {}}
        response = await self.http.post("/graphql", json=body, headers=headers)
        if response.status_code != 200:
            raise Refused(f"HTTP {response.status_code}: {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, key: str | None = None
    ) -> dict[str, Any]:
        """``data`` of a request that must not fail; :class:`Refused` otherwise."""
        answer = await self.post(query, variables, key)
        if answer.get("errors"):
            raise Refused("; ".join(e.get("message", "?") for e in answer["errors"]))
        data: dict[str, Any] = answer["data"]
        return data

    async def user(self, role: str) -> tuple[int, str]:
        """A new user with ``role``: their id and an API key."""
        email = f"{role}-{uuid.uuid4().hex[:8]}@conformance.example"
        user_id = await auth.create_user(self.state.db, f"Conformance {role}", email, role)
        return user_id, await auth.create_key(self.state.db, email, "conformance")


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Running]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://conformance", timeout=60
        ) as http:
            yield Running(app.state.crm, http)
