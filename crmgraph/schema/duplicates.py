"""Duplicate customers in GraphQL: ``duplicateCandidates(customerId)`` (who a
customer may be) and ``duplicates`` (likely pairs across the database), both
read through the blocking keys of :mod:`crmgraph.dedupe.matching`.

Row scope as for ``customers``: a candidate is listed only if the caller may
see it, and a pair only if they may see both customers (the scope is part of
the pairs' SQL, so pages are full). Nothing here merges: ``mergeCustomers``
does, when a person decides.

No ``from __future__ import annotations``: the candidate and pair types are
built per schema around that schema's ``Customer`` interface (see
:mod:`crmgraph.schema.build`).
"""

import enum
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from crmgraph.db import queries
from crmgraph.dedupe import dismissals, matching
from crmgraph.schema.ids import MAX_PK, InvalidId, decode_id
from crmgraph.schema.page_types import page_types
from crmgraph.schema.pagination import (
    After,
    First,
    check_first,
    decode_cursor,
    encode_cursor,
    page_info,
)

LoadCustomer = Callable[[Info, int], Awaitable[Any]]

PAIR_CURSOR = "duplicates"


@strawberry.enum(description="A piece of evidence that two customers are one party.")
class DuplicateReasonCode(enum.Enum):
    TAX_ID_EXACT = strawberry.enum_value(
        "TAX_ID_EXACT", description="Same tax id (once normalised): strong evidence."
    )
    EMAIL_EXACT = strawberry.enum_value(
        "EMAIL_EXACT", description="Same e-mail address (once normalised)."
    )
    PHONE_EXACT = strawberry.enum_value("PHONE_EXACT", description="Same phone number (E.164).")
    NAME_SIMILAR = strawberry.enum_value(
        "NAME_SIMILAR",
        description="Similar names (transliterated; legal forms and word order aside).",
    )
    TAX_ID_DIFFERENT = strawberry.enum_value(
        "TAX_ID_DIFFERENT", description="Both have a tax id, and they differ: counter-evidence."
    )
    EMAIL_DIFFERENT = strawberry.enum_value(
        "EMAIL_DIFFERENT",
        description="Both have an e-mail address, and they differ: counter-evidence.",
    )
    PHONE_DIFFERENT = strawberry.enum_value(
        "PHONE_DIFFERENT",
        description="Both have a phone number, and they differ: counter-evidence.",
    )
    NAME_DIFFERENT = strawberry.enum_value(
        "NAME_DIFFERENT", description="The names are not similar: counter-evidence."
    )


@strawberry.type(description="Why a pair scored as it did; counter-evidence is listed too.")
class DuplicateReason:
    code: DuplicateReasonCode = strawberry.field(description="What the evidence is.")
    detail: str | None = strawberry.field(
        description="For NAME_SIMILAR and NAME_DIFFERENT: the names' similarity, 0 to 1."
    )

    @classmethod
    def of(cls, reasons: Sequence[matching.Reason]) -> list["DuplicateReason"]:
        return [cls(code=DuplicateReasonCode(r.code), detail=r.detail) for r in reasons]


@dataclass(frozen=True)
class DuplicateTypes:
    """The types built around one schema's Customer interface, and the root
    fields to merge into Query."""

    candidate: type
    query: type

    def candidates(self, found: Sequence[matching.Candidate]) -> list[Any]:
        return candidate_objects(self.candidate, found)


def candidate_objects(cls: type, found: Sequence[matching.Candidate]) -> list[Any]:
    return [
        cls(customer_pk=c.customer_id, score=c.score, reasons=DuplicateReason.of(c.reasons))
        for c in found
    ]


def check_min_score(min_score: float | None, lowest: float = 0) -> float:
    if min_score is None:
        return matching.LIKELY
    if not lowest <= min_score <= 1:
        raise GraphQLError(
            f"`minScore` must be between {lowest} and 1, got {min_score}",
            extensions={"code": "BAD_USER_INPUT"},
        )
    return min_score


def encode_pair_cursor(pair: matching.Pair) -> str:
    score, left, right = pair.position
    return encode_cursor(PAIR_CURSOR, [score, left], right)


