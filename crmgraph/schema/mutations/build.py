"""The ``Mutation`` root type of the core: its mutations, in the order the
SDL lists them, each made by its adapter."""

import strawberry

from crmgraph.schema.mutations import customers, records, roles
from crmgraph.schema.mutations.inputs import build_mutation_types
from crmgraph.schema.schema_types import SchemaTypes

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
    roles.add_role,
    roles.update_role,
    roles.end_role,
    records.link_customers,
    records.unlink_customers,
)


def build_mutation_type(
    types: SchemaTypes, attribute_inputs: dict[str, type], duplicate_candidate: type
) -> type:
    """The core ``Mutation`` type for one catalog's customer types: ``types``
    (the customer interface, the interaction type and channels, the kinds),
    the attribute input of each kind, and the type listing a likely duplicate."""
    m = build_mutation_types(types, attribute_inputs, duplicate_candidate)
    fields = {adapter.__name__: adapter(m) for adapter in ADAPTERS}
    return strawberry.type(type("Mutation", (), fields))
