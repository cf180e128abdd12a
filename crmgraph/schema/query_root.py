"""The core's Query root: nodes, customers and their lists, the audit trail,
what the catalog declares, and who the caller is."""

import asyncio
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from crmgraph.access import AUDIT_READ, forbidden
from crmgraph.analytics import metrics as analytics_metrics
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.db import queries
from crmgraph.registry import Catalog
from crmgraph.schema import core_types as core
from crmgraph.schema.customers import CustomerPages, load_customer
from crmgraph.schema.filters import Filters, decode_ids
from crmgraph.schema.history import AsOf, customer_as_of, node_as_of
from crmgraph.schema.ids import InvalidId, decode_id, encode_id
from crmgraph.schema.kind_info import KindInfos, MetricValue, PermissionInfo
from crmgraph.schema.node import NodeLookup
from crmgraph.schema.page_types import page_of
from crmgraph.schema.pagination import (
    After,
    First,
    PageInfo,
    check_first,
    decode_cursor,
    encode_cursor,
)
from crmgraph.schema.schema_types import SchemaTypes


@strawberry.type(description="A page of a customer's audit trail, newest first.")
class AuditTrailConnection:
    edges: list[core.AuditEntryEdge] = strawberry.field(
        description="The page's audit entries, each with its cursor."
    )
    page_info: PageInfo = strawberry.field(
        description="Whether more entries follow, and the cursors to ask for them."
    )


async def audit_trail_page(
    info: Info, customer_id: strawberry.ID, first: int | None, after: str | None
) -> AuditTrailConnection:
    settings = info.context.settings
    access = info.context.access
    limit = check_first(first, settings.default_page_size, settings.max_page_size)
    if not access.can(AUDIT_READ):
        raise forbidden(AUDIT_READ, "read the audit trail")
    (pk,) = decode_ids([customer_id], "Customer", "customerId")
    before = decode_cursor(after, "audit", timestamp=False)[1] if after else None
    if access.scope is not None and await load_customer(info, pk) is None:
        rows = []  # a customer the caller may not see has no trail for them
    else:
        rows = await queries.audit_page(info.context.db, pk, limit + 1, before)
    return page_of(
        core.AuditEntryEdge,
        AuditTrailConnection,
        rows,
        limit,
        after,
        lambda row: encode_cursor("audit", None, row["id"]),
        lambda row: core.AuditEntry.from_row(row, access.readable_change),
    )


def build_customers_page(types: SchemaTypes, filters: Filters, pages: CustomerPages) -> Any:
    """The resolver of ``Query.customers``."""
    CustomerFilter = filters.customer_filter
    CustomerOrder = filters.customer_order
    CustomerConnection = pages.connection

    async def customers(
        self: Any,
        info: Info,
        first: First = 20,
        after: After = None,
        filter: Annotated[
            CustomerFilter | None,
            strawberry.argument(description="Which customers (all that you may see when null)."),
        ] = None,  # type: ignore[valid-type]
        order_by: Annotated[
            CustomerOrder | None,
            strawberry.argument(description="The order (newest created first when null)."),
        ] = None,  # type: ignore[valid-type]
    ) -> CustomerConnection:  # type: ignore[valid-type]
        settings = info.context.settings
        limit = check_first(first, settings.default_page_size, settings.max_page_size)
        order = order_by or CustomerOrder()
        sort = order.field.value
        scope = queries.customer_cursor_scope(sort)
        column = queries.CUSTOMER_SORT_COLUMNS[sort]
        text = column in queries.TEXT_SORT_COLUMNS
        cursor = decode_cursor(after, scope, timestamp=not text) if after else None
        q = filters.customer_query(filter, info.context.access.scope)
        rows = await queries.list_customers(
            info.context.db,
            q,
            sort,
            order.direction == core.SortDirection.DESC,
            limit + 1,
            cursor,
        )
        for row in rows[:limit]:
            info.context.loaders.customer.prime(row["id"], row)
        return page_of(
            pages.edge,
            CustomerConnection,
            rows,
            limit,
            after,
            lambda row: encode_cursor(scope, row[column], row["id"]),
            types.customer,
            filter_query=q,
        )

    return customers


