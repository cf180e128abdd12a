"""Personal data rights in GraphQL: ``personalDataExport`` (access),
``erasePersonalData`` (erasure) and ``recordConsent``.

The rules are :mod:`crmgraph.operations.privacy`'s (the work on the tables
:mod:`crmgraph.privacy`'s); this module's resolvers are short adapters that
turn input into those operations' plain input and show the result.

No ``from __future__ import annotations``: the payloads are built per schema
around its ``Customer`` interface (see :mod:`crmgraph.schema.build`).
"""

import datetime
from typing import Annotated, Any

import orjson
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crmgraph.db import queries
from crmgraph.operations import privacy as ops
from crmgraph.schema import core_types as core
from crmgraph.schema.consent_types import ConsentSource, ConsentTypes, Purpose
from crmgraph.schema.ids import encode_id
from crmgraph.schema.mutation_runner import actor_of
from crmgraph.schema.mutations import decode, written_row
from crmgraph.schema.mutations.common import perform
from crmgraph.schema.user_errors import USER_ERRORS
from crmgraph.validation import Errors


@strawberry.type(description="Every record about a party, as one JSON document.")
class PersonalDataExport:
    customer_id: strawberry.ID = strawberry.field(
        description="The customer exported (a merged customer's ID stands for its survivor)."
    )
    generated_at: datetime.datetime = strawberry.field(
        description="When the document was made (UTC)."
    )
    document: JSON = strawberry.field(
        description="`customers` (the party's record first, then those merged into it), "
        "`roles`, `contacts`, `interactions`, `needs`, `relationships`, `notes`, "
        "`noteMentions`, `tasks`, `stageHistory`, `consents`, `auditTrail`, `events`, "
        "`matchKeys`, `merges`, `erasures`, and `plugins` (one section per plugin)."
    )


@strawberry.type(description="How many rows of one table an erasure anonymised.")
class ErasedCount:
    what: str = strawberry.field(
        description="A core table (`contact`, `audit_entry`, …) or `<plugin>.<what>`."
    )
    count: int = strawberry.field(description="How many.")


@strawberry.type(description="That a customer's personal data was erased: never the values.")
class PersonalDataErasure:
    id: strawberry.ID = strawberry.field(description="Global ID of the erasure.")
    customer_id: strawberry.ID = strawberry.field(description="Global ID of the customer erased.")
    erased_customer_ids: list[strawberry.ID] = strawberry.field(
        description="The customer and every customer merged into it."
    )
    erased_at: datetime.datetime = strawberry.field(description="When it was erased (UTC).")
    reason: str = strawberry.field(description="Why, as given (e.g. the request's reference).")
    counts: list[ErasedCount] = strawberry.field(description="What was erased, by kind of record.")
    erased_by_pk: strawberry.Private[int | None]

    @strawberry.field(description="Who erased it (null: the command line).")
    async def erased_by(self, info: Info) -> core.User | None:
        if self.erased_by_pk is None:
            return None
        row = await info.context.loaders.user.load(self.erased_by_pk)
        return core.User.from_row(row) if row else None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "PersonalDataErasure":
        counts = queries.load_json(row["counts"])
        return cls(
            id=strawberry.ID(encode_id("PersonalDataErasure", row["id"])),
            customer_id=strawberry.ID(encode_id("Customer", row["customer"])),
            erased_customer_ids=[
                strawberry.ID(encode_id("Customer", pk)) for pk in orjson.loads(row["customers"])
            ],
            erased_at=queries.read_timestamp(row["erased_at"]),
            reason=row["reason"],
            counts=[ErasedCount(what=k, count=n) for k, n in sorted(counts.items())],
            erased_by_pk=row["erased_by"],
        )


@strawberry.input(
    description="Erase a customer's personal data, and that of every customer merged into it."
)
class ErasePersonalDataInput:
    customer_id: strawberry.ID = strawberry.field(
        description="Global ID of the customer whose personal data to erase."
    )
    reason: str = strawberry.field(
        description="Why (the request's reference): kept with the erasure, in the audit trail "
        "and the event."
    )


async def personal_data_export(info: Info, customer_id: strawberry.ID) -> PersonalDataExport | None:
    """``personalDataExport``: needs privacy.export; None for a customer the
    caller may not see."""
    ctx = info.context
    document = await ops.personal_data_export(
        ctx.db, ctx.plugin_manager, actor_of(info), str(customer_id), ctx.loaders.customer.load
    )
    if document is None:
        return None
    return PersonalDataExport(
        customer_id=strawberry.ID(document["customerId"]),
        generated_at=datetime.datetime.fromisoformat(document["generatedAt"]),
        document=document,
    )


@strawberry.type
class PrivacyQuery:
    @strawberry.field(
        description="Every record about a person or company in one JSON document (the "
        "right of access). Needs privacy.export; null for a customer the caller may not see."
    )
    async def personal_data_export(
        self,
        info: Info,
        customer_id: Annotated[
            strawberry.ID, strawberry.argument(description="The customer's global ID.")
        ],
    ) -> PersonalDataExport | None:
        return await personal_data_export(info, customer_id)


