"""The adapters of the mutations of what hangs off a customer (contacts,
interactions, needs, relationships): each decodes its input's global IDs,
hands the plain input to its operation and shows the result, or the
operation's problems as ``userErrors``."""

from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.types import Info

from crmgraph.operations import contacts, interactions, needs, relationships
from crmgraph.schema import core_types as core
from crmgraph.schema.mutations.common import (
    Operation,
    WrittenNode,
    decode,
    decode_pk,
    input_values,
    no_rows,
    node_payload,
    perform,
)
from crmgraph.schema.mutations.inputs import (
    AddContactInput,
    ContactPayload,
    LinkCustomersInput,
    MutationTypes,
    NeedPayload,
    RecordNeedInput,
    UnlinkCustomersInput,
    UnlinkCustomersPayload,
    UpdateContactInput,
    UpdateNeedInput,
)
from crmgraph.schema.needs import Need
from crmgraph.validation import Errors, Problem


def sent(input: Any, *ids: str) -> dict[str, Any]:
    """The fields sent in ``input`` but its ``ids`` (global IDs, decoded apart)."""
    return {k: val for k, val in input_values(input).items() if k not in ids}


CONTACT = WrittenNode("Contact", core.Contact.from_row, ContactPayload, "contact")
NEED = WrittenNode("Need", Need.from_row, NeedPayload, "need")


def one_id_write(
    m: MutationTypes,
    input_type: type,
    target: tuple[str, str, str],
    request: Callable[[int, dict[str, Any], list[Problem]], Any],
    operation: Operation[Any, int],
    node: WrittenNode,
    description: str,
) -> Any:
    """A mutation whose input names one object by its global ID (``target``:
    the input field, its path in a problem and its type) and sends the rest
    as the fields to write: ``request`` makes the operation's input from the
    decoded pk, those fields and the ID's problems."""
    id_field, path, type_name = target

    async def resolve(self: Any, info: Info, input: input_type) -> node.payload:  # type: ignore[valid-type, name-defined]
        errors = Errors()
        pk = decode_pk(errors, path, getattr(input, id_field), type_name)
        data = request(pk, sent(input, id_field), errors.problems)
        return await node_payload(info, m.types.catalog, operation, data, node)

    return strawberry.mutation(resolve, description=description)


def add_contact(m: MutationTypes) -> Any:
    return one_id_write(
        m,
        AddContactInput,
        ("customer_id", "customerId", "Customer"),
        contacts.NewContact,
        contacts.add_contact,
        CONTACT,
        "Add a person at a customer.",
    )


def update_contact(m: MutationTypes) -> Any:
    return one_id_write(
        m,
        UpdateContactInput,
        ("id", "id", "Contact"),
        contacts.ContactChange,
        contacts.update_contact,
        CONTACT,
        "Change a contact; fields left out stay as they are.",
    )


def log_interaction(m: MutationTypes) -> Any:
    LogInteractionInput = m.log_interaction_input
    node = WrittenNode("Interaction", m.types.interaction, m.interaction_payload, "interaction")

    async def log_interaction(self: Any, info: Info, input: LogInteractionInput) -> node.payload:  # type: ignore[valid-type, name-defined]
        errors = Errors()
        customer = decode_pk(errors, "customerId", input.customer_id, "Customer")  # type: ignore[attr-defined]
        contact = decode(errors, "contactId", input.contact_id, "Contact")  # type: ignore[attr-defined]
        fields = sent(input, "customer_id", "contact_id")
        new = interactions.NewInteraction(customer, contact, fields, errors.problems)
        return await node_payload(info, m.types.catalog, interactions.log_interaction, new, node)

    return strawberry.mutation(
        log_interaction, description="Record a contact with a customer on any channel."
    )


def record_need(m: MutationTypes) -> Any:
    return one_id_write(
        m,
        RecordNeedInput,
        ("customer_id", "customerId", "Customer"),
        needs.NewNeed,
        needs.record_need,
        NEED,
        "Record what a customer needs.",
    )


def update_need(m: MutationTypes) -> Any:
    return one_id_write(
        m,
        UpdateNeedInput,
        ("id", "id", "Need"),
        needs.NeedChange,
        needs.update_need,
        NEED,
        "Change a need: its status, priority, volume, …",
    )


def link_customers(m: MutationTypes) -> Any:
    node = WrittenNode(
        "Relationship", m.types.relationship, m.link_customers_payload, "relationship"
    )

    async def link_customers(self: Any, info: Info, input: LinkCustomersInput) -> node.payload:  # type: ignore[name-defined]
        errors = Errors()
        from_pk = decode_pk(errors, "fromId", input.from_id, "Customer")
        to_pk = decode_pk(errors, "toId", input.to_id, "Customer")
        link = relationships.NewLink(from_pk, to_pk, input.kind, errors.problems)
        return await node_payload(info, m.types.catalog, relationships.link_customers, link, node)

    return strawberry.mutation(
        link_customers, description="Link two customers with a declared relationship kind."
    )


def unlink_customers(m: MutationTypes) -> Any:
    async def unlink_customers(
        self: Any, info: Info, input: UnlinkCustomersInput
    ) -> UnlinkCustomersPayload:
        errors = Errors()
        pk = decode_pk(errors, "id", input.id, "Relationship")
        unlink = relationships.Unlink(pk, errors.problems)
        result, problems = await perform(
            info, m.types.catalog, relationships.unlink_customers, unlink, no_rows
        )
        return UnlinkCustomersPayload(
            deleted_id=input.id if result is not None else None, user_errors=problems
        )

    return strawberry.mutation(
        unlink_customers, description="Remove a relationship between two customers."
    )
