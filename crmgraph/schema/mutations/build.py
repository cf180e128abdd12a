"""The ``Mutation`` root type of the core: its mutations, in the order the
SDL lists them, each made by its adapter."""

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry.types import Info

from crmgraph.schema.mutations import customers, records
from crmgraph.schema.mutations.inputs import build_mutation_types

# the core mutations' adapters, in the order the SDL lists them
ADAPTERS = (
    customers.create_customer,
    customers.update_customer,
    customers.assign_customer,
    customers.delete_customer,
    customers.restore_customer,
    records.add_contact,
    records.update_contact,
    records.log_interaction,
    records.record_need,
    records.update_need,
    customers.transition_customer,
    records.link_customers,
    records.unlink_customers,
)


def build_mutation_type(
    types: Any,
    customer_interface: type,
    interaction_cls: type,
    channel_enum: Any,
    attribute_inputs: dict[str, type],
    load_customer: Callable[[Info, int], Awaitable[Any]],
    duplicate_candidate: type,
) -> type:
    """The core ``Mutation`` type for one catalog's customer types."""
    m = build_mutation_types(
        types,
        customer_interface,
        interaction_cls,
        channel_enum,
        attribute_inputs,
        duplicate_candidate,
    )
    fields = {adapter.__name__: adapter(m) for adapter in ADAPTERS}
    return strawberry.type(type("Mutation", (), fields))
