"""Assemble the strawberry schema from the plugin catalog.

The pieces are built in their own modules (customers, interactions, filters,
kind_info, node, query_root, crm_schema); this one puts them together and
wires in the features (teamwork, merges, duplicates, dismissals, privacy and
consent, analytics). No ``from __future__ import annotations`` in any of them:
the types are created from what plugins declare, and strawberry must see real
classes in their annotations, not strings naming local variables.
"""

import datetime
import enum
from typing import Annotated, Any

import pluggy
import strawberry
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.tools import merge_types
from strawberry.types import Info

from crmgraph.registry import Catalog
from crmgraph.schema import analytics as analytics_schema
from crmgraph.schema import consent_types, mutations, subscriptions
from crmgraph.schema import core_types as core
from crmgraph.schema import dismissals as dismissals_schema
from crmgraph.schema import duplicates as duplicates_schema
from crmgraph.schema import merge as merge_schema
from crmgraph.schema import privacy as privacy_schema
from crmgraph.schema import teamwork as teamwork_schema
from crmgraph.schema.crm_schema import (
    CRMSchema,
    SubscriptionOverHTTP,
    merge_roots,
    plugin_contributions,
)
from crmgraph.schema.customers import (
    InterfaceField,
    build_customer_classes,
    build_customer_interface,
    build_customer_pages,
    build_relationship,
    erased_at_field,
    load_customer,
)
from crmgraph.schema.filters import build_filters, decode_ids
from crmgraph.schema.interactions import InteractionTypes, build_interaction_types
from crmgraph.schema.kind_info import build_kind_infos
from crmgraph.schema.node import build_node_lookup
from crmgraph.schema.query_root import build_query_type
from crmgraph.schema.schema_types import SchemaTypes

__all__ = ["CRMSchema", "SchemaTypes", "SubscriptionOverHTTP", "build_schema"]


def feature_customer_fields(
    interactions: InteractionTypes, consent_schema: consent_types.ConsentTypes
) -> list[InterfaceField]:
    """The fields teamwork, merges, privacy and analytics add to ``Customer``."""
    TimelineConnection, timeline_resolver = teamwork_schema.build_timeline(interactions.interaction)

    async def knowledge(
        self: Any,
        info: Info,
        as_of: Annotated[
            datetime.datetime | None,
            strawberry.argument(description="The moment to compute it as of (default: now)."),
        ] = None,
    ) -> analytics_schema.CustomerKnowledge:
        return await analytics_schema.customer_knowledge(info, self.pk, as_of)

    return [
        InterfaceField(
            "notes",
            teamwork_schema.NoteConnection,
            strawberry.field(
                resolver=teamwork_schema.customer_notes, description="Notes, newest first."
            ),
        ),
        InterfaceField(
            "tasks",
            teamwork_schema.TaskConnection,
            strawberry.field(
                resolver=teamwork_schema.customer_tasks,
                description="Tasks, newest first; optionally only some statuses.",
            ),
        ),
        InterfaceField(
            "timeline",
            TimelineConnection,
            strawberry.field(
                resolver=timeline_resolver,
                description="Interactions, notes, tasks, stage changes and (with audit.read) "
                "audit entries in one list, newest first.",
            ),
        ),
        InterfaceField(
            "merges",
            list[merge_schema.CustomerMerge],
            strawberry.field(
                resolver=merge_schema.customer_merges,
                description="The customers merged into this one (undone merges too), newest first.",
            ),
        ),
        erased_at_field(),
        InterfaceField(
            "consents",
            list[consent_schema.consent],  # type: ignore[name-defined]
            strawberry.field(
                resolver=consent_schema.consents,
                description="The consents in force: the newest statement per contact (null: "
                "the customer itself), channel and purpose.",
            ),
        ),
        InterfaceField(
            "consent_history",
            list[consent_schema.consent],  # type: ignore[name-defined]
            strawberry.field(
                resolver=consent_schema.history,
                description="Every grant and withdrawal of consent, newest first.",
            ),
        ),
        InterfaceField(
            "knowledge",
            None,
            strawberry.field(
                resolver=knowledge,
                description="What continuous tracking knows of the customer: activity by "
                "channel, satisfaction and its trend, purchases, RFM scores, needs, time in "
                "stage, churn risk with its signals and a next best action. Computed in SQL, "
                "batched per page.",
                metadata={"cost": analytics_schema.KNOWLEDGE_COST},
            ),
        ),
    ]