async def erase(info: Info, input: ErasePersonalDataInput, payload: type) -> Any:
    """``erasePersonalData``, answered with this schema's ``payload`` type."""
    errors = Errors()
    pk = decode(errors, "customerId", input.customer_id, "Customer") or 0
    request = ops.ErasureRequest(pk, input.reason, errors.problems)
    erasure_id, problems = await perform(
        info, info.context.catalog, ops.erase_personal_data, request, lambda _: [("customer", pk)]
    )
    if erasure_id is None:
        return payload(customer=None, erasure=None, user_errors=problems)
    row = await ops.erasure_record(info.context.db, erasure_id)
    return payload(
        customer=info.context.types.customer(await written_row(info, "customer", pk)),
        erasure=PersonalDataErasure.from_row(row),
        user_errors=[],
    )


async def record_consent(info: Info, input: Any, consents: ConsentTypes, payload: type) -> Any:
    """``recordConsent``, answered with this schema's ``payload`` type."""
    errors = Errors()
    customer = decode(errors, "customerId", input.customer_id, "Customer") or 0
    contact = decode(errors, "contactId", input.contact_id, "Contact")
    new = ops.NewConsent(
        customer,
        contact,
        input.channel.value,
        input.purpose.value,
        input.granted,
        input.source.value,
        input.evidence,
        input.at,
        errors.problems,
    )
    pk, problems = await perform(
        info, info.context.catalog, ops.record_consent, new, lambda _: [("consents", customer)]
    )
    if pk is None:
        return payload(consent=None, user_errors=problems)
    rows = await written_row(info, "consents", customer)
    row = next(r for r in rows if r["id"] == pk)
    return payload(consent=consents.from_row(row), user_errors=[])


def build_privacy_mutation(
    customer_interface: type, channel_enum: Any, consents: ConsentTypes
) -> type:
    """``erasePersonalData`` and ``recordConsent``, for this schema's customers."""
    CustomerBase = customer_interface
    Consent = consents.consent

    @strawberry.input(description="A grant or withdrawal of consent; the newest one counts.")
    class RecordConsentInput:
        customer_id: strawberry.ID = strawberry.field(
            description="Global ID of the customer it is about."
        )
        contact_id: strawberry.ID | None = strawberry.field(
            default=None, description="When a contact of the customer states it for themself."
        )
        channel: channel_enum = strawberry.field(description="The channel it covers.")  # type: ignore[valid-type]
        purpose: Purpose = strawberry.field(description="The purpose it covers.")  # type: ignore[valid-type]
        granted: bool = strawberry.field(description="False withdraws it.")
        source: ConsentSource = strawberry.field(description="How it was given or withdrawn.")  # type: ignore[valid-type]
        evidence: str | None = strawberry.field(
            default=None, description="Where it can be checked (a form id, a letter's reference)."
        )
        at: datetime.datetime | None = strawberry.field(
            default=None, description="When it was stated (default: now; not in the future)."
        )

    @strawberry.type(description="The result of `recordConsent`.")
    class RecordConsentPayload:
        consent: Consent | None = strawberry.field(
            description="The statement recorded; null when refused."
        )  # type: ignore[valid-type]
        user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)

    @strawberry.type(description="The result of `erasePersonalData`.")
    class ErasePersonalDataPayload:
        customer: CustomerBase | None = strawberry.field(  # type: ignore[valid-type]
            description="The customer as the erasure left it."
        )
        erasure: PersonalDataErasure | None = strawberry.field(
            description="The erasure recorded; null when refused."
        )
        user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)

    @strawberry.type
    class PrivacyMutation:
        @strawberry.mutation(
            description="Erase a customer's personal data for good, in one transaction: names, "
            "e-mails, phones, profiles, attributes and free text everywhere (plugins' tables "
            "too), keeping the facts analytics count. Records who, when and why, emits "
            "customer.erased, and refuses later writes (ERASED). Needs privacy.erase."
        )
        async def erase_personal_data(
            self, info: Info, input: ErasePersonalDataInput
        ) -> ErasePersonalDataPayload:
            return await erase(info, input, ErasePersonalDataPayload)

        @strawberry.mutation(
            description="Record that a customer (or one of its contacts) grants or withdraws "
            "consent to be contacted on a channel for a purpose. History is kept "
            "(Customer.consentHistory). Needs customer.write."
        )
        async def record_consent(
            self, info: Info, input: RecordConsentInput
        ) -> RecordConsentPayload:
            return await record_consent(info, input, consents, RecordConsentPayload)

    return PrivacyMutation


def build_privacy(customer_interface: type, channel_enum: Any, consents: ConsentTypes) -> tuple:
    """(Query, Mutation) of personal data rights, for this schema's customers."""
    return PrivacyQuery, build_privacy_mutation(customer_interface, channel_enum, consents)
