"""Field checks shared by the GraphQL mutations and the bulk importer
(:mod:`crmgraph.transfer`), so a row of a CSV file is held to exactly the
rules ``createCustomer``, ``addContact``, ``logInteraction`` and ``recordNeed`` apply.

Each check takes the fields present in ``data`` (snake_case names, values as
Python objects), records problems on ``errors`` under the input's field path
and returns the normalised values to store.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable, Mapping
from typing import Any

import pluggy

from crmgraph import validation as v
from crmgraph.extension_points import CustomerWrite, WriteRights
from crmgraph.plugin_calls import call_each
from crmgraph.validation import Errors, Problem


class InteractionDirection(enum.Enum):
    """Whether the customer reached out or the organisation did."""

    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class NeedStatus(enum.Enum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    MET = "MET"
    DROPPED = "DROPPED"


class NeedPriority(enum.Enum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    URGENT = "URGENT"


# Longest future timestamp accepted for an interaction (clock skew between systems).
FUTURE_TOLERANCE = datetime.timedelta(days=1)


def party_fields(errors: Errors, data: dict[str, Any], region: str | None) -> dict[str, Any]:
    """Name, e-mail and phone, as customers and contacts both have them."""
    values: dict[str, Any] = {}
    if "name" in data:
        values["name"] = v.text(errors, "name", data["name"], max_length=200, required=True)
    if "email" in data:
        values["email"] = v.email(errors, "email", data["email"])
    if "phone" in data:
        values["phone"] = v.phone(errors, "phone", data["phone"], region)
    return values


def contact_fields(
    errors: Errors, data: dict[str, Any], region: str | None, today: datetime.date
) -> dict[str, Any]:
    """A contact's fields (guarded profile fields are the caller's to check)."""
    values = party_fields(errors, data, region)
    for name, limit in (("job_title", 200), ("notes", 10_000), ("home_address", 1000)):
        if name in data:
            values[name] = v.text(errors, v.camel(name), data[name], max_length=limit)
    if "birthday" in data:
        if data["birthday"] is not None and data["birthday"] > today:
            errors.add("birthday", "birthday cannot be in the future", "OUT_OF_RANGE")
        values["birthday"] = data["birthday"]
    if "is_primary" in data:
        if data["is_primary"] is None:
            errors.add("isPrimary", "isPrimary cannot be null", "REQUIRED")
        values["is_primary"] = bool(data["is_primary"])
    return values


def interaction_fields(
    errors: Errors, data: dict[str, Any], at: datetime.datetime
) -> dict[str, Any]:
    """An interaction's own fields (channel, direction and the customer are
    checked by the caller: GraphQL enums or the importer's lookups)."""
    occurred = v.utc(data.get("occurred_at")) or at
    if occurred > at + FUTURE_TOLERANCE:
        errors.add("occurredAt", "occurredAt cannot be in the future", "OUT_OF_RANGE")
    values: dict[str, Any] = {
        "occurred_at": occurred,
        "subject": v.text(errors, "subject", data.get("subject"), max_length=300, required=True),
        "notes": v.text(errors, "notes", data.get("notes"), max_length=10_000),
        "outcome": v.text(errors, "outcome", data.get("outcome"), max_length=64),
        "satisfaction": data.get("satisfaction"),
        "amount": v.money(errors, "amount", data.get("amount")),
    }
    v.number_range(errors, "satisfaction", values["satisfaction"], 1, 5)
    v.number_range(errors, "amount", values["amount"], 0, None)
    return values


NEED_TEXT_LIMITS = {"title": 200, "description": 5000, "category": 64, "consumption_type": 64,
                    "unit": 32}  # fmt: skip


def need_fields(errors: Errors, data: dict[str, Any]) -> dict[str, Any]:
    """A need's fields present in ``data`` (``recordNeed``, ``updateNeed``, the importer)."""
    values: dict[str, Any] = {}
    for name, limit in NEED_TEXT_LIMITS.items():
        if name in data:
            values[name] = v.text(
                errors, v.camel(name), data[name], max_length=limit, required=name == "title"
            )
    if "volume" in data:
        v.number_range(errors, "volume", data["volume"], 0, None)
        values["volume"] = data["volume"]
    for name in ("priority", "status", "due_date"):
        if name in data and data[name] is not None:
            values[name] = data[name]
    return values


async def plugin_problems(pm: pluggy.PluginManager, write: CustomerWrite) -> list[Problem]:
    """Every plugin's ``crmgraph_validate_customer``, all problems collected.
    A plugin that raises raises :class:`~crmgraph.plugin_calls.PluginFailure`."""
    problems: list[Problem] = []
    for _, result in await call_each(pm, "crmgraph_validate_customer", write=write):
        for item in result or ():
            if isinstance(item, tuple):
                problems.append(Problem(item[0], item[1], "INVALID"))
            else:
                problems.append(Problem(v.camel(write.kind), str(item), "INVALID"))
    return problems


# Shared with the importer (crmgraph.transfer), so a row is audited and refused
# in the words the GraphQL mutations use.
def camel_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Column names as the API spells them, for audit entries and events."""
    return {v.camel(k): val for k, val in values.items()}


def attribute_fields(kind: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """Typed attributes under the name of their input path, e.g. ``client.segment``."""
    return {f"{v.camel(kind)}.{v.camel(name)}": val for name, val in attributes.items()}


def forbidden_problem(field: str | None, doing: str, permission: str) -> Problem:
    return Problem(
        field, f"your role may not {doing}: it needs the {permission} permission", "FORBIDDEN"
    )


def guarded_problems(
    access: WriteRights,
    type_name: str,
    path: str,
    sent: Mapping[str, Any] | Iterable[str],
    creating: bool = True,
) -> list[Problem]:
    """:func:`guarded_input_problems` for a caller's ``access``; importers
    give the names of a row's non-empty cells, each a write of its field."""
    values = sent if isinstance(sent, Mapping) else dict.fromkeys(sent, True)
    return [
        forbidden_problem(f"{path}{field_name}", f"write {field_name}", permission)
        for _, field_name, permission in access.denied_writes(type_name, values, creating=creating)
    ]
