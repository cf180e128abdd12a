"""The customer mutations' adapters: each decodes its input's global IDs,
hands the plain input to its operation (:mod:`crmgraph.operations.customers`)
and shows the result, or the operation's problems as ``userErrors``."""

import functools
from typing import Any

import strawberry
from strawberry.types import Info

from crmgraph.dedupe import matching
from crmgraph.operations import customers as ops
from crmgraph.schema import core_types as core
from crmgraph.schema.duplicates import candidate_objects
from crmgraph.schema.mutations.common import (
    decode,
    decode_pk,
    input_values,
    perform,
    written_row,
)
from crmgraph.schema.mutations.inputs import (
    AssignCustomerInput,
    DeleteCustomerInput,
    MutationTypes,
    RestoreCustomerInput,
)
from crmgraph.schema.user_errors import UserError
from crmgraph.validation import Errors

# the core customer fields an input may send, as the operations name them
PARTY_FIELDS = ("name", "email", "phone")


def customer_fields(errors: Errors, data: dict[str, Any]) -> dict[str, Any]:
    """The core customer fields sent, the owner's and team's IDs decoded."""
    fields = {key: data[key] for key in PARTY_FIELDS if key in data}
    if "owner_id" in data:
        fields["owner"] = decode(errors, "ownerId", data["owner_id"], "User")
    if "team_id" in data:
        fields["team"] = decode(errors, "teamId", data["team_id"], "Team")
    return fields


def attribute_inputs(m: MutationTypes, data: dict[str, Any]) -> dict[str, Any]:
    """The attribute inputs sent, by kind (a null one as None)."""
    return {
        kind: (input_values(data[kind]) if data[kind] is not None else None)
        for kind in m.attribute_kinds
        if kind in data
    }


async def customer_payload(
    m: MutationTypes, info: Info, pk: int | None, errors: list[UserError]
) -> Any:
    if pk is None:
        return m.customer_payload(customer=None, user_errors=errors)
    row = await written_row(info, "customer", pk)
    return m.customer_payload(customer=m.types.customer(row), user_errors=[])


def create_customer(m: MutationTypes) -> Any:
    CreateCustomerInput, CreateCustomerPayload = m.create_customer_input, m.create_customer_payload

    async def create_customer(
        self: Any, info: Info, input: CreateCustomerInput
    ) -> CreateCustomerPayload:  # type: ignore[valid-type]
        errors = Errors()
        data = input_values(input)
        data.setdefault("name", None)
        new = ops.NewCustomerInput(
            kind=data["kind"],
            fields=customer_fields(errors, data),
            attributes=attribute_inputs(m, data),
            allow_duplicate=input.allow_duplicate,  # type: ignore[attr-defined]
            problems=errors.problems,
        )
        shown: list[matching.Candidate] = []
        create = functools.partial(ops.create_customer, shown=shown)
        pk, problems = await perform(info, m.types.catalog, create, new)
        payload = await customer_payload(m, info, pk, problems)
        return CreateCustomerPayload(
            customer=payload.customer,
            user_errors=payload.user_errors,
            duplicates=candidate_objects(m.duplicate_candidate, shown),
        )

    return strawberry.mutation(
        create_customer,
        description="Create a customer of any kind, in its initial stage. Likely "
        "duplicates of it are listed in `duplicates`; a type whose duplicate rule is "
        "`block` refuses it while one has an exact e-mail, phone or tax id, unless "
        "`allowDuplicate: true`.",
    )


def update_customer(m: MutationTypes) -> Any:
    UpdateCustomerInput, CustomerPayload = m.update_customer_input, m.customer_payload

    async def update_customer(self: Any, info: Info, input: UpdateCustomerInput) -> CustomerPayload:  # type: ignore[valid-type]
        errors = Errors()
        data = input_values(input)
        pk = decode_pk(errors, "id", input.id, "Customer")  # type: ignore[attr-defined]
        change = ops.CustomerChange(
            pk=pk,
            expected_version=input.expected_version,  # type: ignore[attr-defined]
            fields=customer_fields(errors, data),
            attributes=attribute_inputs(m, data),
            problems=errors.problems,
        )
        result, problems = await perform(info, m.types.catalog, ops.update_customer, change)
        return await customer_payload(m, info, result, problems)

    return strawberry.mutation(
        update_customer, description="Change a customer; refused if `expectedVersion` is stale."
    )


