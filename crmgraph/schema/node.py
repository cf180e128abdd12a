"""Relay's ``node``: any object by its global ID, within the caller's row scope."""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from strawberry.types import Info

from crmgraph.schema import core_types as core
from crmgraph.schema.customers import load_customer
from crmgraph.schema.ids import InvalidId, decode_id
from crmgraph.schema.needs import Need
from crmgraph.schema.schema_types import SchemaTypes

NodeLookup = Callable[[Info, str], Awaitable[Any]]


async def parent_visible(info: Info, type_name: str, row: dict[str, Any]) -> bool:
    """Whether the customer a record hangs off is one the caller may see
    (for a relationship: either party)."""
    if info.context.access.scope is None or type_name in ("User", "Team"):
        return True
    if type_name == "Relationship":
        parties = (row["from_customer"], row["to_customer"])
    else:
        parties = (row["customer"],)
    for pk in parties:
        if await load_customer(info, pk) is not None:
            return True
    return False


def build_node_lookup(
    types: SchemaTypes,
    loaders: Mapping[str, Callable[[Info, int], Awaitable[Any]]],
    converters: Mapping[str, Callable[[dict[str, Any]], Any]],
) -> NodeLookup:
    """``loaders`` load a type that is not one row (features add theirs);
    ``converters`` turn the row of a customer's record into its object."""
    every_converter: dict[str, Callable[[dict[str, Any]], Any]] = {
        "Contact": core.Contact.from_row,
        "Need": Need.from_row,
        "StageChange": core.StageChange.from_row,
        "User": core.User.from_row,
        "Team": core.Team.from_row,
        "Interaction": types.interaction,
        "Relationship": types.relationship,
        **converters,
    }

    async def node_by_id(info: Info, global_id: str) -> Any:
        try:
            type_name, pk = decode_id(global_id)
        except InvalidId:
            return None
        if type_name == "Customer":
            return await load_customer(info, pk)
        if type_name in loaders:
            return await loaders[type_name](info, pk)
        if type_name not in every_converter:  # e.g. a Note while team work is disabled
            return None
        row = await info.context.loaders.row.load((type_name, pk))
        if row is None or not await parent_visible(info, type_name, row):
            return None
        return every_converter[type_name](row)

    return node_by_id
