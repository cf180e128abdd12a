"""Webhooks, as a built-in plugin: the ``webhook.manage`` permission (admins
hold it; grant it to other roles with ``CRMGRAPH_GRANTS``), the GraphQL to
manage webhooks and read their delivery log, and the deliverer, a background
service of each server. Disabling this plugin
(``CRMGRAPH_DISABLE_PLUGINS=crmgraph.plugins.webhooks``) removes all three.
The deliverer itself is :mod:`crmgraph.webhooks`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmgraph import GraphQLContribution, Permission, hookimpl
from crmgraph.schema.webhooks import WebhookMutation, WebhookQuery
from crmgraph.webhooks import WEBHOOK_MANAGE, WebhookDeliverer

if TYPE_CHECKING:
    from crmgraph import CoreGraphQLTypes, Database, Settings


@hookimpl
def crmgraph_permissions() -> list[Permission]:
    return [
        Permission(
            WEBHOOK_MANAGE,
            "Create, change, delete and replay webhooks and read their delivery log",
        )
    ]


@hookimpl
def crmgraph_graphql(types: CoreGraphQLTypes) -> GraphQLContribution:
    return GraphQLContribution(query=[WebhookQuery], mutation=[WebhookMutation])


@hookimpl
def crmgraph_background_services(db: Database, settings: Settings) -> list[WebhookDeliverer]:
    return [WebhookDeliverer(db, settings)]