def assign_customer(m: MutationTypes) -> Any:
    CustomerPayload = m.customer_payload

    async def assign_customer(self: Any, info: Info, input: AssignCustomerInput) -> CustomerPayload:  # type: ignore[valid-type]
        errors = Errors()
        pk = decode_pk(errors, "customerId", input.customer_id, "Customer")
        assignment = ops.Assignment(
            pk=pk,
            fields=customer_fields(errors, input_values(input)),
            reason=input.reason,
            expected_version=input.expected_version,
            problems=errors.problems,
        )
        result, problems = await perform(info, m.types.catalog, ops.assign_customer, assignment)
        if result is not None:
            row = await written_row(info, "customer", result)
            if not info.context.access.sees(row):
                # given away: the caller may no longer read it
                return CustomerPayload(customer=None, user_errors=[])
        return await customer_payload(m, info, result, problems)

    return strawberry.mutation(
        assign_customer,
        description="Assign or reassign a customer's owner and team. Without the "
        "customer.assign permission only to yourself and your own teams. Writes a "
        "customer.assigned event naming the previous and new owner and team.",
    )


def set_deleted(m: MutationTypes, input_type: type, deleted: bool, description: str) -> Any:
    """Soft-delete (``deleted``) or bring back the customer an input names by
    ``id``; only a deletion checks the ``expectedVersion`` sent."""
    CustomerPayload = m.customer_payload

    async def resolve(self: Any, info: Info, input: input_type) -> CustomerPayload:  # type: ignore[valid-type]
        errors = Errors()
        pk = decode_pk(errors, "id", input.id, "Customer")  # type: ignore[attr-defined]
        version = input.expected_version if deleted else None  # type: ignore[attr-defined]
        deletion = ops.Deletion(pk, deleted, version, errors.problems)
        result, problems = await perform(info, m.types.catalog, ops.set_deleted, deletion)
        return await customer_payload(m, info, result, problems)

    return strawberry.mutation(resolve, description=description)


def delete_customer(m: MutationTypes) -> Any:
    return set_deleted(
        m,
        DeleteCustomerInput,
        True,
        "Soft-delete a customer; `restoreCustomer` undoes it.",
    )


def restore_customer(m: MutationTypes) -> Any:
    return set_deleted(m, RestoreCustomerInput, False, "Bring back a soft-deleted customer.")


def transition_customer(m: MutationTypes) -> Any:
    TransitionCustomerInput = m.transition_customer_input
    TransitionCustomerPayload = m.transition_customer_payload

    async def transition_customer(
        self: Any,
        info: Info,
        input: TransitionCustomerInput,  # type: ignore[valid-type]
    ) -> TransitionCustomerPayload:  # type: ignore[valid-type]
        errors = Errors()
        pk = decode_pk(errors, "id", input.id, "Customer")  # type: ignore[attr-defined]
        kind = input.kind.value if input.kind is not None else None  # type: ignore[attr-defined]
        move = ops.Transition(
            pk,
            input.to_stage,  # type: ignore[attr-defined]
            input.expected_version,  # type: ignore[attr-defined]
            input.reason,  # type: ignore[attr-defined]
            errors.problems,
            kind,
        )
        moved, problems = await perform(
            info,
            m.types.catalog,
            ops.transition_customer,
            move,
            result_rows=lambda pk: [("customer", pk), ("stage_history", pk)],
        )
        if moved is None:
            return TransitionCustomerPayload(customer=None, stage_change=None, user_errors=problems)
        history = await written_row(info, "stage_history", moved.pk)
        return TransitionCustomerPayload(
            customer=m.types.customer(await written_row(info, "customer", moved.pk)),
            # the move asked for, not the entry a conversion adds for the new type
            stage_change=core.StageChange.from_row(
                next(
                    h
                    for h in reversed(history)
                    if (h["kind"], h["to_stage"]) == (moved.kind, moved.to_stage)
                )
            ),
            user_errors=[],
        )

    return strawberry.mutation(
        transition_customer,
        description="Move a customer to another stage of its lifecycle. Every reason a "
        "move is refused comes back in `userErrors` (code TRANSITION_REFUSED).",
    )
