"""Core mutations: one ``input`` each, a payload with ``userErrors``, one
transaction per call.

Built by :func:`build_mutation_type` because the customer inputs carry one
typed attribute input per customer type. No ``from __future__ import
annotations``: see :mod:`crmgraph.schema.build`.
"""

import contextlib
import datetime
import enum
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Optional

import strawberry
from strawberry.types import Info

from crmgraph import input_checks
from crmgraph import validation as v
from crmgraph.access import CUSTOMER_ASSIGN, CUSTOMER_DELETE, CUSTOMER_WRITE
from crmgraph.db import queries, writes
from crmgraph.db.queries import load_json
from crmgraph.dedupe import matching
from crmgraph.dedupe.merge_rows import RELATIONSHIP_ENDS
from crmgraph.extension_points import CustomerWrite
from crmgraph.hook_contexts import CustomerSnapshot, Facts
from crmgraph.input_checks import (
    attribute_fields,
    camel_keys,
    forbidden_problem,
    guarded_problems,
)
from crmgraph.lifecycle import refusal_problems
from crmgraph.privacy.consent import MARKETING, OUTBOUND, marketing_refusal
from crmgraph.schema import core_types as core
from crmgraph.schema.consent_types import Purpose
from crmgraph.schema.duplicates import candidate_objects, screen_new_customer
from crmgraph.schema.ids import InvalidId, decode_id, encode_id
from crmgraph.schema.mutation_runner import run_mutation
from crmgraph.schema.mutation_runner import user_errors as user_errors  # schema.imports uses it
from crmgraph.validation import Errors, Problem, UserInputError

# customer columns its match keys are computed from (with the tax_id attribute)
MATCHED_FIELDS = frozenset({"name", "email", "phone"})


def given(value: Any) -> bool:
    return value is not strawberry.UNSET


def plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def input_values(obj: Any) -> dict[str, Any]:
    """The fields a client actually sent in an input object (UNSET ones dropped)."""
    if obj is None or obj is strawberry.UNSET:
        return {}
    return {k: plain(val) for k, val in vars(obj).items() if given(val)}


def decode(errors: Errors, path: str, global_id: Any, type_name: str) -> int | None:
    if global_id is None or not given(global_id):
        return None
    try:
        return decode_id(str(global_id), type_name)[1]
    except InvalidId as exc:
        errors.add(path, f"{path}: {exc}", "INVALID_ID")
        return None


def guarded_input_problems(
    info: Info, type_name: str, path: str, sent: dict[str, Any], creating: bool
) -> list[Problem]:
    """FORBIDDEN for each guarded field of ``type_name`` the caller may not
    write among the input fields sent (:func:`input_values`: a field left out
    is UNSET and dropped; see :meth:`crmgraph.access.Access.denied_writes`
    for when a null writes); ``path`` prefixes the field."""
    return guarded_problems(info.context.access, type_name, path, sent, creating)


async def live(info: Info, pk: int, field: str = "id") -> dict[str, Any]:
    """The not-deleted customer a write applies to, if the caller may see it,
    read with its party lock held (a merged one is refused: MERGED)."""
    return await writes.live_customer(info.context.db, pk, field, info.context.access.sees)


# (loader, key) pairs a mutation's payload shows, given the written pk
ResultRows = Callable[[int], Sequence[tuple[str, Any]]]


def customer_rows(pk: int) -> list[tuple[str, Any]]:
    return [("customer", pk)]


def node_rows(type_name: str) -> ResultRows:
    return lambda pk: [("row", (type_name, pk))]


