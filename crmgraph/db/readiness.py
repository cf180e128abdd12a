"""Whether the databases answer now (``/readyz``): the primary and, when
configured, the read replica. Which one failed is for the caller; why (an
exception that may name hosts and users) is only for the log."""

from __future__ import annotations

import logging

from piccolo.engine.base import Engine
from piccolo.querystring import QueryString

from crmgraph.db.engine import Database

log = logging.getLogger(__name__)


async def unanswered(db: Database) -> list[str]:
    """Which of ``database`` (the primary) and ``replica`` do not answer;
    each failure is logged with its exception."""
    engines: list[tuple[str, Engine]] = [("database", db.engine)]
    if db.reader is not None:
        engines.append(("replica", db.reader))
    down = []
    for name, engine in engines:
        try:
            await engine.run_querystring(QueryString("SELECT 1 AS ok"))
        except Exception:  # any failure means not ready
            log.warning("readiness: the %s did not answer", name, exc_info=True)
            down.append(name)
    return down
