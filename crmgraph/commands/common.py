"""What every command shares: settings from the arguments, migrations, and
the app's state a command uses (settings, plugins, catalog, database) for the
length of one piece of work.

The imports inside the functions are lazy on purpose: every command module is
imported to build the argument parser, and ``crmgraph --help`` stays fast when
the database and plugin modules load only for a command that runs.

A command's state is not the server's (:class:`crmgraph.app.AppState`): no
command reads the GraphQL schema, whose build and modules (the ASGI app,
strawberry's conversion of every type, the compiled reads) were about a
third of each command's CPU (0.45 of 1.3 s), nor the server's loops,
listeners and caches.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import pluggy

    from crmgraph.db.engine import Database
    from crmgraph.registry import Catalog
    from crmgraph.settings import Settings

T = TypeVar("T")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The environment's settings, with ``--database`` when given."""
    from crmgraph.settings import Settings  # lazy: pydantic is most of --help's CPU

    settings = Settings.from_env()
    if getattr(args, "database", None):
        settings = settings.with_database(args.database)
    return settings


async def migrate_database(settings: Settings) -> None:
    """Bring the database up to the core's and the loaded plugins' migrations."""
    from crmgraph.db.engine import make_engine  # lazy: start-up cost (see above)
    from crmgraph.db.migrate import catalog_apps, migrate
    from crmgraph.registry import Catalog, make_plugin_manager

    catalog = Catalog.from_plugin_manager(make_plugin_manager(settings))
    await migrate(make_engine(settings), catalog_apps(catalog))


@dataclass(frozen=True)
class CommandState:
    """What commands read of the app: its settings, plugin manager, catalog
    and database (the names :class:`crmgraph.app.AppState` gives them)."""

    settings: Settings
    plugin_manager: pluggy.PluginManager
    catalog: Catalog
    db: Database


def command_state(settings: Settings) -> CommandState:
    """The plugins, their catalog and the database (not started); what the
    server refuses to start with in these (a plugin's declarations, the
    grants, the duplicate rules) is refused here the same way."""
    from crmgraph.access import Policy  # lazy: start-up cost (see above)
    from crmgraph.db.engine import Database, make_engine
    from crmgraph.db.migrate import plugin_tables
    from crmgraph.db.tables import CORE_TABLES
    from crmgraph.dedupe.rules import check_duplicate_rules
    from crmgraph.registry import Catalog, make_plugin_manager

    pm = make_plugin_manager(settings)
    catalog = Catalog.from_plugin_manager(pm)
    Policy.from_catalog(catalog, settings.grants)
    check_duplicate_rules(catalog, settings.duplicate_rules)
    db = Database(make_engine(settings), (*CORE_TABLES, *plugin_tables(catalog)))
    return CommandState(settings, pm, catalog, db)


async def with_app_state(settings: Settings, work: Callable[[CommandState], Awaitable[T]]) -> T:
    """``work`` run with the command's state, its database opened and closed around it."""
    state = command_state(settings)
    await state.db.start(settings)
    try:
        return await work(state)
    finally:
        await state.db.stop()
