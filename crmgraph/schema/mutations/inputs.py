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
from crmgraph.schema.user_errors import USER_ERRORS


@strawberry.input(
    description="Give a customer to an owner, a team or both; left out stays as it is, "
    "null clears it."
)
class AssignCustomerInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer's global ID.")
    owner_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Global ID of the user to own it; null: no owner; left out: unchanged.",
    )
    team_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Global ID of the team to share it with; null: no team; left out: unchanged.",
    )
    reason: str | None = strawberry.field(
        default=None, description="Why: kept in the audit trail and the event."
    )
    expected_version: int | None = strawberry.field(
        default=None, description="The version you read; a stale one is refused."
    )


@strawberry.input(
    description="Soft-delete a customer: it leaves lists and searches and can be restored."
)
class DeleteCustomerInput:
    id: strawberry.ID = strawberry.field(description="The customer's global ID.")
    expected_version: int | None = strawberry.field(
        default=None, description="The version you read; a stale one is refused (null: no check)."
    )


@strawberry.input(description="Undo a soft deletion.")
class RestoreCustomerInput:
    id: strawberry.ID = strawberry.field(description="The deleted customer's global ID.")


@strawberry.input(description="A new contact person at a customer.")
class AddContactInput:
    customer_id: strawberry.ID = strawberry.field(
        description="Global ID of the customer the person works at."
    )
    name: str = strawberry.field(description="The person's full name.")
    email: str | None = strawberry.field(default=None, description="The person's e-mail address.")
    phone: str | None = strawberry.field(
        default=None, description="The person's phone number (stored as E.164)."
    )
    job_title: str | None = strawberry.field(
        default=None, description="The person's function at the customer."
    )
    is_primary: bool = strawberry.field(
        default=False,
        description="Make this the customer's main contact (the previous one stops being it).",
    )
    notes: str | None = strawberry.field(default=None, description="Free text about the person.")
    # left out (UNSET), not null by default: only a field the caller sent
    # is a write of it, and these two need contact.read_profile
    birthday: datetime.date | None = strawberry.field(
        default=strawberry.UNSET, description="Needs the contact.read_profile permission."
    )
    home_address: str | None = strawberry.field(
        default=strawberry.UNSET, description="Needs the contact.read_profile permission."
    )


@strawberry.input(
    description="Change a contact: fields left out stay as they are; null clears an optional field."
)
class UpdateContactInput:
    id: strawberry.ID = strawberry.field(description="The contact's global ID.")
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="The person's full name."
    )
    email: str | None = strawberry.field(
        default=strawberry.UNSET, description="The person's e-mail address."
    )
    phone: str | None = strawberry.field(
        default=strawberry.UNSET, description="The person's phone number (stored as E.164)."
    )
    job_title: str | None = strawberry.field(
        default=strawberry.UNSET, description="The person's function at the customer."
    )
    is_primary: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="Make this the customer's main contact (true) or stop it being so (false).",
    )
    notes: str | None = strawberry.field(
        default=strawberry.UNSET, description="Free text about the person."
    )
    birthday: datetime.date | None = strawberry.field(
        default=strawberry.UNSET, description="Needs the contact.read_profile permission."
    )
    home_address: str | None = strawberry.field(
        default=strawberry.UNSET, description="Needs the contact.read_profile permission."
    )


@strawberry.input(description="A new need of a customer: what it wants from us.")
class RecordNeedInput:
    customer_id: strawberry.ID = strawberry.field(
        description="Global ID of the customer who has the need."
    )
    title: str = strawberry.field(description="What is needed, in one line.")
    description: str | None = strawberry.field(default=None, description="Details of the need.")
    category: str | None = strawberry.field(
        default=None, description="Free-form category, e.g. 'office supplies'."
    )
    consumption_type: str | None = strawberry.field(
        default=None, description="How it is consumed, e.g. 'recurring' or 'one-off'."
    )
    volume: float | None = strawberry.field(
        default=None, description="How much is needed, in `unit`."
    )
    unit: str | None = strawberry.field(
        default=None, description="The unit of `volume`, e.g. 'boxes/month'."
    )
    priority: core.NeedPriority = strawberry.field(
        default=core.NeedPriority.MEDIUM, description="How urgent it is."
    )
    status: core.NeedStatus = strawberry.field(
        default=core.NeedStatus.OPEN, description="Where it stands (a new need is usually OPEN)."
    )
    due_date: datetime.date | None = strawberry.field(
        default=None, description="The date it must be met by."
    )


