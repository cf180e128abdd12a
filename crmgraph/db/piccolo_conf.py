"""piccolo configuration module (``PICCOLO_CONF``) used by the migration runner.

``DB`` is reassigned by :func:`crmgraph.db.migrate.migrate` before each run so
migrations go to whatever database the caller chose; the default below is only
what piccolo's own CLI sees (``piccolo migrations new crmgraph --auto``).
"""

from __future__ import annotations

from piccolo.conf.apps import AppRegistry
from piccolo.engine.base import Engine
from piccolo.engine.sqlite import SQLiteEngine

DB: Engine = SQLiteEngine(path="crmgraph.sqlite")
APP_REGISTRY = AppRegistry(apps=["crmgraph.db.piccolo_app"])
