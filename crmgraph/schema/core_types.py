"""GraphQL types that do not depend on which plugins are loaded."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from crmgraph import core_fields, input_checks, paging
from crmgraph.customer_types import Phase as PhaseValue
from crmgraph.db.queries import load_json
from crmgraph.schema import described, pagination
from crmgraph.schema.ids import encode_id
from crmgraph.schema.user_errors import UserError as UserError
from crmgraph.schema.user_errors import UserErrorCode as UserErrorCode

Phase = described.enum_type(
    PhaseValue,
    "Common lifecycle phase of every customer type: each type's stages map onto one, so "
    "analytics compare types.",
    {
        "ENGAGEMENT": "Getting to know the party: a lead, an applicant, a first contact.",
        "ACQUISITION": "Winning it: qualified, negotiating, onboarding.",
        "RETENTION": "An established relationship to keep: an active client or supplier.",
        "EXPANSION": "Growing the relationship: upsell, more volume, a loyal customer.",
        "ENDED": "The relationship is over (lost, churned, terminated); it may restart.",
    },
)


# the values are the input checks' (the importer reads them too); GraphQL names them here
InteractionDirection = described.enum_type(
    input_checks.InteractionDirection,
    "Whether the customer reached out or the organisation did.",
    {
        "INBOUND": "The customer reached out to us.",
        "OUTBOUND": "We reached out to the customer.",
    },
)
NeedStatus = described.enum_type(
    input_checks.NeedStatus,
    "Where a need stands.",
    {
        "OPEN": "Known, nothing done yet.",
        "IN_PROGRESS": "Being worked on.",
        "MET": "Fulfilled.",
        "DROPPED": "Given up: the customer no longer needs it, or we cannot meet it.",
    },
)
NeedPriority = described.enum_type(
    input_checks.NeedPriority,
    "How urgent a need is.",
    {
        "LOW": "Whenever convenient.",
        "MEDIUM": "The default: in the normal course of business.",
        "HIGH": "Before other work.",
        "URGENT": "Now: the relationship may suffer otherwise.",
    },
)


SortDirection = described.enum_type(
    paging.SortDirection,
    "The order of a sorted list.",
    {"ASC": "Smallest (oldest, A) first.", "DESC": "Largest (newest, Z) first."},
)


@strawberry.enum(description="Which customers a list includes with respect to soft deletion.")
class DeletedState(Enum):
    ACTIVE = strawberry.enum_value("ACTIVE", description="Only customers not deleted.")
    DELETED = strawberry.enum_value("DELETED", description="Only soft-deleted customers.")
    ALL = strawberry.enum_value("ALL", description="Both.")


@strawberry.interface(description="An object with a global ID (Relay).")
class Node:
    id: strawberry.ID = strawberry.field(
        description="Global ID, unique across types (opaque: pass it back as is)."
    )


CORE_ENUMS: dict[str, Any] = {
    "Phase": Phase,
    "InteractionDirection": InteractionDirection,
    "NeedStatus": NeedStatus,
    "NeedPriority": NeedPriority,
}


# The column-backed fields and ``from_row`` come from crmgraph.core_fields.
@strawberry.type(description="A user of the CRM: owner of customers, author of changes.")
@described.columns(core_fields.USER, CORE_ENUMS)
class User(Node):
    pass


async def user_of(info: Info, pk: int | None) -> User | None:
    """The user ``pk`` names (a note's author, a task's assignee), or None."""
    if pk is None:
        return None
    row = await info.context.loaders.user.load(pk)
    return User.from_row(row) if row else None


@strawberry.type(description="A person at a customer.")
@described.columns(core_fields.CONTACT, CORE_ENUMS)
class Contact(Node):
    pass


@strawberry.type(description="The caller: who the API key belongs to and what it may do.")
class Viewer:
    user_id: strawberry.ID | None = strawberry.field(description="Null for anonymous access.")
    name: str = strawberry.field(
        description="The user's display name; `anonymous (development)` without a key."
    )
    role: str = strawberry.field(description="admin, manager, agent or viewer.")
    permissions: list[str] = strawberry.field(
        description="Every permission the role holds, e.g. `audit.read` (see `permissions`)."
    )
    team_ids: list[strawberry.ID] = strawberry.field(
        description="Global IDs of the teams the user belongs to (an agent sees their customers)."
    )


@strawberry.type(description="A group of users sharing customers.")
@described.columns(core_fields.TEAM, CORE_ENUMS)
class Team(Node):
    pass


@strawberry.type(description="One move of a customer through its lifecycle.")
@described.columns(core_fields.STAGE_CHANGE, CORE_ENUMS)
class StageChange(Node):
    pass


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


def as_text(value: Any) -> str | None:
    """An audited value as the API shows it: text (booleans as `true`/`false`)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@strawberry.type(description="Who changed what and when. Read-only: the API cannot alter it.")
class AuditEntry:
    id: strawberry.ID = strawberry.field(description="Global ID of the entry.")
    at: datetime.datetime = strawberry.field(description="When the change was made (UTC).")
    action: str = strawberry.field(description="e.g. customer.updated, need.recorded.")
    entity_type: str = strawberry.field(
        description="The GraphQL type of the record changed, e.g. `Customer` or `Need`."
    )
    entity_id: strawberry.ID = strawberry.field(description="Global ID of the record changed.")
    by_id: strawberry.ID | None = strawberry.field(description="The user, when known.")
    changes: list[FieldChange] = strawberry.field(
        description="The fields the write changed, by name."
    )

    @classmethod
    def from_row(
        cls, row: dict[str, Any], readable: Callable[[str], bool] = lambda _: True
    ) -> AuditEntry:
        """``readable(field)`` says whether the caller may see a field's values."""
        changes = load_json(row["changes"])
        return described.new_object(
            cls,
            {
                "id": encode_id("AuditEntry", row["id"]),
                "at": row["at"],
                "action": row["action"],
                "entity_type": row["entity_type"],
                "entity_id": encode_id(row["entity_type"], row["entity_id"]),
                "by_id": encode_id("User", row["by"]) if row["by"] is not None else None,
                "changes": [
                    FieldChange(field=name, old=as_text(old), new=as_text(new))
                    if readable(name)
                    else FieldChange(field=name, old=None, new=None, redacted=True)
                    for name, (old, new) in sorted(changes.items())
                ],
            },
        )


@strawberry.type(description="One audit entry of a page and its cursor.")
class AuditEntryEdge:
    cursor: str = strawberry.field(description=pagination.CURSOR)
    node: AuditEntry = strawberry.field(description=pagination.NODE)
