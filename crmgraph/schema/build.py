"""Assemble the strawberry schema from the plugin catalog.

The pieces are built in their own modules (customers, interactions, filters,
kind_info, node, query_root, crm_schema); this one puts them together with
what plugins add through the hooks (:mod:`crmgraph.schema.contributions`):
the built-in features (teamwork, dedupe, privacy, analytics, imports,
webhooks) come in that way, as a partner's plugin does. No ``from __future__
import annotations`` in any of them: the types are created from what plugins
declare, and strawberry must see real classes in their annotations, not
strings naming local variables.
"""

import enum
from typing import Any

import pluggy
import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from crmgraph.customer_types import CustomerType
from crmgraph.extension_points import CustomerFieldTypes
from crmgraph.registry import Catalog
from crmgraph.schema import core_types as core
from crmgraph.schema import described, subscriptions
from crmgraph.schema.contributions import (
    customer_fields,
    field_names,
    node_loaders,
    plugin_contributions,
)
from crmgraph.schema.crm_schema import CRMSchema, SubscriptionOverHTTP, merge_roots
from crmgraph.schema.customers import (
    InterfaceField,
    build_customer_classes,
    build_customer_interface,
    build_customer_pages,
    build_relationship,
    feature_columns,
    load_customer,
)
from crmgraph.schema.duplicates import candidate_type
from crmgraph.schema.filters import build_filters, decode_ids
from crmgraph.schema.history import field_history
from crmgraph.schema.interactions import build_interaction_types
from crmgraph.schema.kind_info import build_kind_infos
from crmgraph.schema.mutations.build import build_mutation_type
from crmgraph.schema.needs import Need
from crmgraph.schema.node import build_node_lookup
from crmgraph.schema.query_root import build_query_type
from crmgraph.schema.roles import build_role_types
from crmgraph.schema.schema_types import SchemaTypes

__all__ = ["CRMSchema", "SchemaTypes", "SubscriptionOverHTTP", "build_schema"]


def kind_description(descriptor: CustomerType) -> str:
    """A CustomerKind value's description: its type's own, and where its fields are."""
    own = (descriptor.description or "").strip()
    where = f"Its attributes are fields of the type `{descriptor.graphql_name}`."
    return f"{own} {where}" if own else where


def build_schema(
    catalog: Catalog, pm: pluggy.PluginManager, extensions: tuple[Any, ...] = ()
) -> tuple[strawberry.Schema, SchemaTypes]:
    descriptors = catalog.customer_types
    CustomerKind = described.enum_type(
        enum.Enum("CustomerKind", {d.key.upper(): d.key for d in descriptors}),  # type: ignore[misc]
        "The type of a customer; each is added by a plugin.",
        {d.key.upper(): kind_description(d) for d in descriptors},
    )
    interactions = build_interaction_types(catalog.channels)
    InteractionChannel = interactions.channel_enum
    filters = build_filters([d.key for d in descriptors], CustomerKind, InteractionChannel)
    roles = build_role_types(descriptors, CustomerKind)
    # the core's own interface first: the names plugins' fields may not take
    history = InterfaceField("field_history", None, field_history)
    core_names = field_names(
        build_customer_interface(
            catalog, CustomerKind, interactions, filters, (roles.field, history)
        )
    )
    field_types = CustomerFieldTypes(
        CustomerKind, InteractionChannel, interactions.interaction, feature_columns()
    )
    CustomerBase = build_customer_interface(
        catalog,
        CustomerKind,
        interactions,
        filters,
        [roles.field, history, *customer_fields(pm, field_types, catalog, core_names)],
    )
    customer_classes = build_customer_classes(descriptors, CustomerBase)
    role_classes = roles.add_classes(descriptors, customer_classes.attribute_enums)
    types = SchemaTypes(
        customer_classes=customer_classes.classes,
        attribute_enums=customer_classes.attribute_enums,
        catalog=catalog,
        kind_enum=CustomerKind,
        channel_enum=InteractionChannel,
        interaction_cls=interactions.interaction,
        relationship_cls=build_relationship(CustomerBase),
        customer_interface=CustomerBase,
        customer_query=filters.customer_query,
        interaction_match=filters.interaction_match,
        customer_filter=filters.customer_filter,
    )
    contributions = plugin_contributions(pm, types)
    node_by_id = build_node_lookup(types, loaders=node_loaders(contributions), converters={})
    Query = build_query_type(
        catalog,
        types,
        filters,
        build_customer_pages(CustomerBase),
        build_kind_infos(catalog, CustomerKind),
        node_by_id,
    )
    Mutation = build_mutation_type(
        types, customer_classes.attribute_inputs, candidate_type(CustomerBase, load_customer)
    )
    Subscription = subscriptions.build_subscription_type(
        CustomerKind,
        CustomerBase,
        load_customer,
        decode_ids,
        sorted({s.key for d in descriptors for s in d.lifecycle.stages}),
    )
    schema = CRMSchema(
        plugins=catalog.plugins,
        query=merge_roots("Query", Query, contributions, "query"),
        mutation=merge_roots("Mutation", Mutation, contributions, "mutation"),
        subscription=merge_roots("Subscription", Subscription, contributions, "subscription"),
        types=[
            *customer_classes.classes.values(),
            *role_classes,
            core.User,
            core.Contact,
            Need,
            core.StageChange,
            core.Team,
            *(t for _, c in contributions for t in c.types),
        ],
        extensions=[ParserCache, ValidationCache, *extensions],
    )
    return schema, types
