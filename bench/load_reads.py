"""The GraphQL load benchmark's frontend read scenarios (issue 21): a client
list page, a relation filter, a customer page and a dashboard, each written as
a CRM frontend would write it for crmgraph, and as the nearest PostGraphile 5
document (Amber preset, connection-filter plugin with relation filters).

The rows they read are found in the seeded database (``Fixtures``), so that
the documents hold fixed values for a given data set.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import asyncpg

from bench.load_queries import (
    CRMGRAPH,
    PG_ACTIVE,
    PG_CONTACT_ORDER,
    PG_CUSTOMER_ORDER,
    PG_INTERACTION_ORDER,
    POSTGRAPHILE,
    Scenario,
)

LIST_CUSTOMERS = 25
LIST_KIND = "client"
RELATED_CUSTOMERS = 20
# crmgraph's InteractionChannel has no CALL: a call is PHONE
RELATED_CHANNELS = ("EMAIL", "PHONE")
DETAIL_INTERACTIONS = 10
DASHBOARD_CUSTOMERS = 50
DASHBOARD_INTERACTIONS = 5
DASHBOARD_CHANNEL = "EMAIL"

PG_NEED_ORDER = "[CREATED_AT_DESC, ROW_ID_DESC]"
PG_STAGE_ORDER = "[AT_ASC, ROW_ID_ASC]"
# a customer's stage is its role of its own kind (a converted one has two)
PG_ROLES = "customerRolesByCustomer { nodes { kind stage } }"
DETAIL_INTERACTION_FIELDS = "id channel direction occurredAt subject outcome amount"


@dataclass(frozen=True)
class Fixtures:
    """Rows of the seeded data the documents name."""

    timeline_customer: int  # at least 30 interactions
    detail_customer: int  # a client with contacts, interactions, needs and stage moves
    since: str  # a day three quarters into the interactions' span (ISO)


async def find_fixtures(conn: asyncpg.Connection) -> Fixtures:
    timeline = await conn.fetchval(
        "SELECT i.customer FROM interaction i JOIN customer c ON c.id = i.customer "
        "WHERE c.deleted_at IS NULL GROUP BY i.customer HAVING COUNT(*) >= 30 "
        "ORDER BY i.customer LIMIT 1"
    )
    detail = await conn.fetchval(
        "SELECT c.id FROM customer c WHERE c.deleted_at IS NULL AND c.kind = 'client' "
        "AND (SELECT COUNT(*) FROM interaction i WHERE i.customer = c.id) >= $1 "
        "AND (SELECT COUNT(*) FROM need n WHERE n.customer = c.id) >= 2 "
        "AND (SELECT COUNT(*) FROM stage_change s WHERE s.customer = c.id) >= 3 "
        "AND (SELECT COUNT(*) FROM contact k WHERE k.customer = c.id) >= 2 "
        "ORDER BY c.id LIMIT 1",
        DETAIL_INTERACTIONS + 5,
    )
    since = await conn.fetchval(
        "SELECT date_trunc('day', MIN(occurred_at) + (MAX(occurred_at) - MIN(occurred_at)) "
        "* 0.75) FROM interaction"
    )
    if timeline is None or detail is None or since is None:
        raise SystemExit("the data set lacks the scenarios' rows: reseed with --reseed")
    return Fixtures(int(timeline), int(detail), since.isoformat())


def global_id(pk: int) -> str:
    return base64.b64encode(f"Customer:{pk}".encode()).decode()


def read_scenarios(fixtures: Fixtures) -> list[Scenario]:
    channels = ", ".join(RELATED_CHANNELS)
    pg_channels = ", ".join(f'"{c}"' for c in RELATED_CHANNELS)
    detail = fixtures.detail_customer
    return [
        Scenario(
            "list",
            f"a list page: {LIST_CUSTOMERS} {LIST_KIND}s newest first with totalCount, "
            "pageInfo, cursors, stage, owner and the client attributes",
            {
                CRMGRAPH: (
                    f"{{ customers(first: {LIST_CUSTOMERS}, filter: {{ kinds: "
                    f"[{LIST_KIND.upper()}] }}) {{ totalCount pageInfo {{ hasNextPage "
                    "endCursor } edges { cursor node { id name email stage updatedAt "
                    "owner { name email } ... on Client { segment industry annualRevenue } "
                    "} } } }"
                ),
                POSTGRAPHILE: (
                    f"{{ allCustomers(first: {LIST_CUSTOMERS}, condition: {{ kind: "
                    f'"{LIST_KIND}" }}, filter: {{{PG_ACTIVE}}}, orderBy: {PG_CUSTOMER_ORDER}) '
                    "{ totalCount pageInfo { hasNextPage endCursor } edges { cursor node { "
                    "id name email updatedAt attributes customerRolesByCustomer(condition: "
                    f'{{ kind: "{LIST_KIND}" }}) {{ nodes {{ kind stage }} }} '
                    "crmUserByOwner { name email } } } } }"
                ),
            },
        ),
        Scenario(
            "related",
            f"{RELATED_CUSTOMERS} customers with an interaction on {channels} since "
            f"{fixtures.since[:10]} (a relation filter)",
            {
                CRMGRAPH: (
                    f"{{ customers(first: {RELATED_CUSTOMERS}, filter: {{ hasInteraction: "
                    f'{{ channels: [{channels}], since: "{fixtures.since}" }} }}) '
                    "{ nodes { id name email kind } } }"
                ),
                POSTGRAPHILE: (
                    f"{{ allCustomers(first: {RELATED_CUSTOMERS}, filter: {{{PG_ACTIVE}, "
                    f"interactionsByCustomer: {{ some: {{ channel: {{ in: [{pg_channels}] }}, "
                    f'occurredAt: {{ greaterThanOrEqualTo: "{fixtures.since}" }} }} }} }}, '
                    f"orderBy: {PG_CUSTOMER_ORDER}) {{ nodes {{ id name email kind }} }} }}"
                ),
            },
        ),
        Scenario(
            "detail",
            f"a customer page: the customer, its contacts, {DETAIL_INTERACTIONS} newest "
            "interactions as edges, needs and stage history",
            {
                CRMGRAPH: (
                    f'{{ customer(id: "{global_id(detail)}") {{ id name email phone kind '
                    "stage version createdAt updatedAt owner { name email } "
                    "contacts { name email jobTitle isPrimary } "
                    f"interactions(first: {DETAIL_INTERACTIONS}) {{ edges {{ cursor node {{ "
                    f"{DETAIL_INTERACTION_FIELDS} }} }} }} needs {{ title status }} "
                    "stageHistory { toStage at } } }"
                ),
                POSTGRAPHILE: (
                    f"{{ customerByRowId(rowId: {detail}) {{ id name email phone kind "
                    f"version createdAt updatedAt {PG_ROLES} crmUserByOwner {{ name email }} "
                    f"contactsByCustomer(orderBy: {PG_CONTACT_ORDER}) {{ nodes {{ name email "
                    "jobTitle isPrimary } } "
                    f"interactionsByCustomer(first: {DETAIL_INTERACTIONS}, "
                    f"orderBy: {PG_INTERACTION_ORDER}) {{ edges {{ cursor node {{ "
                    f"{DETAIL_INTERACTION_FIELDS} }} }} }} "
                    f"needsByCustomer(orderBy: {PG_NEED_ORDER}) {{ nodes {{ title status }} }} "
                    f"stageChangesByCustomer(orderBy: {PG_STAGE_ORDER}) "
                    "{ nodes { toStage at } } } }"
                ),
            },
        ),
        Scenario(
            "dashboard",
            f"{DASHBOARD_CUSTOMERS} customers, each with its {DASHBOARD_INTERACTIONS} newest "
            f"{DASHBOARD_CHANNEL} interactions and its contacts",
            {
                CRMGRAPH: (
                    f"{{ customers(first: {DASHBOARD_CUSTOMERS}) {{ nodes {{ id name kind "
                    "stage contacts { name email } "
                    f"interactions(first: {DASHBOARD_INTERACTIONS}, filter: {{ channels: "
                    f"[{DASHBOARD_CHANNEL}] }}) {{ nodes {{ id channel occurredAt subject }} }} "
                    "} } }"
                ),
                POSTGRAPHILE: (
                    f"{{ allCustomers(first: {DASHBOARD_CUSTOMERS}, filter: {{{PG_ACTIVE}}}, "
                    f"orderBy: {PG_CUSTOMER_ORDER}) {{ nodes {{ id name kind {PG_ROLES} "
                    f"contactsByCustomer(orderBy: {PG_CONTACT_ORDER}) {{ nodes {{ name email }} }} "
                    f"interactionsByCustomer(first: {DASHBOARD_INTERACTIONS}, condition: "
                    f'{{ channel: "{DASHBOARD_CHANNEL}" }}, orderBy: {PG_INTERACTION_ORDER}) '
                    "{ nodes { id channel occurredAt subject } } } } }"
                ),
            },
        ),
    ]
