"""The adapters of the mutations of what hangs off a customer (contacts,
interactions, needs, relationships): each decodes its input's global IDs,
hands the plain input to its operation and shows the result, or the
operation's problems as ``userErrors``."""

from typing import Any

import strawberry
from strawberry.types import Info

from crmgraph.operations import contacts, interactions, needs, relationships
from crmgraph.schema import core_types as core
from crmgraph.schema.mutations.common import (
    decode,
    decode_pk,
    input_values,
    no_rows,
    node_rows,
    perform,
    written_row,
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
from crmgraph.schema.user_errors import UserError
from crmgraph.validation import Errors


def sent(input: Any, *ids: str) -> dict[str, Any]:
    """The fields sent in ``input`` but its ``ids`` (global IDs, decoded apart)."""
    return {k: val for k, val in input_values(input).items() if k not in ids}


async def contact_payload(info: Info, pk: int | None, problems: list[UserError]) -> ContactPayload:
    if pk is None:
        return ContactPayload(contact=None, user_errors=problems)
    row = await written_row(info, "row", ("Contact", pk))
    return ContactPayload(contact=core.Contact.from_row(row), user_errors=[])


async def need_payload(info: Info, pk: int | None, problems: list[UserError]) -> NeedPayload:
    if pk is None:
        return NeedPayload(need=None, user_errors=problems)
    row = await written_row(info, "row", ("Need", pk))
    return NeedPayload(need=core.Need.from_row(row), user_errors=[])


def add_contact(m: MutationTypes) -> Any:
    async def add_contact(self: Any, info: Info, input: AddContactInput) -> ContactPayload:
        errors = Errors()
        customer = decode_pk(errors, "customerId", input.customer_id, "Customer")
        new = contacts.NewContact(customer, sent(input, "customer_id"), errors.problems)
        pk, problems = await perform(
            info, m.types.catalog, contacts.add_contact, new, node_rows("Contact")
        )
        return await contact_payload(info, pk, problems)

    return strawberry.mutation(add_contact, description="Add a person at a customer.")


def update_contact(m: MutationTypes) -> Any:
    async def update_contact(self: Any, info: Info, input: UpdateContactInput) -> ContactPayload:
        errors = Errors()
        pk = decode_pk(errors, "id", input.id, "Contact")
        change = contacts.ContactChange(pk, sent(input, "id"), errors.problems)
        result, problems = await perform(
            info, m.types.catalog, contacts.update_contact, change, node_rows("Contact")
        )
        return await contact_payload(info, result, problems)

    return strawberry.mutation(
        update_contact, description="Change a contact; fields left out stay as they are."
    )


def log_interaction(m: MutationTypes) -> Any:
    LogInteractionInput, InteractionPayload = m.log_interaction_input, m.interaction_payload

    async def log_interaction(
        self: Any, info: Info, input: LogInteractionInput
    ) -> InteractionPayload:  # type: ignore[valid-type]
        errors = Errors()
        customer = decode_pk(errors, "customerId", input.customer_id, "Customer")  # type: ignore[attr-defined]
        contact = decode(errors, "contactId", input.contact_id, "Contact")  # type: ignore[attr-defined]
        fields = sent(input, "customer_id", "contact_id")
        new = interactions.NewInteraction(customer, contact, fields, errors.problems)
        pk, problems = await perform(
            info, m.types.catalog, interactions.log_interaction, new, node_rows("Interaction")
        )
        if pk is None:
            return InteractionPayload(interaction=None, user_errors=problems)
        row = await written_row(info, "row", ("Interaction", pk))
        return InteractionPayload(interaction=m.types.interaction(row), user_errors=[])

    return strawberry.mutation(
        log_interaction, description="Record a contact with a customer on any channel."
    )


def record_need(m: MutationTypes) -> Any:
    async def record_need(self: Any, info: Info, input: RecordNeedInput) -> NeedPayload:
        errors = Errors()
        customer = decode_pk(errors, "customerId", input.customer_id, "Customer")
        new = needs.NewNeed(customer, sent(input, "customer_id"), errors.problems)
        pk, problems = await perform(
            info, m.types.catalog, needs.record_need, new, node_rows("Need")
        )
        return await need_payload(info, pk, problems)

    return strawberry.mutation(record_need, description="Record what a customer needs.")


def update_need(m: MutationTypes) -> Any:
    async def update_need(self: Any, info: Info, input: UpdateNeedInput) -> NeedPayload:
        errors = Errors()
        pk = decode_pk(errors, "id", input.id, "Need")
        change = needs.NeedChange(pk, sent(input, "id"), errors.problems)
        result, problems = await perform(
            info, m.types.catalog, needs.update_need, change, node_rows("Need")
        )
        return await need_payload(info, result, problems)

    return strawberry.mutation(
        update_need, description="Change a need: its status, priority, volume, …"
    )


def link_customers(m: MutationTypes) -> Any:
    LinkCustomersPayload = m.link_customers_payload

    async def link_customers(
        self: Any, info: Info, input: LinkCustomersInput
    ) -> LinkCustomersPayload:  # type: ignore[valid-type]
        errors = Errors()
        from_pk = decode_pk(errors, "fromId", input.from_id, "Customer")
        to_pk = decode_pk(errors, "toId", input.to_id, "Customer")
        link = relationships.NewLink(from_pk, to_pk, input.kind, errors.problems)
        rel, problems = await perform(
            info,
            m.types.catalog,
            relationships.link_customers,
            link,
            node_rows("Relationship"),
        )
        if rel is None:
            return LinkCustomersPayload(relationship=None, user_errors=problems)
        row = await written_row(info, "row", ("Relationship", rel))
        return LinkCustomersPayload(relationship=m.types.relationship(row), user_errors=[])

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