def decode_pair_cursor(after: str) -> tuple[float, int, int]:
    """A pair's cursor holds (score, left id, right id): its place in the list's order."""
    value, right = decode_cursor(after, PAIR_CURSOR, timestamp=False)
    position = value if isinstance(value, list) and len(value) == 2 else [None, None]
    score, left = position
    # ids past the integer column's range would fail in the driver, not here
    if not (
        type(score) in (int, float)
        and 0 <= score <= 1
        and all(type(pk) is int and 0 <= pk <= MAX_PK for pk in (left, right))
    ):
        raise GraphQLError(
            f"`after` is not a cursor of this list ({PAIR_CURSOR})",
            extensions={"code": "INVALID_CURSOR"},
        )
    return float(score), left, right


def _visible(load_customer: LoadCustomer) -> LoadCustomer:
    async def visible_customer(info: Info, pk: int) -> Any:
        customer = await load_customer(info, pk)
        if customer is None:  # it changed hands since it was matched, in this request
            raise GraphQLError("customer not found", extensions={"code": "NOT_FOUND"})
        return customer

    return visible_customer


# one DuplicateCandidate per schema (per Customer interface): createCustomer's
# payload and the dedupe plugin's queries return the same type
_CANDIDATES: "weakref.WeakKeyDictionary[type, type]" = weakref.WeakKeyDictionary()


def candidate_type(customer_interface: type, load_customer: LoadCustomer) -> type:
    """``DuplicateCandidate`` around this schema's ``Customer`` interface."""
    if customer_interface in _CANDIDATES:
        return _CANDIDATES[customer_interface]
    CustomerBase = customer_interface
    visible_customer = _visible(load_customer)

    @strawberry.type(description="An existing customer that may be the same party.")
    class DuplicateCandidate:
        customer_pk: strawberry.Private[int]
        score: float = strawberry.field(
            description="How likely it is the same party, 0 to 1 (0.8 and more: an exact "
            "e-mail, phone or tax id)."
        )
        reasons: list[DuplicateReason] = strawberry.field(
            description="The evidence for (and against) it."
        )

        @strawberry.field(description="The existing customer.")
        async def customer(self, info: Info) -> CustomerBase:  # type: ignore[valid-type]
            return await visible_customer(info, self.customer_pk)

    _CANDIDATES[customer_interface] = DuplicateCandidate
    return DuplicateCandidate


@dataclass(frozen=True)
class PairPages:
    """``DuplicatePairConnection`` and how a page of pairs becomes one."""

    connection: type
    page: Callable[[matching.PairPage, str | None], Any]


def build_pair_connection(customer_interface: type, load_customer: LoadCustomer) -> PairPages:
    """``DuplicatePairConnection`` around this schema's ``Customer`` interface."""
    CustomerBase = customer_interface
    visible_customer = _visible(load_customer)

    @strawberry.type(description="Two customers that may be one party (left's ID is lower).")
    class DuplicatePair:
        left_pk: strawberry.Private[int]
        right_pk: strawberry.Private[int]
        score: float = strawberry.field(description="How likely they are one party, 0 to 1.")
        reasons: list[DuplicateReason] = strawberry.field(
            description="The evidence for (and against) it."
        )

        @strawberry.field(description="The customer with the lower ID.")
        async def left(self, info: Info) -> CustomerBase:  # type: ignore[valid-type]
            return await visible_customer(info, self.left_pk)

        @strawberry.field(description="The customer with the higher ID.")
        async def right(self, info: Info) -> CustomerBase:  # type: ignore[valid-type]
            return await visible_customer(info, self.right_pk)

    pages = page_types("DuplicatePair", DuplicatePair)

    def page_of(page: matching.PairPage, after: str | None) -> Any:
        edges = [
            pages.edge(
                cursor=encode_pair_cursor(pair),
                node=DuplicatePair(
                    left_pk=pair.left_id,
                    right_pk=pair.right_id,
                    score=pair.score,
                    reasons=DuplicateReason.of(pair.reasons),
                ),
            )
            for pair in page.pairs
        ]
        return pages.connection(edges=edges, page_info=page_info(edges, page.has_more, after))

    return PairPages(pages.connection, page_of)