async def run_write(
    info: Info,
    errors: Errors,
    work: Callable[[], Awaitable[int]],
    permission: str = CUSTOMER_WRITE,
    result_rows: ResultRows = customer_rows,
) -> tuple[int | None, list[core.UserError]]:
    """Check the caller's permission, then validate-then-write: nothing touches
    the database while input problems remain; ``work`` runs in one transaction
    made for the caller (its audit entries name them) and any UserInputError
    rolls it back. The rows the payload shows are read inside that transaction,
    so a payload is the state this write made, never a later writer's.

    ``work`` resolves the customers it writes to through :func:`live` (or
    :mod:`crmgraph.db.writes`' ``visible_customer``, ``locked_row``,
    ``lock_parties``), which take their party lock first; the transaction is
    run by ``Database.run_transaction``, which runs it again after a deadlock,
    so ``work`` must not keep state from a failed attempt."""

    async def written() -> int:
        pk = await work()
        for loader_name, key in result_rows(pk):
            await fresh_row(info, loader_name, key)
        return pk

    return await run_mutation(info, written, permission=permission, problems=errors.problems)


async def fresh_row(info: Info, loader_name: str, key: Any) -> Any:
    """Load after a write, bypassing anything this request cached before it."""
    loader = getattr(info.context.loaders, loader_name)
    with contextlib.suppress(KeyError):
        loader.clear(key)
    return await loader.load(key)


async def written_row(info: Info, loader_name: str, key: Any) -> Any:
    """A row as the write left it (``run_write`` read it in the transaction)."""
    return await getattr(info.context.loaders, loader_name).load(key)


