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
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_PHONE = "INVALID_PHONE"
    INVALID_CHOICE = "INVALID_CHOICE"
    INVALID_ID = "INVALID_ID"
    NOT_FOUND = "NOT_FOUND"
    AMBIGUOUS = "AMBIGUOUS"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    DELETED = "DELETED"
    NOT_DELETED = "NOT_DELETED"
    DUPLICATE = "DUPLICATE"
    TRANSITION_REFUSED = "TRANSITION_REFUSED"
    FORBIDDEN = "FORBIDDEN"
    MERGED = "MERGED"
    MERGE_VETOED = "MERGE_VETOED"
    MERGE_NOT_UNDOABLE = "MERGE_NOT_UNDOABLE"
    ERASED = "ERASED"
    SAME_CUSTOMER = "SAME_CUSTOMER"
    ALREADY_DISMISSED = "ALREADY_DISMISSED"
    NOT_DISMISSED = "NOT_DISMISSED"
    NO_CONSENT = "NO_CONSENT"
    PLUGIN_ERROR = "PLUGIN_ERROR"


@strawberry.type(
    description="An expected failure of a mutation: bad input, missing record, conflict."
)
class UserError:
    field: str | None = strawberry.field(
        description="Path of the input field at fault, e.g. `email` or `client.segment`."
    )
    message: str
    code: UserErrorCode


def user_errors(problems: UserInputError | Iterable[Problem]) -> list[UserError]:
    """The ``userErrors`` a payload returns for an input error's problems
    (or any list of :class:`~crmgraph.validation.Problem`)."""
    found = problems.problems if isinstance(problems, UserInputError) else problems
    return [UserError(field=p.field, message=p.message, code=UserErrorCode(p.code)) for p in found]
