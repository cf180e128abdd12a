"""Duplicates and merges, as a built-in plugin: ``duplicateCandidates`` and
``duplicates``, ``mergeCustomers`` and ``undoMerge``, ``dismissDuplicate``
and ``restoreDuplicate``, each customer's ``merges`` and a merge by
``node(id:)`` (:mod:`crmgraph.schema.duplicates`, :mod:`crmgraph.schema.merge`,
:mod:`crmgraph.schema.dismissals`). Disabling it
(``CRMGRAPH_DISABLE_PLUGINS=crmgraph.plugins.dedupe``) removes them all;
writes still keep the match keys and pairs, and ``createCustomer`` still
lists likely duplicates and applies each type's duplicate rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

import crmgraph
from crmgraph import CustomerField, GraphQLContribution, Permission, hookimpl
from crmgraph.schema.dismissals import DismissalMutation
from crmgraph.schema.duplicates import build_duplicates_query
from crmgraph.schema.merge import CustomerMerge, build_merge_mutation, customer_merges, merge_node

if TYPE_CHECKING:
    from crmgraph import CoreGraphQLTypes, CustomerFieldTypes


@hookimpl
def crmgraph_customer_fields(types: CustomerFieldTypes) -> list[CustomerField]:
    return [
        CustomerField(
            "merges",
            strawberry.field(
                resolver=customer_merges,
                description="The customers merged into this one (undone merges too), newest first.",
            ),
            list[CustomerMerge],
        )
    ]


@hookimpl
def crmgraph_graphql(types: CoreGraphQLTypes) -> GraphQLContribution:
    customer = types.customer_interface
    return GraphQLContribution(
        query=[build_duplicates_query(customer, types.kind_enum, types.load_customer)],
        mutation=[build_merge_mutation(customer), DismissalMutation],
        nodes={"CustomerMerge": merge_node},
    )


@hookimpl
def crmgraph_permissions() -> list[Permission]:
    """Merging and dismissing duplicates is for managers."""
    return [
        Permission(
            crmgraph.CUSTOMER_MERGE,
            "Merge two customers into one (mergeCustomers), undo a merge (undoMerge), and dismiss "
            "or restore a likely duplicate pair (dismissDuplicate, restoreDuplicate)",
            roles=("manager",),
        ),
    ]
