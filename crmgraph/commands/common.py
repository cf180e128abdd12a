"""What every command shares: settings from the arguments, migrations, and
the app's state (database, catalog, plugins) for the length of one piece of work.

The imports inside the functions are lazy on purpose: every command module is
imported to build the argument parser, and ``crmgraph --help`` stays fast when
the database, plugin and app modules load only for a command that runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from crmgraph.settings import Settings

if TYPE_CHECKING:
    from crmgraph.app import AppState

T = TypeVar("T")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The environment's settings, with ``--database`` when given."""
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


async def with_app_state(settings: Settings, work: Callable[[AppState], Awaitable[T]]) -> T:
    """``work`` run with the app's state, opened and closed around it."""
    from crmgraph.app import with_state  # lazy: start-up cost (see above)

    return await with_state(settings, work)
