"""The core mutations' input and payload types. Those that name a class built
for the catalog (the customer interface, its kinds' attribute inputs, the
interaction channels) are made by :func:`build_mutation_types`."""

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Optional

import strawberry

from crmgraph.schema import core_types as core
from crmgraph.schema.consent_types import Purpose
from crmgraph.schema.needs import Need
from crmgraph.schema.schema_types import SchemaTypes


@strawberry.input(
    description="Give a customer to an owner, a team or both; left out stays as it is, "
    "null clears it."
)
class AssignCustomerInput:
    customer_id: strawberry.ID
    owner_id: strawberry.ID | None = strawberry.UNSET
    team_id: strawberry.ID | None = strawberry.UNSET
    reason: str | None = strawberry.field(
        default=None, description="Why: kept in the audit trail and the event."
    )
    expected_version: int | None = strawberry.field(
        default=None, description="The version you read; a stale one is refused."
    )


@strawberry.input
class DeleteCustomerInput:
    id: strawberry.ID
    expected_version: int | None = None


@strawberry.input
class RestoreCustomerInput:
    id: strawberry.ID


@strawberry.input
class AddContactInput:
    customer_id: strawberry.ID
    name: str
    email: str | None = None
    phone: str | None = None
    job_title: str | None = None
    is_primary: bool = False
    notes: str | None = None
    # left out (UNSET), not null by default: only a field the caller sent
    # is a write of it, and these two need contact.read_profile
    birthday: datetime.date | None = strawberry.field(
        default=strawberry.UNSET, description="Needs the contact.read_profile permission."
    )
    home_address: str | None = strawberry.field(
        default=strawberry.UNSET, description="Needs the contact.read_profile permission."
    )


@strawberry.input
class UpdateContactInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    job_title: str | None = strawberry.UNSET
    is_primary: bool | None = strawberry.UNSET
    notes: str | None = strawberry.UNSET
    birthday: datetime.date | None = strawberry.UNSET
    home_address: str | None = strawberry.UNSET


@strawberry.input
class RecordNeedInput:
    customer_id: strawberry.ID
    title: str
    description: str | None = None
    category: str | None = None
    consumption_type: str | None = None
    volume: float | None = None
    unit: str | None = None
    priority: core.NeedPriority = core.NeedPriority.MEDIUM
    status: core.NeedStatus = core.NeedStatus.OPEN
    due_date: datetime.date | None = None


@strawberry.input
class UpdateNeedInput:
    id: strawberry.ID
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    category: str | None = strawberry.UNSET
    consumption_type: str | None = strawberry.UNSET
    volume: float | None = strawberry.UNSET
    unit: str | None = strawberry.UNSET
    priority: core.NeedPriority | None = strawberry.UNSET
    status: core.NeedStatus | None = strawberry.UNSET
    due_date: datetime.date | None = strawberry.UNSET


@strawberry.input
class TransitionCustomerInput:
    id: strawberry.ID
    to_stage: str
    expected_version: int
    reason: str | None = None


@strawberry.input
class LinkCustomersInput:
    from_id: strawberry.ID
    to_id: strawberry.ID
    kind: str = strawberry.field(description="A relationship kind declared by a plugin.")


@strawberry.input
class UnlinkCustomersInput:
    id: strawberry.ID = strawberry.field(description="The relationship's ID.")


@strawberry.type
class UnlinkCustomersPayload:
    deleted_id: strawberry.ID | None
    user_errors: list[core.UserError]


@strawberry.type
class ContactPayload:
    contact: core.Contact | None
    user_errors: list[core.UserError]


@strawberry.type
class NeedPayload:
    need: Need | None
    user_errors: list[core.UserError]


@dataclass(frozen=True)
class MutationTypes:
    """The classes built for one catalog the core mutations take and return."""

    types: SchemaTypes
    attribute_kinds: tuple[str, ...]  # kinds with an attribute input, in input order
    duplicate_candidate: type
    create_customer_input: type
    update_customer_input: type
    log_interaction_input: type
    customer_payload: type
    create_customer_payload: type
    transition_customer_payload: type
    interaction_payload: type
    link_customers_payload: type


