"""``addRole`` and ``endRole``: adapters over :mod:`crmgraph.operations.roles`
(a party's further roles). Their inputs are built per catalog: the kinds and
each kind's attribute input."""

from typing import Any, Optional

import strawberry
from strawberry.types import Info

from crmgraph.operations import roles as ops
from crmgraph.schema.mutations.common import decode_pk, input_values, perform
from crmgraph.schema.mutations.customers import attribute_inputs, customer_payload
from crmgraph.schema.mutations.inputs import MutationTypes, attributes
from crmgraph.validation import Errors

CUSTOMER_ID = "Global ID of the customer (the party)."
VERSION = "The customer's version you read; a stale one is refused (VERSION_CONFLICT)."


def role_input(
    m: MutationTypes, name: str, description: str, kind: str, attributes_too: bool
) -> type:
    """An input naming a customer, one of its kinds (``kind`` says which) and
    the version read; with ``attributes_too``, each kind's attribute input."""
    inputs = m.attribute_inputs if attributes_too else {}
    namespace: dict[str, Any] = {
        "__annotations__": {
            "customer_id": strawberry.ID,
            "kind": m.types.kind_enum,
            "expected_version": int,
            **{key: Optional[cls] for key, cls in inputs.items()},  # noqa: UP045
        },
        "customer_id": strawberry.field(description=CUSTOMER_ID),
        "kind": strawberry.field(description=kind),
        "expected_version": strawberry.field(description=VERSION),
        **{
            key: strawberry.field(default=strawberry.UNSET, description=attributes(key))
            for key in inputs
        },
    }
    return strawberry.input(type(name, (), namespace), description=description)


def add_role_input(m: MutationTypes) -> type:
    return role_input(
        m,
        "AddRoleInput",
        "A further role for a customer. Send the attribute input named after the "
        "role's kind only; it is checked as that kind's attributes are on `createCustomer`.",
        "The role's customer type: not the customer's primary kind, nor one it holds already.",
        attributes_too=True,
    )


def end_role_input(m: MutationTypes) -> type:
    return role_input(
        m,
        "EndRoleInput",
        "End a customer's further role; its stage history stays.",
        "The further role to end (the primary kind cannot end).",
        attributes_too=False,
    )


def add_role(m: MutationTypes) -> Any:
    AddRoleInput, CustomerPayload = add_role_input(m), m.customer_payload

    async def add_role(self: Any, info: Info, input: AddRoleInput) -> CustomerPayload:  # type: ignore[valid-type]
        errors = Errors()
        pk = decode_pk(errors, "customerId", input.customer_id, "Customer")  # type: ignore[attr-defined]
        new = ops.NewRole(
            pk=pk,
            kind=input.kind.value,  # type: ignore[attr-defined]
            expected_version=input.expected_version,  # type: ignore[attr-defined]
            attributes=attribute_inputs(m, input_values(input)),
            problems=errors.problems,
        )
        result, problems = await perform(info, m.types.catalog, ops.add_role, new)
        return await customer_payload(m, info, result, problems)

    return strawberry.mutation(
        add_role,
        description="Give a customer a further role of another kind, in that kind's initial "
        "stage, with that kind's attributes (see `Customer.roles`). Refused: a kind held "
        "already (ROLE_HELD), one its plugin keeps primary-only or forbids beside a kind held "
        "(NOT_COMBINABLE). Writes a customer.role_added event.",
    )


def end_role(m: MutationTypes) -> Any:
    EndRoleInput, CustomerPayload = end_role_input(m), m.customer_payload

    async def end_role(self: Any, info: Info, input: EndRoleInput) -> CustomerPayload:  # type: ignore[valid-type]
        errors = Errors()
        pk = decode_pk(errors, "customerId", input.customer_id, "Customer")  # type: ignore[attr-defined]
        end = ops.RoleEnd(
            pk=pk,
            kind=input.kind.value,  # type: ignore[attr-defined]
            expected_version=input.expected_version,  # type: ignore[attr-defined]
            problems=errors.problems,
        )
        result, problems = await perform(info, m.types.catalog, ops.end_role, end)
        return await customer_payload(m, info, result, problems)

    return strawberry.mutation(
        end_role,
        description="End a customer's further role (not its primary kind): it leaves "
        "`roles`, its stage history stays. Writes a customer.role_ended event.",
    )
