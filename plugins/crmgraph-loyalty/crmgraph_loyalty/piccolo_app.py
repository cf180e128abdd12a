"""The plugin's piccolo app, declared to crmgraph through ``crmgraph_piccolo_apps``;
``crmgraph migrate`` runs its migrations after the core's."""

from __future__ import annotations

import os

from piccolo.conf.apps import AppConfig

from crmgraph_loyalty.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="crmgraph_loyalty",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "migrations"),
    table_classes=list(TABLES),
    migration_dependencies=[],
    commands=[],
)
