"""Point-in-time reads in GraphQL: ``customer(id:, asOf:)`` and
``node(id:, asOf:)`` (customers, contacts, needs, interactions as they were),
and ``Customer.fieldHistory(field:)``. The rebuilding is the core's
(:mod:`crmgraph.operations.history`); what is checked here is the present's
own: the caller must see the customer now (row scope, :func:`load_customer`),
and a query naming a guarded field is refused whatever the moment
(:mod:`crmgraph.schema.permissions`). The compiled reads decline ``asOf``
(:mod:`crmgraph.compiled.plan`): these resolvers answer it.
"""

import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from crmgraph.access import AUDIT_READ
from crmgraph.operations import field_history as values_over_time
from crmgraph.operations import history
from crmgraph.schema import core_types as core
from crmgraph.schema.customers import load_customer
from crmgraph.schema.ids import InvalidId, decode_id, encode_id
from crmgraph.schema.needs import Need
from crmgraph.schema.node import parent_visible
from crmgraph.validation import camel

AS_OF = (
    "A past moment (UTC): the record as it was then, rebuilt from the audit trail; "
    "null: as it is now."
)
AsOf = Annotated[datetime.datetime | None, strawberry.argument(description=AS_OF)]
# what node(id:, asOf:) rebuilds; any other type answers null with asOf
RECORD_TYPES = ("Contact", "Need", "Interaction")


async def customer_as_of(info: Info, pk: int, at: datetime.datetime) -> Any:
    """Customer ``pk`` as it was at ``at``, or None: when the caller may not
    see it now, or it did not exist then. The object carries its moment, so
    its contacts, needs and interactions are those of then."""
    if await load_customer(info, pk) is None:
        return None
    ctx = info.context
    past = await history.customer_as_of(ctx.db, ctx.catalog, pk, at, ctx.loaders.customer.load)
    if past is None:
        return None
    obj = ctx.types.customer(past.row)
    if obj is not None:
        obj.__dict__["past"] = past
    return obj


async def node_as_of(info: Info, global_id: str, at: datetime.datetime) -> Any:
    """``node(id:, asOf:)``: a customer, contact, need or interaction as it was."""
    try:
        type_name, pk = decode_id(global_id)
    except InvalidId:
        return None
    if type_name == "Customer":
        return await customer_as_of(info, pk, at)
    if type_name not in RECORD_TYPES:
        return None
    now = await info.context.loaders.row.load((type_name, pk))
    if now is None or not await parent_visible(info, type_name, now):
        return None
    row = await history.record_as_of(info.context.db, type_name, pk, at)
    return record_object(info, type_name, row) if row is not None else None


def record_object(info: Info, type_name: str, row: dict[str, Any]) -> Any:
    if type_name == "Contact":
        return core.Contact.from_row(row)
    if type_name == "Need":
        return Need.from_row(row)
    return info.context.types.interaction(row)


@strawberry.type(description="A value a customer's field held, and for how long.")
class FieldValue:
    value: str | None = strawberry.field(description="The value, as text (null: unset).")
    since: datetime.datetime = strawberry.field(description="When it took this value (UTC).")
    until: datetime.datetime | None = strawberry.field(
        description="When it took the next one (UTC); null: it still holds it."
    )
    action: str | None = strawberry.field(
        description="The write that set it, e.g. `customer.updated`; null: set before the "
        "audit trail began (a record seeded or older than its trail), held since its creation."
    )
    by_id: strawberry.ID | None = strawberry.field(
        description="The user who set it, when known; null without the audit.read permission."
    )


def field_path(info: Info, kind: str, name: str) -> str:
    """The audit trail's name of a Customer field (``segment`` of a client:
    ``client.segment``); a field that is none is refused."""
    if name in values_over_time.HISTORY_FIELDS:
        return name
    descriptor = info.context.catalog.customer_type(kind)
    if descriptor is not None and name in {camel(a.name) for a in descriptor.attributes}:
        return f"{camel(kind)}.{name}"
    raise GraphQLError(
        f"fieldHistory: {name!r} is no field of this customer with a history (fields: "
        f"{', '.join(values_over_time.HISTORY_FIELDS)} and its type's attributes)",
        extensions={"code": "INVALID_FIELD"},
    )


@strawberry.field(
    description="Every value one of its fields held, oldest first, from the audit trail: a "
    "core field (`name`, `email`, `stage`…) or one of its type's attributes (`segment`). A "
    "guarded attribute needs its permission; erased values stay erased."
)
async def field_history(
    self: Any,
    info: Info,
    field: Annotated[
        str, strawberry.argument(description="The field, as this type names it, e.g. `email`.")
    ],
) -> list[FieldValue]:
    access = info.context.access
    path = field_path(info, self.kind.value, field)
    if not access.readable_change(path):
        permission = access.policy.guarded_change_paths[path]
        raise GraphQLError(
            f"Your role may not read the history of {field}: it needs the {permission} permission.",
            extensions={"code": "FORBIDDEN", "permissions": [permission]},
        )
    shows_by = access.can(AUDIT_READ)
    return [
        FieldValue(
            value=core.as_text(v.value),
            since=v.since,
            until=v.until,
            action=v.action,
            by_id=encode_id("User", v.by) if shows_by and v.by is not None else None,
        )
        for v in await values_over_time.field_history(info.context.db, self.pk, path)
    ]
