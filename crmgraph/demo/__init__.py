"""A realistic, deterministic demo data set (``crmgraph demo``, ``serve --demo``).

The whole data set is planned in memory first (:mod:`.generator`, drawing on
:mod:`.words` and :mod:`.values`), so it depends only on the seed, the catalog
and ``now``; it is then written with multi-row INSERTs in one transaction
(:mod:`.seed`; 3000 customers in about 4 s on SQLite, 5 s on PostgreSQL), and
each plugin may add its rows through ``crmgraph_seed_demo``.
"""

from __future__ import annotations

from crmgraph.demo.plan import DemoPlan, DemoSummary
from crmgraph.demo.seed import has_data, plan_demo, seed_demo, write_plan
from crmgraph.demo.words import (
    NEED_KINDS,
    NEED_PRIORITIES,
    NEED_STATUSES,
    OUTCOMES,
    USER_ROLES,
)

__all__ = [
    "NEED_KINDS",
    "NEED_PRIORITIES",
    "NEED_STATUSES",
    "OUTCOMES",
    "USER_ROLES",
    "DemoPlan",
    "DemoSummary",
    "has_data",
    "plan_demo",
    "seed_demo",
    "write_plan",
]
