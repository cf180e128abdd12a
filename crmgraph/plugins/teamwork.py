"""Team work, as a built-in plugin: each customer's ``notes``, ``tasks`` and
``timeline``, the caller's ``myTasks``, the note and task mutations, and
notes and tasks by ``node(id:)`` (:mod:`crmgraph.schema.teamwork`,
:mod:`crmgraph.schema.teamwork_timeline`,
:mod:`crmgraph.schema.teamwork_mutations`). Disabling it
(``CRMGRAPH_DISABLE_PLUGINS=crmgraph.plugins.teamwork``) removes them all;
the notes and tasks already written stay in the database (and in exports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

import crmgraph
from crmgraph import CustomerField, GraphQLContribution, Permission, hookimpl
from crmgraph.schema.teamwork import (
    NODES,
    NoteConnection,
    TaskConnection,
    TeamworkQuery,
    customer_notes,
    customer_tasks,
)
from crmgraph.schema.teamwork_mutations import TeamworkMutation
from crmgraph.schema.teamwork_timeline import build_timeline

if TYPE_CHECKING:
    from crmgraph import CoreGraphQLTypes, CustomerFieldTypes


@hookimpl
def crmgraph_customer_fields(types: CustomerFieldTypes) -> list[CustomerField]:
    timeline_connection, timeline = build_timeline(types.interaction_cls)
    return [
        CustomerField(
            "notes",
            strawberry.field(resolver=customer_notes, description="Notes, newest first."),
            NoteConnection,
        ),
        CustomerField(
            "tasks",
            strawberry.field(
                resolver=customer_tasks,
                description="Tasks, newest first; optionally only some statuses.",
            ),
            TaskConnection,
        ),
        CustomerField(
            "timeline",
            strawberry.field(
                resolver=timeline,
                description="Interactions, notes, tasks, stage changes and (with audit.read) "
                "audit entries in one list, newest first.",
            ),
            timeline_connection,
        ),
    ]


@hookimpl
def crmgraph_graphql(types: CoreGraphQLTypes) -> GraphQLContribution:
    return GraphQLContribution(
        query=[TeamworkQuery],
        mutation=[TeamworkMutation],
        nodes=NODES,
    )


@hookimpl
def crmgraph_permissions() -> list[Permission]:
    """Editing others' notes is granted to no role by default (admins hold it)."""
    return [
        Permission(
            crmgraph.NOTE_MODERATE,
            "Edit and delete notes written by others (authors edit their own)",
            roles=(),
        ),
    ]
