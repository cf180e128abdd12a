"""Imports over GraphQL, as a built-in plugin: the ``customer.import``
permission (managers hold it, admins hold everything) and the
``importCustomers``, ``importContacts`` and ``importInteractions`` mutations
(:mod:`crmgraph.schema.imports`). The command
line's ``crmgraph import`` does not need it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmgraph import CUSTOMER_IMPORT, GraphQLContribution, Permission, hookimpl
from crmgraph.schema.imports import build_import_mutation

if TYPE_CHECKING:
    from crmgraph import CoreGraphQLTypes


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
def crmgraph_graphql(types: CoreGraphQLTypes) -> GraphQLContribution:
    return GraphQLContribution(mutation=[build_import_mutation(types.kind_enum)])