def build_query_type(
    catalog: Catalog,
    types: SchemaTypes,
    filters: Filters,
    pages: CustomerPages,
    kind_infos: KindInfos,
    node_by_id: NodeLookup,
) -> type:
    CustomerBase = types.customer_interface
    CustomerKindInfo = kind_infos.info_type
    customer_query = filters.customer_query

    @strawberry.type
    class Query:
        @strawberry.field(description="Any object by its global ID.")
        async def node(
            self,
            info: Info,
            id: Annotated[
                strawberry.ID, strawberry.argument(description="The global ID of any object.")
            ],
            as_of: AsOf = None,
        ) -> core.Node | None:
            if as_of is not None:  # a customer, contact, need or interaction as it was
                return await node_as_of(info, id, as_of)
            return await node_by_id(info, id)

        @strawberry.field(
            description="Objects by global IDs, in the order asked (null if missing)."
        )
        async def nodes(
            self,
            info: Info,
            ids: Annotated[
                list[strawberry.ID],
                strawberry.argument(
                    description="Global IDs of any objects (at most CRMGRAPH_MAX_PAGE_SIZE)."
                ),
            ],
        ) -> list[core.Node | None]:
            if len(ids) > info.context.settings.max_page_size:
                raise GraphQLError(
                    f"at most {info.context.settings.max_page_size} ids",
                    extensions={
                        "code": "TOO_MANY_IDS",
                        "maximum": info.context.settings.max_page_size,
                    },
                )
            # gathered, not awaited one by one, so the loaders batch them
            return list(await asyncio.gather(*(node_by_id(info, i) for i in ids)))

        @strawberry.field(description="One customer, including a soft-deleted one.")
        async def customer(
            self,
            info: Info,
            id: Annotated[
                strawberry.ID, strawberry.argument(description="The customer's global ID.")
            ],
            as_of: AsOf = None,
        ) -> CustomerBase | None:  # type: ignore[valid-type]
            try:
                _, pk = decode_id(id, "Customer")
            except InvalidId:
                return None
            if as_of is not None:
                return await customer_as_of(info, pk, as_of)
            return await load_customer(info, pk)

        customers = strawberry.field(
            resolver=build_customers_page(types, filters, pages),
            description="Customers, paginated by keyset (Relay connection).",
        )

        @strawberry.field(description="Every customer type, with its stages and attributes.")
        def customer_kinds(self) -> list[CustomerKindInfo]:  # type: ignore[valid-type]
            return kind_infos.infos

        @strawberry.field(
            description="Every change to a customer and its contacts, interactions, needs and "
            "relationships, newest first (including deletion and restore)."
        )
        async def audit_trail(
            self,
            info: Info,
            customer_id: Annotated[
                strawberry.ID, strawberry.argument(description="The customer's global ID.")
            ],
            first: First = 20,
            after: After = None,
        ) -> AuditTrailConnection:
            return await audit_trail_page(info, customer_id, first, after)

        @strawberry.field(description="Permissions declared by plugins.")
        def permissions(self) -> list[PermissionInfo]:
            return [
                PermissionInfo(key=p.key, description=p.description, roles=list(p.roles))
                for p in catalog.permissions
            ]

        @strawberry.field(
            description="Metrics contributed by plugins over every customer the caller sees.",
            deprecation_reason="Use `analytics { metrics }`, which takes a filter and a period.",
        )
        async def plugin_metrics(self, info: Info) -> list[MetricValue]:
            db = info.context.db
            scope = AnalyticsScope.create(db, customer_query(None, info.context.access.scope))
            found = await analytics_metrics.plugin_metrics(db, scope, catalog.metrics)
            return [MetricValue(key=m.key, description=m.description, value=m.value) for m in found]

        @strawberry.field(description="Teams; agents see the customers of their teams.")
        async def teams(self, info: Info) -> list[core.Team]:
            rows = await info.context.db.fetch("SELECT * FROM team ORDER BY name, id")
            return [core.Team.from_row(row) for row in rows]

        @strawberry.field(description="What the caller may do: their role and permissions.")
        def viewer(self, info: Info) -> core.Viewer:
            access = info.context.access
            principal = access.principal
            return core.Viewer(
                user_id=encode_id("User", principal.user_id) if principal.user_id else None,
                name=principal.name,
                role=principal.role,
                permissions=sorted(access.permissions),
                team_ids=[encode_id("Team", t) for t in sorted(principal.team_ids)],
            )

        @strawberry.field(description="Users of the CRM (owners of customers).")
        async def users(self, info: Info) -> list[core.User]:
            rows = await info.context.db.fetch("SELECT * FROM crm_user ORDER BY name, id")
            return [core.User.from_row(row) for row in rows]

    return Query