@strawberry.input(
    description="Change a need: fields left out stay as they are; null clears an optional field."
)
class UpdateNeedInput:
    id: strawberry.ID = strawberry.field(description="The need's global ID.")
    title: str | None = strawberry.field(
        default=strawberry.UNSET, description="What is needed, in one line."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="Details of the need."
    )
    category: str | None = strawberry.field(
        default=strawberry.UNSET, description="Free-form category, e.g. 'office supplies'."
    )
    consumption_type: str | None = strawberry.field(
        default=strawberry.UNSET, description="How it is consumed, e.g. 'recurring' or 'one-off'."
    )
    volume: float | None = strawberry.field(
        default=strawberry.UNSET, description="How much is needed, in `unit`."
    )
    unit: str | None = strawberry.field(
        default=strawberry.UNSET, description="The unit of `volume`, e.g. 'boxes/month'."
    )
    priority: core.NeedPriority | None = strawberry.field(
        default=strawberry.UNSET, description="How urgent it is."
    )
    status: core.NeedStatus | None = strawberry.field(
        default=strawberry.UNSET, description="Where it stands."
    )
    due_date: datetime.date | None = strawberry.field(
        default=strawberry.UNSET, description="The date it must be met by."
    )


def transition_customer_input(kind_enum: Any) -> type:
    @strawberry.input(
        description="Move a customer to another stage of its lifecycle (see `allowedTransitions`)."
    )
    class TransitionCustomerInput:
        id: strawberry.ID = strawberry.field(description="The customer's global ID.")
        to_stage: str = strawberry.field(
            description="The stage's key (not its label), e.g. `active`; a move may convert the "
            "customer to another type."
        )
        expected_version: int = strawberry.field(
            description="The version you read; a stale one is refused."
        )
        reason: str | None = strawberry.field(
            default=None, description="Why: kept in the stage history and the audit trail."
        )
        kind: kind_enum | None = strawberry.field(  # type: ignore[valid-type]
            default=None,
            description="The role whose lifecycle moves (see `Customer.roles`); null: the "
            "customer's primary kind. Only the primary kind converts to another type.",
        )

    return TransitionCustomerInput


@strawberry.input(description="A relationship between two customers, of a kind a plugin declares.")
class LinkCustomersInput:
    from_id: strawberry.ID = strawberry.field(
        description="Global ID of the customer the link starts from (e.g. the distributor)."
    )
    to_id: strawberry.ID = strawberry.field(
        description="Global ID of the customer it points to (e.g. the client served)."
    )
    kind: str = strawberry.field(description="A relationship kind declared by a plugin.")


@strawberry.input(description="Delete a relationship between two customers.")
class UnlinkCustomersInput:
    id: strawberry.ID = strawberry.field(description="The relationship's ID.")


@strawberry.type(description="The result of `unlinkCustomers`.")
class UnlinkCustomersPayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        description="Global ID of the relationship deleted; null when refused."
    )
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of a contact write.")
class ContactPayload:
    contact: core.Contact | None = strawberry.field(
        description="The contact as written; null when refused."
    )
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of a need write.")
class NeedPayload:
    need: Need | None = strawberry.field(description="The need as written; null when refused.")
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


@dataclass(frozen=True)
class MutationTypes:
    """The classes built for one catalog the core mutations take and return."""

    types: SchemaTypes
    attribute_kinds: tuple[str, ...]  # kinds with an attribute input, in input order
    attribute_inputs: dict[str, type]  # those inputs, by kind
    duplicate_candidate: type
    create_customer_input: type
    update_customer_input: type
    log_interaction_input: type
    customer_payload: type
    create_customer_payload: type
    transition_customer_input: type
    transition_customer_payload: type
    interaction_payload: type
    link_customers_payload: type


NAME = "The party's name: a person's full name or an organisation's."
EMAIL = "Main e-mail address."
PHONE = "Phone number, stored as E.164 (a national number is read in the default region)."
TEAM = "Global ID of the team to share it with (its agents see it)."


