"""The Need type: a core type whose ``tasks`` field is team work's (the schema
leaves it out while :mod:`crmgraph.plugins.teamwork` is not loaded). It stands
above the core types and team work's task type, which both stand below it, so
no module needs the other."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from crmgraph import core_fields
from crmgraph.schema import core_types as core
from crmgraph.schema import described
from crmgraph.schema.ids import decode_id
from crmgraph.schema.tasks import Task, need_tasks


@strawberry.type(description="What the customer needs: caught in time, dimensioned, characterised.")
@described.columns(core_fields.NEED, core.CORE_ENUMS)
class Need(core.Node):
    # team work's field (crmgraph.schema.crm_schema.OWNING_PLUGIN): gone without it
    @strawberry.field(
        description="Tasks for this need, oldest first.",
        metadata={"plugin": "crmgraph.plugins.teamwork"},
    )
    async def tasks(self, info: Info) -> list[Task]:
        return await need_tasks(info, decode_id(self.id, "Need")[1])