def analytics_query(analytics_type: type, analytics_root: Any) -> type:
    Analytics = analytics_type

    @strawberry.type
    class AnalyticsQuery:
        analytics: Analytics = strawberry.field(  # type: ignore[valid-type]
            resolver=analytics_root,
            description="Analytical CRM over the customers the filter selects and the caller "
            "may see, in a period: funnel, cohorts, satisfaction, revenue, RFM, churn risk, "
            "needs and plugin metrics.",
        )

    return AnalyticsQuery


def build_schema(
    catalog: Catalog, pm: pluggy.PluginManager, extensions: tuple[Any, ...] = ()
) -> tuple[strawberry.Schema, SchemaTypes]:
    descriptors = catalog.customer_types
    CustomerKind = strawberry.enum(
        enum.Enum("CustomerKind", {d.key.upper(): d.key for d in descriptors}),  # type: ignore[misc]
        description="The type of a customer; each is added by a plugin.",
    )
    interactions = build_interaction_types(catalog.channels)
    InteractionChannel = interactions.channel_enum
    filters = build_filters([d.key for d in descriptors], CustomerKind, InteractionChannel)
    consent_schema = consent_types.build_consent_types(InteractionChannel)
    CustomerBase = build_customer_interface(
        catalog,
        CustomerKind,
        interactions,
        filters,
        feature_customer_fields(interactions, consent_schema),
    )
    customer_classes = build_customer_classes(descriptors, CustomerBase)
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
    )
    node_by_id = build_node_lookup(
        types,
        loaders={"CustomerMerge": merge_schema.merge_node},
        converters={"Note": teamwork_schema.Note.from_row, "Task": teamwork_schema.Task.from_row},
    )
    Query = build_query_type(
        catalog,
        types,
        filters,
        build_customer_pages(CustomerBase),
        build_kind_infos(catalog, CustomerKind),
        node_by_id,
    )
    Analytics, analytics_root = analytics_schema.build_analytics_type(
        CustomerBase, filters.customer_filter, filters.customer_query
    )
    PrivacyQuery, PrivacyMutation = privacy_schema.build_privacy(
        CustomerBase, InteractionChannel, consent_schema
    )
    duplicate_types = duplicates_schema.build_duplicates(CustomerBase, CustomerKind, load_customer)
    Mutation = mutations.build_mutation_type(
        types,
        CustomerBase,
        interactions.interaction,
        InteractionChannel,
        customer_classes.attribute_inputs,
        load_customer,
        duplicate_types.candidate,
    )
    Mutation = merge_types(
        "Mutation",
        (
            Mutation,
            teamwork_schema.TeamworkMutation,
            merge_schema.build_merge_mutation(CustomerBase),
            dismissals_schema.DismissalMutation,
            PrivacyMutation,
        ),
    )
    Query = merge_types(
        "Query",
        (
            analytics_query(Analytics, analytics_root),
            Query,
            teamwork_schema.TeamworkQuery,
            duplicate_types.query,
            PrivacyQuery,
        ),
    )
    Subscription = subscriptions.build_subscription_type(
        CustomerKind,
        CustomerBase,
        load_customer,
        decode_ids,
        sorted({s.key for d in descriptors for s in d.lifecycle.stages}),
    )
    contributions = plugin_contributions(pm, types)
    schema = CRMSchema(
        query=merge_roots("Query", Query, contributions, "query"),
        mutation=merge_roots("Mutation", Mutation, contributions, "mutation"),
        subscription=merge_roots("Subscription", Subscription, contributions, "subscription"),
        types=[
            *customer_classes.classes.values(),
            core.User,
            core.Contact,
            core.Need,
            core.StageChange,
            core.Team,
            *(t for _, c in contributions for t in c.types),
        ],
        extensions=[ParserCache, ValidationCache, *extensions],
    )
    return schema, types
