"""Imports over GraphQL, as a built-in plugin: the ``customer.import``
permission (managers hold it, admins hold everything) and the
``importCustomers``, ``importContacts`` and ``importInteractions`` mutations
(:mod:`crmgraph.schema.imports`). The command
line's ``crmgraph import`` does not need it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmgraph.extension_points import GraphQLContribution, Permission
from crmgraph.hookspecs import hookimpl

if TYPE_CHECKING:
    from crmgraph.schema.build import SchemaTypes

CUSTOMER_IMPORT = "customer.import"


@hookimpl
def crmgraph_permissions() -> list[Permission]:
    return [
        Permission(
            CUSTOMER_IMPORT,
            "Import customers, contacts and interactions from files (importCustomers, "
            "importContacts, importInteractions), with the caller's own rights",
            roles=("manager",),
        )
    ]


@hookimpl
def crmgraph_graphql(types: SchemaTypes) -> GraphQLContribution:
    # imported here: the schema modules need the core schema, which is being built
    from crmgraph.schema.imports import build_import_mutation

    return GraphQLContribution(mutation=[build_import_mutation(types.kind_enum)])
