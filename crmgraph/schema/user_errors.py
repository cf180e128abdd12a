"""What a mutation's payload reports of an input it refused: ``UserError``
and its ``UserErrorCode``, and the list made from an input error's problems.

Apart from :mod:`crmgraph.schema.core_types` (which re-exports the two
types) so that the mutation runner and the mutations' shared helpers import
no GraphQL type that a feature contributes to."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

import strawberry

from crmgraph.validation import Problem, UserInputError


@strawberry.enum(description="Machine-readable reason of a user error.")
class UserErrorCode(Enum):
    INVALID = strawberry.enum_value(
        "INVALID", description="The value is not acceptable; the message says why."
    )
    REQUIRED = strawberry.enum_value(
        "REQUIRED", description="A required field is missing or empty."
    )
    TOO_LONG = strawberry.enum_value(
        "TOO_LONG", description="The text is longer than the field allows."
    )
    OUT_OF_RANGE = strawberry.enum_value(
        "OUT_OF_RANGE", description="The number or date is outside the field's bounds."
    )
    INVALID_EMAIL = strawberry.enum_value("INVALID_EMAIL", description="Not an e-mail address.")
    INVALID_PHONE = strawberry.enum_value(
        "INVALID_PHONE",
        description="Not a phone number (read in CRMGRAPH_DEFAULT_PHONE_REGION when national).",
    )
    INVALID_CHOICE = strawberry.enum_value(
        "INVALID_CHOICE",
        description="Not one of the values the field accepts (e.g. an undeclared relationship "
        "kind).",
    )
    INVALID_ID = strawberry.enum_value(
        "INVALID_ID", description="Not a global ID, or the ID of another type."
    )
    NOT_FOUND = strawberry.enum_value(
        "NOT_FOUND", description="No such record, or one you may not see."
    )
    AMBIGUOUS = strawberry.enum_value(
        "AMBIGUOUS",
        description="A reference (e.g. an import's owner e-mail) matches several records: give "
        "the ID.",
    )
    VERSION_CONFLICT = strawberry.enum_value(
        "VERSION_CONFLICT",
        description="The record changed since you read it: `expectedVersion` is stale; read it "
        "again.",
    )
    DELETED = strawberry.enum_value(
        "DELETED", description="The customer is soft-deleted: restore it first."
    )
    NOT_DELETED = strawberry.enum_value(
        "NOT_DELETED", description="The customer is not deleted, so there is nothing to restore."
    )
    DUPLICATE = strawberry.enum_value(
        "DUPLICATE",
        description="It repeats a known record (see the payload's duplicate candidates when it has"
        " them).",
    )
    TRANSITION_REFUSED = strawberry.enum_value(
        "TRANSITION_REFUSED",
        description="The lifecycle move is not declared from the current stage, or a guard refused"
        " it.",
    )
    FORBIDDEN = strawberry.enum_value(
        "FORBIDDEN", description="Your role lacks the permission this write needs."
    )
    MERGED = strawberry.enum_value(
        "MERGED", description="The customer was merged into another: write to the survivor."
    )
    MERGE_VETOED = strawberry.enum_value("MERGE_VETOED", description="A plugin refused the merge.")
    MERGE_NOT_UNDOABLE = strawberry.enum_value(
        "MERGE_NOT_UNDOABLE",
        description="The merge cannot be undone: already undone, or a party changed since "
        "(`CustomerMerge.undoBlockers` says why).",
    )
    ERASED = strawberry.enum_value(
        "ERASED",
        description="The customer's personal data was erased: nothing more can be written to it.",
    )
    SAME_CUSTOMER = strawberry.enum_value(
        "SAME_CUSTOMER", description="Both IDs name the same customer."
    )
    ALREADY_DISMISSED = strawberry.enum_value(
        "ALREADY_DISMISSED", description="The pair was already dismissed as not duplicates."
    )
    NOT_DISMISSED = strawberry.enum_value(
        "NOT_DISMISSED", description="The pair was not dismissed, so there is nothing to restore."
    )
    NO_CONSENT = strawberry.enum_value(
        "NO_CONSENT", description="The customer has not consented to this channel and purpose."
    )
    PLUGIN_ERROR = strawberry.enum_value(
        "PLUGIN_ERROR", description="A plugin failed while handling the write; nothing was written."
    )
    ROLE_HELD = strawberry.enum_value(
        "ROLE_HELD", description="The customer already holds a role of this kind (`addRole`)."
    )
    NOT_COMBINABLE = strawberry.enum_value(
        "NOT_COMBINABLE",
        description="A customer type's plugin forbids this role: its kind is a primary kind "
        "only, or it may not be combined with a kind the customer holds.",
    )


@strawberry.type(
    description="An expected failure of a mutation: bad input, missing record, conflict."
)
class UserError:
    field: str | None = strawberry.field(
        description="Path of the input field at fault, e.g. `email` or `client.segment`."
    )
    message: str = strawberry.field(description="What went wrong, for a person to read (English).")
    code: UserErrorCode = strawberry.field(description="What went wrong, for a program to act on.")


USER_ERRORS = "What was refused and why; empty when the write was done."


def user_errors(problems: UserInputError | Iterable[Problem]) -> list[UserError]:
    """The ``userErrors`` a payload returns for an input error's problems
    (or any list of :class:`~crmgraph.validation.Problem`)."""
    found = problems.problems if isinstance(problems, UserInputError) else problems
    return [UserError(field=p.field, message=p.message, code=UserErrorCode(p.code)) for p in found]