def build_mutation_type(
    types: Any,
    customer_interface: type,
    interaction_cls: type,
    channel_enum: Any,
    attribute_inputs: dict[str, type],
    load_customer: Callable[[Info, int], Awaitable[Any]],
    duplicate_candidate: type,
) -> type:
    catalog = types.catalog
    kind_enum = types.kind_enum
    CustomerBase = customer_interface
    Interaction = interaction_cls

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
    CreateCustomerInput = strawberry.input(
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
    UpdateCustomerInput = strawberry.input(
        type("UpdateCustomerInput", (), update_ns),
        description="Fields left out stay as they are; null clears an optional field. "
        "`expectedVersion` is the version you read; a stale one is refused.",
    )

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

    @strawberry.type
    class TransitionCustomerPayload:
        customer: CustomerBase | None  # type: ignore[valid-type]
        stage_change: core.StageChange | None
        user_errors: list[core.UserError]

    @strawberry.input
    class LinkCustomersInput:
        from_id: strawberry.ID
        to_id: strawberry.ID
        kind: str = strawberry.field(description="A relationship kind declared by a plugin.")

    @strawberry.input
    class UnlinkCustomersInput:
        id: strawberry.ID = strawberry.field(description="The relationship's ID.")

    @strawberry.type
    class LinkCustomersPayload:
        relationship: types.relationship_cls | None  # type: ignore[name-defined]
        user_errors: list[core.UserError]

    @strawberry.type
    class UnlinkCustomersPayload:
        deleted_id: strawberry.ID | None
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

    @strawberry.type
    class ContactPayload:
        contact: core.Contact | None
        user_errors: list[core.UserError]

    @strawberry.type
    class InteractionPayload:
        interaction: Interaction | None  # type: ignore[valid-type]
        user_errors: list[core.UserError]

    @strawberry.type
    class NeedPayload:
        need: core.Need | None
        user_errors: list[core.UserError]

    def region(info: Info) -> str | None:
        return info.context.settings.default_phone_region

    def party_fields(info: Info, errors: Errors, data: dict[str, Any]) -> dict[str, Any]:
        return input_checks.party_fields(errors, data, region(info))

    def customer_fields(info: Info, errors: Errors, data: dict[str, Any]) -> dict[str, Any]:
        """Validate the core customer fields present in ``data``."""
        values = party_fields(info, errors, data)
        if "owner_id" in data:
            values["owner"] = decode(errors, "ownerId", data["owner_id"], "User")
        if "team_id" in data:
            values["team"] = decode(errors, "teamId", data["team_id"], "Team")
        return values

    def foreign_attribute_inputs(errors: Errors, data: dict[str, Any], kind: str) -> None:
        for key in attribute_inputs:
            if key != kind and data.get(key) is not None:
                errors.add(
                    v.camel(key),
                    f"{v.camel(key)} attributes do not apply to a customer of kind {kind.upper()}",
                    "INVALID",
                )

    async def plugin_validation(info: Info, write: CustomerWrite) -> None:
        """Every plugin's ``crmgraph_validate_customer``, all problems collected."""
        problems = await input_checks.plugin_problems(info.context.plugin_manager, write)
        if problems:
            raise UserInputError(problems)

    async def check_assignment(info: Info, values: dict[str, Any]) -> None:
        """The owner and team exist, and a caller without customer.assign gives
        the customer only to themselves and their own teams."""
        db, access = info.context.db, info.context.access
        principal = access.principal
        owner, team = values.get("owner"), values.get("team")
        problems = []
        if owner is not None and not await writes.row_exists(db, "crm_user", owner):
            problems.append(Problem("ownerId", "user not found", "NOT_FOUND"))
        elif owner is not None and owner != principal.user_id and not access.can(CUSTOMER_ASSIGN):
            problems.append(
                forbidden_problem("ownerId", "give a customer to another user", CUSTOMER_ASSIGN)
            )
        if team is not None and not await writes.row_exists(db, "team", team):
            problems.append(Problem("teamId", "team not found", "NOT_FOUND"))
        elif (
            team is not None and team not in principal.team_ids and not access.can(CUSTOMER_ASSIGN)
        ):
            problems.append(
                forbidden_problem(
                    "teamId", "give a customer to a team you are not in", CUSTOMER_ASSIGN
                )
            )
        if problems:
            raise UserInputError(problems)

    def guarded_attribute_problems(
        info: Info, kind: str, attrs: dict[str, Any], creating: bool
    ) -> list[Problem]:
        graphql_name = catalog.customer_type(kind).graphql_name
        return guarded_input_problems(info, graphql_name, f"{v.camel(kind)}.", attrs, creating)

    async def customer_payload(info: Info, pk: int | None, errors: list[core.UserError]) -> Any:
        if pk is None:
            return CustomerPayload(customer=None, user_errors=errors)
        row = await written_row(info, "customer", pk)
        return CustomerPayload(customer=types.customer(row), user_errors=[])

    def customer_pk(errors: Errors, global_id: Any, path: str = "id") -> int:
        pk = decode(errors, path, global_id, "Customer")
        return pk if pk is not None else 0

    @strawberry.type
    class Mutation:
        @strawberry.mutation(
            description="Create a customer of any kind, in its initial stage. Likely "
            "duplicates of it are listed in `duplicates`; a type whose duplicate rule is "
            "`block` refuses it while one has an exact e-mail, phone or tax id, unless "
            "`allowDuplicate: true`."
        )
        async def create_customer(
            self,
            info: Info,
            input: CreateCustomerInput,  # type: ignore[valid-type]
        ) -> CreateCustomerPayload:
            errors = Errors()
            data = input_values(input)
            data.setdefault("name", None)
            kind = data["kind"]
            descriptor = catalog.customer_type(kind)
            values = customer_fields(info, errors, data)
            foreign_attribute_inputs(errors, data, kind)
            sent = input_values(getattr(input, kind, None))
            errors.problems.extend(guarded_attribute_problems(info, kind, sent, creating=True))
            attrs = v.attributes(errors, v.camel(kind), descriptor, sent)
            if values.get("owner") is None and info.context.access.scope is not None:
                # a caller who sees only their own customers owns what they create
                values["owner"] = info.context.principal.user_id

            duplicates: list[matching.Candidate] = []

            async def work() -> int:
                db = info.context.db
                duplicates.clear()  # a rerun (Database.run_transaction) screens afresh
                await check_assignment(info, values)
                typed = descriptor.decode_attributes(attrs)
                write = CustomerWrite(kind, descriptor, values, typed, existing=None, facts=None)
                await plugin_validation(info, write)
                probe = await screen_new_customer(
                    info, descriptor, values, attrs, input.allow_duplicate, duplicates
                )
                pk = await writes.create_customer(db, descriptor, values, attrs)
                await matching.insert_match_keys(
                    db, {pk: probe}, info.context.settings.default_phone_region
                )
                await writes.record_change(
                    db,
                    "customer.created",
                    ("Customer", pk),
                    pk,
                    writes.field_changes(
                        None, {"kind": kind, **camel_keys(values), **attribute_fields(kind, attrs)}
                    ),
                    {"customerId": encode_id("Customer", pk), "kind": kind},
                )
                return pk

            pk, problems = await run_write(info, errors, work)
            payload = await customer_payload(info, pk, problems)
            return CreateCustomerPayload(
                customer=payload.customer,
                user_errors=payload.user_errors,
                duplicates=candidate_objects(duplicate_candidate, duplicates),
            )

        @strawberry.mutation(
            description="Change a customer; refused if `expectedVersion` is stale."
        )
        async def update_customer(self, info: Info, input: UpdateCustomerInput) -> CustomerPayload:  # type: ignore[valid-type]
            errors = Errors()
            data = input_values(input)
            pk = customer_pk(errors, input.id)
            values = customer_fields(info, errors, data)

            async def work() -> int:
                db = info.context.db
                current = await live(info, pk)
                writes.check_version(current, input.expected_version)
                kind = current["kind"]
                attr_errors = Errors()
                foreign_attribute_inputs(attr_errors, data, kind)
                attrs = None
                if kind in data:
                    sent = input_values(getattr(input, kind))
                    attr_errors.problems.extend(
                        guarded_attribute_problems(info, kind, sent, creating=False)
                    )
                    attrs = v.attributes(
                        attr_errors,
                        v.camel(kind),
                        catalog.customer_type(kind),
                        sent,
                        load_json(current["attributes"]),
                    )
                if attr_errors:
                    raise UserInputError(attr_errors.problems)
                await check_assignment(info, values)
                descriptor = catalog.customer_type(kind)
                existing = CustomerSnapshot.from_row(current, descriptor)
                merged = attrs if attrs is not None else load_json(current["attributes"])
                typed = descriptor.decode_attributes(merged)
                facts = Facts(db, pk, catalog)
                write = CustomerWrite(kind, descriptor, values, typed, existing, facts)
                await plugin_validation(info, write)
                await writes.update_customer(db, pk, input.expected_version, values, attrs)
                if MATCHED_FIELDS & values.keys() or (attrs is not None and "tax_id" in sent):
                    await matching.refresh_match_keys(db, [pk])
                changes = writes.field_changes(
                    camel_keys({k: current[k] for k in values}), camel_keys(values)
                )
                if attrs is not None:
                    old_attrs = load_json(current["attributes"])
                    changes |= writes.field_changes(
                        attribute_fields(kind, old_attrs),
                        {**attribute_fields(kind, dict.fromkeys(old_attrs)),
                         **attribute_fields(kind, attrs)},
                    )  # fmt: skip
                await writes.record_change(
                    db,
                    "customer.updated",
                    ("Customer", pk),
                    pk,
                    changes,
                    {"customerId": input.id, "kind": kind, "fields": sorted(changes)},
                )
                return pk

            result, problems = await run_write(info, errors, work)
            return await customer_payload(info, result, problems)

        @strawberry.mutation(
            description="Assign or reassign a customer's owner and team. Without the "
            "customer.assign permission only to yourself and your own teams. Writes a "
            "customer.assigned event naming the previous and new owner and team."
        )
        async def assign_customer(self, info: Info, input: AssignCustomerInput) -> CustomerPayload:
            errors = Errors()
            pk = customer_pk(errors, input.customer_id, "customerId")
            values = customer_fields(info, errors, input_values(input))
            if not values:
                errors.add(None, "give ownerId, teamId or both", "REQUIRED")
            reason = v.text(errors, "reason", input.reason, max_length=2000)

            async def work() -> int:
                db = info.context.db
                current = await live(info, pk, "customerId")
                if input.expected_version is not None:
                    writes.check_version(current, input.expected_version)
                await check_assignment(info, values)
                changes = writes.field_changes(
                    camel_keys({k: current[k] for k in values}), camel_keys(values)
                )
                if not changes:
                    return pk  # already so: nothing to record
                descriptor = catalog.customer_type(current["kind"])
                attrs = load_json(current["attributes"])
                write = CustomerWrite(
                    current["kind"],
                    descriptor,
                    values,
                    descriptor.decode_attributes(attrs),
                    CustomerSnapshot.from_row(current, descriptor),
                    Facts(db, pk, catalog),
                )
                await plugin_validation(info, write)
                await writes.update_customer(db, pk, current["version"], values, None)
                after = {**current, **values}

                def ref(row: dict[str, Any], column: str, type_name: str) -> str | None:
                    return encode_id(type_name, row[column]) if row[column] is not None else None

                await writes.record_change(
                    db,
                    "customer.assigned",
                    ("Customer", pk),
                    pk,
                    changes | ({"reason": [None, reason]} if reason else {}),
                    {
                        "customerId": input.customer_id,
                        "kind": current["kind"],
                        "fields": sorted(changes),
                        "ownerId": ref(after, "owner", "User"),
                        "teamId": ref(after, "team", "Team"),
                        "previousOwnerId": ref(current, "owner", "User"),
                        "previousTeamId": ref(current, "team", "Team"),
                        "reason": reason,
                    },
                )
                return pk

            result, problems = await run_write(info, errors, work)
            if result is not None:
                row = await written_row(info, "customer", result)
                if not info.context.access.sees(row):
                    # given away: the caller may no longer read it
                    return CustomerPayload(customer=None, user_errors=[])
            return await customer_payload(info, result, problems)

        @strawberry.mutation(description="Soft-delete a customer; `restoreCustomer` undoes it.")
        async def delete_customer(self, info: Info, input: DeleteCustomerInput) -> CustomerPayload:
            errors = Errors()
            pk = customer_pk(errors, input.id)

            async def work() -> int:
                db = info.context.db
                changes = await writes.set_deleted(
                    db, pk, True, input.expected_version, info.context.access.sees
                )
                await matching.refresh_match_keys(db, [pk])  # a deleted customer has none
                await writes.record_change(
                    db, "customer.deleted", ("Customer", pk), pk, changes, {"customerId": input.id}
                )
                return pk

            result, problems = await run_write(info, errors, work, CUSTOMER_DELETE)
            return await customer_payload(info, result, problems)

        @strawberry.mutation(description="Bring back a soft-deleted customer.")
        async def restore_customer(
            self, info: Info, input: RestoreCustomerInput
        ) -> CustomerPayload:
            errors = Errors()
            pk = customer_pk(errors, input.id)

            async def work() -> int:
                db = info.context.db
                changes = await writes.set_deleted(db, pk, False, None, info.context.access.sees)
                await matching.refresh_match_keys(db, [pk])
                await writes.record_change(
                    db, "customer.restored", ("Customer", pk), pk, changes, {"customerId": input.id}
                )
                return pk

            result, problems = await run_write(info, errors, work, CUSTOMER_DELETE)
            return await customer_payload(info, result, problems)

        @strawberry.mutation(description="Add a person at a customer.")
        async def add_contact(self, info: Info, input: AddContactInput) -> ContactPayload:
            errors = Errors()
            customer = customer_pk(errors, input.customer_id, "customerId")
            values = contact_fields(info, errors, input_values(input), creating=True)

            async def work() -> int:
                db = info.context.db
                await live(info, customer, "customerId")
                at = writes.now()
                pk = await writes.insert(
                    db,
                    "contact",
                    {**values, "customer": customer, "created_at": at, "updated_at": at},
                )
                if values.get("is_primary"):
                    await writes.clear_primary_contact(db, customer, pk)
                await writes.record_change(
                    db,
                    "contact.added",
                    ("Contact", pk),
                    customer,
                    writes.field_changes(None, camel_keys(values)),
                    writes.contact_added_payload(customer, pk),
                )
                return pk

            pk, problems = await run_write(info, errors, work, result_rows=node_rows("Contact"))
            return await contact_payload(info, pk, problems)

        @strawberry.mutation(description="Change a contact; fields left out stay as they are.")
        async def update_contact(self, info: Info, input: UpdateContactInput) -> ContactPayload:
            errors = Errors()
            pk = decode(errors, "id", input.id, "Contact") or 0
            values = contact_fields(info, errors, input_values(input), creating=False)

            async def work() -> int:
                db = info.context.db
                current = await writes.contact_row(db, pk)
                await live(info, current["customer"], "id")
                await writes.update_row(db, "contact", pk, {**values, "updated_at": writes.now()})
                if values.get("is_primary"):
                    await writes.clear_primary_contact(db, current["customer"], pk)
                changes = writes.field_changes(
                    camel_keys({k: current[k] for k in values}), camel_keys(values)
                )
                await writes.record_change(
                    db,
                    "contact.updated",
                    ("Contact", pk),
                    current["customer"],
                    changes,
                    {"contactId": input.id, "fields": sorted(changes)},
                )
                return pk

            result, problems = await run_write(info, errors, work, result_rows=node_rows("Contact"))
            return await contact_payload(info, result, problems)

        @strawberry.mutation(description="Record a contact with a customer on any channel.")
        async def log_interaction(
            self, info: Info, input: LogInteractionInput
        ) -> InteractionPayload:
            errors = Errors()
            customer = customer_pk(errors, input.customer_id, "customerId")
            contact = decode(errors, "contactId", input.contact_id, "Contact")
            at = writes.now()
            values = {
                "customer": customer,
                "contact": contact,
                "channel": input.channel.value,
                "direction": input.direction.value,
                **input_checks.interaction_fields(errors, input_values(input), at),
                "created_at": at,
                "purpose": input.purpose.value if input.purpose else None,
            }

            async def work() -> int:
                db = info.context.db
                await live(info, customer, "customerId")
                if contact is not None:
                    await writes.contact_of(db, contact, customer)
                if (values["direction"], values["purpose"]) == (OUTBOUND, MARKETING):
                    refusal = await marketing_refusal(db, customer, contact, values["channel"])
                    if refusal is not None:
                        raise UserInputError([refusal])
                pk = await writes.insert(db, "interaction", values)
                logged = {
                    k: val for k, val in values.items() if k not in ("customer", "created_at")
                }
                await writes.record_change(
                    db,
                    "interaction.logged",
                    ("Interaction", pk),
                    customer,
                    writes.field_changes(None, camel_keys(logged)),
                    writes.interaction_logged_payload(customer, pk, values),
                )
                return pk

            pk, problems = await run_write(info, errors, work, result_rows=node_rows("Interaction"))
            if pk is None:
                return InteractionPayload(interaction=None, user_errors=problems)
            row = await written_row(info, "row", ("Interaction", pk))
            return InteractionPayload(interaction=types.interaction(row), user_errors=[])

        @strawberry.mutation(description="Record what a customer needs.")
        async def record_need(self, info: Info, input: RecordNeedInput) -> NeedPayload:
            errors = Errors()
            customer = customer_pk(errors, input.customer_id, "customerId")
            values = need_fields(errors, input_values(input))

            async def work() -> int:
                db = info.context.db
                await live(info, customer, "customerId")
                at = writes.now()
                pk = await writes.insert(
                    db, "need", {**values, "customer": customer, "created_at": at, "updated_at": at}
                )
                await writes.record_change(
                    db,
                    "need.recorded",
                    ("Need", pk),
                    customer,
                    writes.field_changes(None, camel_keys(values)),
                    {"customerId": input.customer_id, "needId": encode_id("Need", pk)},
                )
                return pk

            pk, problems = await run_write(info, errors, work, result_rows=node_rows("Need"))
            return await need_payload(info, pk, problems)

        @strawberry.mutation(description="Change a need: its status, priority, volume, …")
        async def update_need(self, info: Info, input: UpdateNeedInput) -> NeedPayload:
            errors = Errors()
            pk = decode(errors, "id", input.id, "Need") or 0
            data = input_values(input)
            for required in ("title", "priority", "status"):
                if required in data and data[required] is None:
                    errors.add(v.camel(required), f"{v.camel(required)} cannot be null", "REQUIRED")
            values = need_fields(errors, data)

            async def work() -> int:
                db = info.context.db
                need = await writes.locked_row(db, "need", pk)
                if need is None:
                    raise UserInputError.single("id", "need not found", "NOT_FOUND")
                rows = [need]
                await live(info, need["customer"], "id")
                await writes.update_row(db, "need", pk, {**values, "updated_at": writes.now()})
                changes = writes.field_changes(
                    camel_keys({k: rows[0][k] for k in values}), camel_keys(values)
                )
                await writes.record_change(
                    db,
                    "need.updated",
                    ("Need", pk),
                    rows[0]["customer"],
                    changes,
                    {"needId": input.id, "fields": sorted(changes)},
                )
                return pk

            result, problems = await run_write(info, errors, work, result_rows=node_rows("Need"))
            return await need_payload(info, result, problems)

        @strawberry.mutation(
            description="Move a customer to another stage of its lifecycle. Every reason a "
            "move is refused comes back in `userErrors` (code TRANSITION_REFUSED)."
        )
        async def transition_customer(
            self, info: Info, input: TransitionCustomerInput
        ) -> TransitionCustomerPayload:
            errors = Errors()
            pk = customer_pk(errors, input.id)
            reason = v.text(errors, "reason", input.reason, max_length=2000)
            moved: dict[str, str] = {}

            async def work() -> int:
                db = info.context.db
                current = await live(info, pk)
                writes.check_version(current, input.expected_version)
                moved["kind"] = current["kind"]
                engine = info.context.lifecycles
                ctx = engine.context(
                    db, current, input.to_stage.strip(), reason, info.context.principal.user_id
                )
                refused = await engine.refusals(ctx)
                if refused:
                    raise refusal_problems(refused)
                await engine.apply(ctx, input.expected_version)
                return pk

            result, problems = await run_write(
                info, errors, work, result_rows=lambda pk: [("customer", pk), ("stage_history", pk)]
            )
            if result is None:
                return TransitionCustomerPayload(
                    customer=None, stage_change=None, user_errors=problems
                )
            history = await written_row(info, "stage_history", result)
            return TransitionCustomerPayload(
                customer=types.customer(await written_row(info, "customer", result)),
                # the move asked for, not the entry a conversion adds for the new type
                stage_change=core.StageChange.from_row(
                    next(
                        h
                        for h in reversed(history)
                        if (h["kind"], h["to_stage"]) == (moved["kind"], input.to_stage.strip())
                    )
                ),
                user_errors=[],
            )

        @strawberry.mutation(description="Link two customers with a declared relationship kind.")
        async def link_customers(
            self, info: Info, input: LinkCustomersInput
        ) -> LinkCustomersPayload:
            errors = Errors()
            from_pk = customer_pk(errors, input.from_id, "fromId")
            to_pk = customer_pk(errors, input.to_id, "toId")
            kind = catalog.relationship_kind(input.kind)
            if kind is None:
                known = ", ".join(k.key for k in catalog.relationship_kinds) or "none"
                errors.add(
                    "kind",
                    f"unknown relationship kind {input.kind!r} (known: {known})",
                    "INVALID_CHOICE",
                )
            if from_pk and from_pk == to_pk:
                errors.add("toId", "a customer cannot be linked to itself", "INVALID")

            async def work() -> int:
                db = info.context.db
                await writes.lock_parties(db, [from_pk, to_pk])  # both, in id order
                source = await live(info, from_pk, "fromId")
                target = await live(info, to_pk, "toId")
                problems = []
                for path, party, allowed in (
                    ("fromId", source, kind.from_kinds),
                    ("toId", target, kind.to_kinds),
                ):
                    if allowed and party["kind"] not in allowed:
                        problems.append(
                            Problem(
                                path,
                                f"a {kind.key} relationship needs {path[:-2]} to be one of "
                                f"{', '.join(a.upper() for a in allowed)}, "
                                f"not {party['kind'].upper()}",
                                "INVALID",
                            )
                        )
                duplicate = await db.fetch(
                    "SELECT id FROM relationship WHERE from_customer = {} AND to_customer = {} "
                    "AND kind = {}",
                    from_pk,
                    to_pk,
                    kind.key,
                )
                if duplicate:
                    problems.append(
                        Problem("kind", "these customers are already linked so", "DUPLICATE")
                    )
                if problems:
                    raise UserInputError(problems)
                rel = await writes.insert(
                    db,
                    "relationship",
                    {
                        "from_customer": from_pk,
                        "to_customer": to_pk,
                        "kind": kind.key,
                        "attributes": "{}",
                        "created_at": writes.now(),
                    },
                )
                link = {"kind": kind.key, "fromId": input.from_id, "toId": input.to_id}
                await writes.record_change(
                    db,
                    "relationship.created",
                    ("Relationship", rel),
                    from_pk,
                    writes.field_changes(None, link),
                    {
                        "relationshipId": encode_id("Relationship", rel),
                        "kind": kind.key,
                        "fromId": input.from_id,
                        "toId": input.to_id,
                    },
                )
                return rel

            rel, problems = await run_write(
                info, errors, work, result_rows=node_rows("Relationship")
            )
            if rel is None:
                return LinkCustomersPayload(relationship=None, user_errors=problems)
            row = await written_row(info, "row", ("Relationship", rel))
            return LinkCustomersPayload(relationship=types.relationship(row), user_errors=[])

        @strawberry.mutation(description="Remove a relationship between two customers.")
        async def unlink_customers(
            self, info: Info, input: UnlinkCustomersInput
        ) -> UnlinkCustomersPayload:
            errors = Errors()
            pk = decode(errors, "id", input.id, "Relationship") or 0

            async def work() -> int:
                db = info.context.db
                link = await writes.locked_row(db, "relationship", pk, RELATIONSHIP_ENDS)
                rows = [link] if link is not None else []
                ends = [rows[0]["from_customer"], rows[0]["to_customer"]] if rows else []
                parties = await queries.customers_by_ids(db, ends) if ends else []
                # visible when either party is, as for node(id:)
                if not any(info.context.access.sees(party) for party in parties):
                    raise UserInputError.single("id", "relationship not found", "NOT_FOUND")
                await db.fetch("DELETE FROM relationship WHERE id = {}", pk)
                gone = {
                    "kind": rows[0]["kind"],
                    "fromId": encode_id("Customer", rows[0]["from_customer"]),
                    "toId": encode_id("Customer", rows[0]["to_customer"]),
                }
                await writes.record_change(
                    db,
                    "relationship.deleted",
                    ("Relationship", pk),
                    rows[0]["from_customer"],
                    {field: [value, None] for field, value in gone.items()},
                    {
                        "relationshipId": input.id,
                        "kind": rows[0]["kind"],
                    },
                )
                return pk

            result, problems = await run_write(info, errors, work, result_rows=lambda pk: ())
            return UnlinkCustomersPayload(
                deleted_id=input.id if result is not None else None, user_errors=problems
            )

    def contact_fields(
        info: Info, errors: Errors, data: dict[str, Any], creating: bool
    ) -> dict[str, Any]:
        values = input_checks.contact_fields(errors, data, region(info), writes.now().date())
        errors.problems.extend(guarded_input_problems(info, "Contact", "", data, creating))
        return values

    def need_fields(errors: Errors, data: dict[str, Any]) -> dict[str, Any]:
        return input_checks.need_fields(errors, data)  # the importer's rules too

    async def contact_payload(info: Info, pk: int | None, problems: list[core.UserError]) -> Any:
        if pk is None:
            return ContactPayload(contact=None, user_errors=problems)
        row = await written_row(info, "row", ("Contact", pk))
        return ContactPayload(contact=core.Contact.from_row(row), user_errors=[])

    async def need_payload(info: Info, pk: int | None, problems: list[core.UserError]) -> Any:
        if pk is None:
            return NeedPayload(need=None, user_errors=problems)
        row = await written_row(info, "row", ("Need", pk))
        return NeedPayload(need=core.Need.from_row(row), user_errors=[])

    return Mutation
