"""The core piccolo app: crmgraph's own tables and migrations."""

from __future__ import annotations

import os

from piccolo.conf.apps import AppConfig

from crmgraph.db.tables import CORE_TABLES

APP_CONFIG = AppConfig(
    app_name="crmgraph",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "migrations"),
    table_classes=list(CORE_TABLES),
    migration_dependencies=[],
    commands=[],
)