def customer_inputs(kind_enum: Any, attribute_inputs: dict[str, type]) -> tuple[type, type]:
    """CreateCustomerInput and UpdateCustomerInput: one optional attribute
    input per customer type."""

    def attribute_annotations() -> dict[str, Any]:
        return {key: Optional[cls] for key, cls in attribute_inputs.items()}  # noqa: UP045

    create_ns: dict[str, Any] = {
        "__annotations__": {
            "kind": kind_enum,
            "name": str,
            "email": Optional[str],  # noqa: UP045
            "phone": Optional[str],  # noqa: UP045
            "owner_id": Optional[strawberry.ID],  # noqa: UP045
            "team_id": Optional[strawberry.ID],  # noqa: UP045
            "allow_duplicate": bool,
            **attribute_annotations(),
        },
        "email": None,
        "phone": None,
        "owner_id": None,
        "team_id": None,
        "allow_duplicate": strawberry.field(
            default=False,
            description="Create it even if its type's duplicate rule is `block` and it is "
            "likely an existing customer (listed in the payload's `duplicates`).",
        ),
        **{key: strawberry.UNSET for key in attribute_inputs},
    }
    create = strawberry.input(
        type("CreateCustomerInput", (), create_ns),
        description="A new customer. Send the attribute input named after its kind only.",
    )
    update_ns: dict[str, Any] = {
        "__annotations__": {
            "id": strawberry.ID,
            "expected_version": int,
            "name": Optional[str],  # noqa: UP045
            "email": Optional[str],  # noqa: UP045
            "phone": Optional[str],  # noqa: UP045
            "owner_id": Optional[strawberry.ID],  # noqa: UP045
            "team_id": Optional[strawberry.ID],  # noqa: UP045
            **attribute_annotations(),
        },
        "name": strawberry.UNSET,
        "email": strawberry.UNSET,
        "phone": strawberry.UNSET,
        "owner_id": strawberry.UNSET,
        "team_id": strawberry.UNSET,
        **{key: strawberry.UNSET for key in attribute_inputs},
    }
    update = strawberry.input(
        type("UpdateCustomerInput", (), update_ns),
        description="Fields left out stay as they are; null clears an optional field. "
        "`expectedVersion` is the version you read; a stale one is refused.",
    )
    return create, update


def log_interaction_input(channel_enum: Any) -> type:
    @strawberry.input
    class LogInteractionInput:
        customer_id: strawberry.ID
        channel: channel_enum  # type: ignore[valid-type]
        direction: core.InteractionDirection
        subject: str
        occurred_at: datetime.datetime | None = strawberry.field(
            default=None, description="Defaults to now."
        )
        contact_id: strawberry.ID | None = None
        notes: str | None = None
        outcome: str | None = None
        satisfaction: int | None = strawberry.field(default=None, description="1 (bad) to 5.")
        amount: Decimal | None = strawberry.field(default=None, description="For a purchase.")
        purpose: Purpose | None = strawberry.field(  # type: ignore[valid-type]
            default=None,
            description="MARKETING needs the customer's (or the contact's) consent on the "
            "channel when OUTBOUND (else NO_CONSENT); null: not stated, not marketing.",
        )

    return LogInteractionInput


def customer_payloads(customer_interface: type, duplicate_candidate: type) -> tuple[type, ...]:
    """CustomerPayload, CreateCustomerPayload and TransitionCustomerPayload."""
    CustomerBase = customer_interface

    @strawberry.type
    class TransitionCustomerPayload:
        customer: CustomerBase | None  # type: ignore[valid-type]
        stage_change: core.StageChange | None
        user_errors: list[core.UserError]

    @strawberry.type
    class CustomerPayload:
        customer: CustomerBase | None  # type: ignore[valid-type]
        user_errors: list[core.UserError]

    @strawberry.type
    class CreateCustomerPayload:
        customer: CustomerBase | None  # type: ignore[valid-type]
        user_errors: list[core.UserError]
        duplicates: list[duplicate_candidate] = strawberry.field(  # type: ignore[valid-type]
            description="Existing customers the new one is likely to be, most likely first "
            "(those the caller may see): a warning when it was created, the reason when its "
            "type's `block` rule refused it (userErrors code DUPLICATE)."
        )

    return CustomerPayload, CreateCustomerPayload, TransitionCustomerPayload


def record_payloads(interaction_cls: type, relationship_cls: type) -> tuple[type, type]:
    """InteractionPayload and LinkCustomersPayload."""
    Interaction = interaction_cls

    @strawberry.type
    class LinkCustomersPayload:
        relationship: relationship_cls | None  # type: ignore[valid-type]
        user_errors: list[core.UserError]

    @strawberry.type
    class InteractionPayload:
        interaction: Interaction | None  # type: ignore[valid-type]
        user_errors: list[core.UserError]

    return InteractionPayload, LinkCustomersPayload


def build_mutation_types(
    types: SchemaTypes, attribute_inputs: dict[str, type], duplicate_candidate: type
) -> MutationTypes:
    create, update = customer_inputs(types.kind_enum, attribute_inputs)
    customer, create_payload, transition = customer_payloads(
        types.customer_interface, duplicate_candidate
    )
    interaction, link = record_payloads(types.interaction_cls, types.relationship_cls)
    return MutationTypes(
        types=types,
        attribute_kinds=tuple(attribute_inputs),
        duplicate_candidate=duplicate_candidate,
        create_customer_input=create,
        update_customer_input=update,
        log_interaction_input=log_interaction_input(types.channel_enum),
        customer_payload=customer,
        create_customer_payload=create_payload,
        transition_customer_payload=transition,
        interaction_payload=interaction,
        link_customers_payload=link,
    )
