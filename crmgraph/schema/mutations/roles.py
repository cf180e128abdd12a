"""``addRole``, ``updateRole`` and ``endRole``: adapters over :mod:`crmgraph.operations.roles`
(a party's further roles). Their inputs are built per catalog: the kinds and
each kind's attribute input."""

import dataclasses
from collections.abc import Awaitable, Callable
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


def update_role_input(m: MutationTypes) -> type:
    return role_input(
        m,
        "UpdateRoleInput",
        "New attribute values for a customer's further role. Send the attribute input named "
        "after the role's kind only; what it leaves out stays, and it is checked as that "
        "kind's attributes are on `updateCustomer`.",
        "The further role to change (the primary kind's attributes change with `updateCustomer`).",
        attributes_too=True,
    )


def role_mutation(
    m: MutationTypes,
    input_type: type,
    operation: Callable[..., Awaitable[int]],
    request: type,
    description: str,
) -> Any:
    """A mutation over one of :mod:`crmgraph.operations.roles`: its input
    (``input_type``) read into ``request`` (the operation's dataclass, given
    the attribute inputs when the input has them), its customer the payload."""
    RoleInput, CustomerPayload = input_type, m.customer_payload
    with_attributes = "attributes" in {f.name for f in dataclasses.fields(request)}

    async def resolve(self: Any, info: Info, input: RoleInput) -> CustomerPayload:  # type: ignore[valid-type]
        errors = Errors()
        pk = decode_pk(errors, "customerId", input.customer_id, "Customer")  # type: ignore[attr-defined]
        extra = {"attributes": attribute_inputs(m, input_values(input))} if with_attributes else {}
        made = request(
            pk=pk,
            kind=input.kind.value,  # type: ignore[attr-defined]
            expected_version=input.expected_version,  # type: ignore[attr-defined]
            problems=errors.problems,
            **extra,
        )
        result, problems = await perform(info, m.types.catalog, operation, made)
        return await customer_payload(m, info, result, problems)

    return strawberry.mutation(resolve, description=description)


def add_role(m: MutationTypes) -> Any:
    return role_mutation(
        m,
        add_role_input(m),
        ops.add_role,
        ops.NewRole,
        "Give a customer a further role of another kind, in that kind's initial "
        "stage, with that kind's attributes (see `Customer.roles`). Refused: a kind held "
        "already (ROLE_HELD), one its plugin keeps primary-only or forbids beside a kind held "
        "(NOT_COMBINABLE). Writes a customer.role_added event.",
    )


def update_role(m: MutationTypes) -> Any:
    return role_mutation(
        m,
        update_role_input(m),
        ops.update_role,
        ops.RoleChange,
        "Change the attributes of a customer's further role, validated and permission-guarded "
        "as `updateCustomer` checks the kind's own; every plugin's validation sees the role. "
        "Refused: a role not held (NOT_FOUND), the primary kind (INVALID), a stale "
        "`expectedVersion` (VERSION_CONFLICT). Writes a customer.role_updated event.",
    )


def end_role(m: MutationTypes) -> Any:
    return role_mutation(
        m,
        end_role_input(m),
        ops.end_role,
        ops.RoleEnd,
        "End a customer's further role (not its primary kind): it leaves "
        "`roles`, its stage history stays. Writes a customer.role_ended event.",
    )
