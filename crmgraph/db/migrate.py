"""Run piccolo migrations for the core app and every plugin app, programmatically."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence

from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import AppRegistry
from piccolo.engine.base import Engine

from crmgraph.db.engine import bind_tables, enable_wal

CORE_APP = "crmgraph.db.piccolo_app"
os.environ.setdefault("PICCOLO_CONF", "crmgraph.db.piccolo_conf")


class MigrationError(RuntimeError):
    pass


async def migrate(engine: Engine, app_modules: Sequence[str] = (), quiet: bool = True) -> None:
    """Bring the database behind ``engine`` up to date: the core app first, then
    each plugin app (``app_modules`` name their piccolo_app modules)."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from crmgraph.db import piccolo_conf

    if engine.engine_type == "sqlite":
        enable_wal(engine.path)  # type: ignore[attr-defined]
    apps = [CORE_APP, *[m for m in app_modules if m != CORE_APP]]
    piccolo_conf.DB = engine
    piccolo_conf.APP_REGISTRY = AppRegistry(apps=apps)
    bind_tables(engine, [Migration])
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
        result = await run_forwards(app_name="all")
    if not result.success:
        raise MigrationError(f"migrations failed: {result.message}\n{sink.getvalue()}")
