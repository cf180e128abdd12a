"""GraphQL types that do not depend on which plugins are loaded."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from crmgraph import input_checks, paging
from crmgraph.customer_types import Phase as PhaseValue
from crmgraph.db.queries import load_json
from crmgraph.schema.ids import decode_id, encode_id

if TYPE_CHECKING:
    from crmgraph.schema.teamwork import Task

Phase = strawberry.enum(PhaseValue, description="Common lifecycle phase of every customer type.")


# the values are the input checks' (the importer reads them too); GraphQL names them here
InteractionDirection = strawberry.enum(
    input_checks.InteractionDirection,
    description="Whether the customer reached out or the organisation did.",
)
NeedStatus = strawberry.enum(input_checks.NeedStatus)
NeedPriority = strawberry.enum(input_checks.NeedPriority)


SortDirection = strawberry.enum(paging.SortDirection)


@strawberry.enum(description="Which customers a list includes with respect to soft deletion.")
class DeletedState(Enum):
    ACTIVE = "ACTIVE"
    DELETED = "DELETED"
    ALL = "ALL"


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


@strawberry.interface(description="An object with a global ID (Relay).")
class Node:
    id: strawberry.ID


def _from_row(cls: type, values: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(values)
    return obj


@strawberry.type(description="A user of the CRM: owner of customers, author of changes.")
class User(Node):
    name: str
    email: str
    role: str
    created_at: datetime.datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        return _from_row(
            cls,
            {
                "id": encode_id("User", row["id"]),
                "name": row["name"],
                "email": row["email"],
                "role": row["role"],
                "created_at": row["created_at"],
            },
        )


@strawberry.type(description="A person at a customer.")
class Contact(Node):
    customer_id: strawberry.ID
    name: str
    email: str | None
    phone: str | None = strawberry.field(description="E.164, e.g. +34912345678.")
    job_title: str | None = strawberry.field(description="The contact's function at the customer.")
    is_primary: bool
    notes: str | None
    birthday: datetime.date | None = strawberry.field(
        description="Personal profile: needs the contact.read_profile permission."
    )
    home_address: str | None = strawberry.field(
        description="Personal profile: needs the contact.read_profile permission."
    )
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Contact:
        return _from_row(
            cls,
            {
                "id": encode_id("Contact", row["id"]),
                "customer_id": encode_id("Customer", row["customer"]),
                "name": row["name"],
                "email": row["email"],
                "phone": row["phone"],
                "job_title": row["job_title"],
                "is_primary": bool(row["is_primary"]),
                "notes": row["notes"],
                "birthday": row["birthday"],
                "home_address": row["home_address"],
                "created_at": row["created_at"],
                "updated_at": row["updated_at"],
            },
        )


@strawberry.type(description="The caller: who the API key belongs to and what it may do.")
class Viewer:
    user_id: strawberry.ID | None = strawberry.field(description="Null for anonymous access.")
    name: str
    role: str
    permissions: list[str]
    team_ids: list[strawberry.ID]


@strawberry.type(description="A group of users sharing customers.")
class Team(Node):
    name: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Team:
        return _from_row(cls, {"id": encode_id("Team", row["id"]), "name": row["name"]})


@strawberry.type(description="What the customer needs: caught in time, dimensioned, characterised.")
class Need(Node):
    customer_id: strawberry.ID
    title: str
    description: str | None
    category: str | None
    consumption_type: str | None
    volume: float | None
    unit: str | None
    priority: NeedPriority
    status: NeedStatus
    due_date: datetime.date | None
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @strawberry.field(description="Tasks for this need, oldest first.")
    async def tasks(
        self, info: Info
    ) -> list[Annotated[Task, strawberry.lazy("crmgraph.schema.teamwork")]]:
        # imported here: crmgraph.schema.teamwork builds on these core types
        from crmgraph.schema.teamwork import need_tasks

        return await need_tasks(info, decode_id(self.id, "Need")[1])

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Need:
        return _from_row(
            cls,
            {
                "id": encode_id("Need", row["id"]),
                "customer_id": encode_id("Customer", row["customer"]),
                "title": row["title"],
                "description": row["description"],
                "category": row["category"],
                "consumption_type": row["consumption_type"],
                "volume": row["volume"],
                "unit": row["unit"],
                "priority": NeedPriority(row["priority"]),
                "status": NeedStatus(row["status"]),
                "due_date": row["due_date"],
                "created_at": row["created_at"],
                "updated_at": row["updated_at"],
            },
        )


@strawberry.type(description="One move of a customer through its lifecycle.")
class StageChange(Node):
    customer_id: strawberry.ID
    kind: str
    from_stage: str | None
    to_stage: str
    at: datetime.datetime
    by_id: strawberry.ID | None
    reason: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StageChange:
        return _from_row(
            cls,
            {
                "id": encode_id("StageChange", row["id"]),
                "customer_id": encode_id("Customer", row["customer"]),
                "kind": row["kind"],
                "from_stage": row["from_stage"],
                "to_stage": row["to_stage"],
                "at": row["at"],
                "by_id": encode_id("User", row["by"]) if row["by"] is not None else None,
                "reason": row["reason"],
            },
        )


def relationship_values(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": encode_id("Relationship", row["id"]),
        "pk": row["id"],
        "kind": row["kind"],
        "from_pk": row["from_customer"],
        "to_pk": row["to_customer"],
        "attributes_json": load_json(row["attributes"]),
        "created_at": row["created_at"],
    }


@strawberry.type(description="One field of a record as a write changed it.")
class FieldChange:
    field: str = strawberry.field(description="API name, e.g. `email` or `client.segment`.")
    old: str | None = strawberry.field(description="Value before, as text (null: unset).")
    new: str | None = strawberry.field(description="Value after, as text (null: unset).")
    redacted: bool = strawberry.field(
        default=False,
        description="The values are hidden: reading them needs a permission you do not hold.",
    )


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@strawberry.type(description="Who changed what and when. Read-only: the API cannot alter it.")
class AuditEntry:
    id: strawberry.ID
    at: datetime.datetime
    action: str = strawberry.field(description="e.g. customer.updated, need.recorded.")
    entity_type: str
    entity_id: strawberry.ID
    by_id: strawberry.ID | None = strawberry.field(description="The user, when known.")
    changes: list[FieldChange]

    @classmethod
    def from_row(
        cls, row: dict[str, Any], readable: Callable[[str], bool] = lambda _: True
    ) -> AuditEntry:
        """``readable(field)`` says whether the caller may see a field's values."""
        changes = load_json(row["changes"])
        return _from_row(
            cls,
            {
                "id": encode_id("AuditEntry", row["id"]),
                "at": row["at"],
                "action": row["action"],
                "entity_type": row["entity_type"],
                "entity_id": encode_id(row["entity_type"], row["entity_id"]),
                "by_id": encode_id("User", row["by"]) if row["by"] is not None else None,
                "changes": [
                    FieldChange(field=name, old=_as_text(old), new=_as_text(new))
                    if readable(name)
                    else FieldChange(field=name, old=None, new=None, redacted=True)
                    for name, (old, new) in sorted(changes.items())
                ],
            },
        )


@strawberry.type
class AuditEntryEdge:
    cursor: str
    node: AuditEntry