def attributes(kind: str) -> str:
    return (
        f"The attributes of a `{kind}` customer: send it only for a customer of that kind "
        "(another kind's is refused)."
    )


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
        "kind": strawberry.field(description="The new customer's type."),
        "name": strawberry.field(description=NAME),
        "email": strawberry.field(default=None, description=EMAIL),
        "phone": strawberry.field(default=None, description=PHONE),
        "owner_id": strawberry.field(
            default=None,
            description="Global ID of the user to own it; null: no owner (an agent's "
            "new customer is theirs).",
        ),
        "team_id": strawberry.field(default=None, description=TEAM),
        "allow_duplicate": strawberry.field(
            default=False,
            description="Create it even if its type's duplicate rule is `block` and it is "
            "likely an existing customer (listed in the payload's `duplicates`).",
        ),
        **{
            key: strawberry.field(default=strawberry.UNSET, description=attributes(key))
            for key in attribute_inputs
        },
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
        "id": strawberry.field(description="The customer's global ID."),
        "expected_version": strawberry.field(
            description="The version you read; a stale one is refused (VERSION_CONFLICT)."
        ),
        "name": strawberry.field(default=strawberry.UNSET, description=NAME),
        "email": strawberry.field(default=strawberry.UNSET, description=EMAIL),
        "phone": strawberry.field(default=strawberry.UNSET, description=PHONE),
        "owner_id": strawberry.field(
            default=strawberry.UNSET, description="Global ID of the user to own it."
        ),
        "team_id": strawberry.field(default=strawberry.UNSET, description=TEAM),
        **{
            key: strawberry.field(default=strawberry.UNSET, description=attributes(key))
            for key in attribute_inputs
        },
    }
    update = strawberry.input(
        type("UpdateCustomerInput", (), update_ns),
        description="Fields left out stay as they are; null clears an optional field. "
        "`expectedVersion` is the version you read; a stale one is refused.",
    )
    return create, update


def log_interaction_input(channel_enum: Any) -> type:
    @strawberry.input(
        description="An interaction with a customer: a call, a meeting, an e-mail, a purchase."
    )
    class LogInteractionInput:
        customer_id: strawberry.ID = strawberry.field(
            description="Global ID of the customer it was with."
        )
        channel: channel_enum = strawberry.field(description="Where it happened.")  # type: ignore[valid-type]
        direction: core.InteractionDirection = strawberry.field(
            description="Who started it: the customer (INBOUND) or us (OUTBOUND)."
        )
        subject: str = strawberry.field(description="A one-line summary.")
        occurred_at: datetime.datetime | None = strawberry.field(
            default=None, description="Defaults to now."
        )
        contact_id: strawberry.ID | None = strawberry.field(
            default=None, description="Global ID of the contact person involved, if one was."
        )
        notes: str | None = strawberry.field(
            default=None, description="Free text: what was said or done."
        )
        outcome: str | None = strawberry.field(
            default=None, description="What came of it: the moment of truth."
        )
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

    @strawberry.type(description="The result of `transitionCustomer`.")
    class TransitionCustomerPayload:
        customer: CustomerBase | None = strawberry.field(  # type: ignore[valid-type]
            description="The customer after the move (of its new type when the move converted it);"
            " null when refused."
        )
        stage_change: core.StageChange | None = strawberry.field(
            description="The move recorded in the stage history; null when refused."
        )
        user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)

    @strawberry.type(description="The result of a customer write.")
    class CustomerPayload:
        customer: CustomerBase | None = strawberry.field(  # type: ignore[valid-type]
            description="The customer as written; null when refused."
        )
        user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)

    @strawberry.type(description="The result of `createCustomer`.")
    class CreateCustomerPayload:
        customer: CustomerBase | None = strawberry.field(  # type: ignore[valid-type]
            description="The new customer; null when refused."
        )
        user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)
        duplicates: list[duplicate_candidate] = strawberry.field(  # type: ignore[valid-type]
            description="Existing customers the new one is likely to be, most likely first "
            "(those the caller may see): a warning when it was created, the reason when its "
            "type's `block` rule refused it (userErrors code DUPLICATE)."
        )

    return CustomerPayload, CreateCustomerPayload, TransitionCustomerPayload


def record_payloads(interaction_cls: type, relationship_cls: type) -> tuple[type, type]:
    """InteractionPayload and LinkCustomersPayload."""
    Interaction = interaction_cls

    @strawberry.type(description="The result of `linkCustomers`.")
    class LinkCustomersPayload:
        relationship: relationship_cls | None = strawberry.field(  # type: ignore[valid-type]
            description="The new relationship; null when refused."
        )
        user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)

    @strawberry.type(description="The result of `logInteraction`.")
    class InteractionPayload:
        interaction: Interaction | None = strawberry.field(  # type: ignore[valid-type]
            description="The interaction as logged; null when refused."
        )
        user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)

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
        attribute_inputs=attribute_inputs,
        duplicate_candidate=duplicate_candidate,
        create_customer_input=create,
        update_customer_input=update,
        log_interaction_input=log_interaction_input(types.channel_enum),
        customer_payload=customer,
        create_customer_payload=create_payload,
        transition_customer_input=transition_customer_input(types.kind_enum),
        transition_customer_payload=transition,
        interaction_payload=interaction,
        link_customers_payload=link,
    )