async def candidates_of(
    info: Info,
    candidate_cls: type,
    load_customer: LoadCustomer,
    customer_id: strawberry.ID,
    first: int | None,
    min_score: float | None,
) -> list[Any]:
    """``duplicateCandidates``: who the customer may be, less those dismissed with it."""
    settings = info.context.settings
    limit = check_first(first, settings.default_page_size, settings.max_page_size)
    threshold = check_min_score(min_score)
    try:
        _, pk = decode_id(customer_id, "Customer")
    except InvalidId as exc:
        raise GraphQLError(f"customerId: {exc}", extensions={"code": "INVALID_ID"}) from None
    customer = await load_customer(info, pk)
    if customer is None:
        return []
    row = await info.context.loaders.customer.load(customer.pk)
    dismissed = await dismissals.dismissed_with(info.context.db, [customer.pk])
    found = await matching.find_candidates(
        info.context.db,
        matching.Probe.from_row(row),
        exclude_ids=sorted(dismissed),
        limit=limit,
        min_score=threshold,
        region=settings.default_phone_region,
        visible=info.context.access.sees,
    )
    return candidate_objects(candidate_cls, found)


async def pairs_page(
    info: Info, first: int | None, after: str | None, min_score: float | None, kind: Any
) -> matching.PairPage:
    """``duplicates``: a page of likely pairs whose two customers the caller may see."""
    settings = info.context.settings
    limit = check_first(first, settings.default_page_size, settings.max_page_size)
    threshold = check_min_score(min_score, lowest=matching.LIKELY)
    loader = info.context.loaders.customer

    async def rows_for(db: Any, ids: list[int]) -> list[dict[str, Any]]:
        rows = await queries.customers_by_ids(db, ids)
        for row in rows:  # the pairs' customers are then resolved without another query
            loader.prime(row["id"], row)
        return rows

    return await matching.duplicate_pairs(
        info.context.db,
        limit=limit,
        after=decode_pair_cursor(after) if after else None,
        min_score=threshold,
        kinds=(kind.value,) if kind is not None else (),
        scope=info.context.access.scope,
        rows_for=rows_for,
    )


def build_duplicates_query(
    customer_interface: type, kind_enum: type[enum.Enum], load_customer: LoadCustomer
) -> type:
    """``duplicateCandidates`` and ``duplicates``, as a type to merge into ``Query``."""
    DuplicateCandidate = candidate_type(customer_interface, load_customer)
    pairs = build_pair_connection(customer_interface, load_customer)

    # methods, not `x: T = strawberry.field(resolver=...)`: root fields declared
    # as attributes are listed before every method (the core's too)
    @strawberry.type
    class DuplicatesQuery:
        @strawberry.field(
            description="Existing customers that may be the same party as this one, most "
            "likely first: those sharing an e-mail, phone, tax id or name key with it, scored "
            "with their reasons, less those dismissed with it (`dismissDuplicate`). Empty for "
            "a customer the caller may not see."
        )
        async def duplicate_candidates(
            self,
            info: Info,
            customer_id: Annotated[
                strawberry.ID, strawberry.argument(description="The customer's global ID.")
            ],
            first: First = 10,
            min_score: Annotated[
                float | None,
                strawberry.argument(description="Lowest score listed (default 0.5)."),
            ] = None,
        ) -> list[DuplicateCandidate]:  # type: ignore[valid-type]
            return await candidates_of(
                info, DuplicateCandidate, load_customer, customer_id, first, min_score
            )

        @strawberry.field(
            description="Pairs of customers that may be one party, most likely first (then "
            "by their IDs, highest first), each scored with its reasons. The pairs are kept up "
            "to date by every customer write, so a page is an indexed read; only customers "
            "that share a blocking key are compared, and only pairs whose two customers the "
            "caller may see are listed; dismissed pairs (`dismissDuplicate`) are not. Nothing "
            "is merged automatically."
        )
        async def duplicates(
            self,
            info: Info,
            first: First = 20,
            after: After = None,
            min_score: Annotated[
                float | None,
                strawberry.argument(
                    description="Lowest score listed, 0.5 (the default) or more: weaker pairs "
                    "are not kept."
                ),
            ] = None,
            kind: Annotated[
                kind_enum | None,  # type: ignore[valid-type]
                strawberry.argument(
                    description="Only pairs with at least one customer of this kind."
                ),
            ] = None,
        ) -> pairs.connection:  # type: ignore[name-defined]
            page = await pairs_page(info, first, after, min_score, kind)
            return pairs.page(page, after)

    return DuplicatesQuery


def build_duplicates(
    customer_interface: type, kind_enum: type[enum.Enum], load_customer: LoadCustomer
) -> DuplicateTypes:
    return DuplicateTypes(
        candidate=candidate_type(customer_interface, load_customer),
        query=build_duplicates_query(customer_interface, kind_enum, load_customer),
    )
