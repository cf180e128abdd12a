"""Exporting customers, contacts and interactions as CSV or JSON Lines.

Rows are read in id order :data:`BATCH` at a time (keyset pagination: each
statement starts after the last id written), so memory stays flat whatever
the table's size. Deleted customers, and what hangs off them, are left out.

Customers carry their typed attributes: one CSV column per attribute name
of the exported kinds (empty where a kind has no such attribute), or a
nested ``attributes`` object in JSON Lines. ``owner`` is the owner's e-mail
and ``team`` the team's name, as the importer reads them, so an export
imports back cleanly. Contacts and interactions name their customer by
global ID (``customer``) and by the keys that survive a move to another
database (``customer.email``, ``customer.tax_id``); interactions name their
contact the same way (``contact``, ``contact.email``). These are the columns
the importer finds them by (:mod:`.refs`), so an export imports back.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TextIO

import orjson

from crmgraph.db.engine import Database
from crmgraph.db.queries import load_json, read_timestamp
from crmgraph.registry import Catalog
from crmgraph.schema.ids import encode_id

BATCH = 1000

CUSTOMER_SQL = (
    "SELECT c.id, c.kind, c.name, c.email, c.phone, c.attributes, c.created_at, c.updated_at, "
    "r.stage, r.phase, u.email AS owner_email, t.name AS team_name FROM customer c "
    "JOIN customer_role r ON r.customer = c.id AND r.kind = c.kind "
    "LEFT JOIN crm_user u ON u.id = c.owner LEFT JOIN team t ON t.id = c.team "
    "WHERE c.deleted_at IS NULL AND c.id > {} AND {} ORDER BY c.id LIMIT {}"
)
CHILD_SQL = (
    "SELECT x.*, c.email AS customer_email, c.attributes AS customer_attributes{columns} "
    "FROM {table} x JOIN customer c ON c.id = x.customer{joins} "
    "WHERE c.deleted_at IS NULL AND x.id > {{}} AND {{}} ORDER BY x.id LIMIT {{}}"
)
CONTACT_COLUMNS = (
    "name", "email", "phone", "job_title", "is_primary", "notes", "birthday", "home_address",
)  # fmt: skip
INTERACTION_COLUMNS = (
    "channel", "direction", "purpose", "occurred_at", "subject", "notes", "outcome",
    "satisfaction", "amount",
)  # fmt: skip


def attribute_columns(catalog: Catalog, kind: str | None) -> list[str]:
    names: list[str] = []
    for descriptor in catalog.customer_types:
        if kind is None or descriptor.key == kind:
            names += [a.name for a in descriptor.attributes if a.name not in names]
    return names


def customer_record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": encode_id("Customer", row["id"]),
        "kind": row["kind"],
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "owner": row["owner_email"],
        "team": row["team_name"],
        "stage": row["stage"],
        "phase": row["phase"],
        "created_at": read_timestamp(row["created_at"]),
        "updated_at": read_timestamp(row["updated_at"]),
        "attributes": load_json(row["attributes"]),
    }


def child_record(type_name: str, columns: Sequence[str]) -> Callable[[dict[str, Any]], dict]:
    def record(row: dict[str, Any]) -> dict[str, Any]:
        out = {
            "id": encode_id(type_name, row["id"]),
            "customer": encode_id("Customer", row["customer"]),
            "customer.email": row["customer_email"],
            "customer.tax_id": load_json(row["customer_attributes"]).get("tax_id"),
        }
        if "contact" in row:
            out["contact"] = encode_id("Contact", row["contact"]) if row["contact"] else None
            out["contact.email"] = row["contact_email"]
        out |= {column: row[column] for column in columns}
        if "occurred_at" in out:
            out["occurred_at"] = read_timestamp(out["occurred_at"])
        out["created_at"] = read_timestamp(row["created_at"])
        return out

    return record


@dataclass(frozen=True)
class Spec:
    sql: str
    record: Callable[[dict[str, Any]], dict[str, Any]]
    header: list[str]


def spec_for(entity: str, catalog: Catalog, kind: str | None) -> Spec:
    reference = ["id", "customer", "customer.email", "customer.tax_id"]
    if entity == "customers":
        core = ["id", "kind", "name", "email", "phone", "owner", "team", "stage", "phase"]
        header = [*core, "created_at", "updated_at", *attribute_columns(catalog, kind)]
        return Spec(CUSTOMER_SQL, customer_record, header)
    if entity == "contacts":
        header = [*reference, *CONTACT_COLUMNS, "created_at"]
        record = child_record("Contact", CONTACT_COLUMNS)
        return Spec(CHILD_SQL.format(table="contact", columns="", joins=""), record, header)
    if entity == "interactions":
        header = [*reference, "contact", "contact.email", *INTERACTION_COLUMNS, "created_at"]
        record = child_record("Interaction", INTERACTION_COLUMNS)
        sql = CHILD_SQL.format(
            table="interaction",
            columns=", k.email AS contact_email",
            joins=" LEFT JOIN contact k ON k.id = x.contact",
        )
        return Spec(sql, record, header)
    raise ValueError(f"cannot export {entity!r}")


def text(value: Any) -> str:
    """A value as a CSV cell: ISO dates, plain numbers, true/false, '' for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


async def export(
    db: Database, catalog: Catalog, entity: str, fmt: str, out: TextIO, kind: str | None = None
) -> int:
    """Write every row of ``entity`` to ``out``; how many were written."""
    spec = spec_for(entity, catalog, kind)
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(spec.header)
    kind_clause, kind_args = ("c.kind = {}", [kind]) if kind else ("1 = 1", [])
    sql = spec.sql.replace("AND {} ORDER", f"AND {kind_clause} ORDER")
    after, count = 0, 0
    while rows := await db.fetch(sql, after, *kind_args, BATCH):
        for row in rows:
            record = spec.record(row)
            if writer is None:
                out.write(orjson.dumps(record, default=_json_default).decode() + "\n")
                continue
            attributes = record.pop("attributes", {})
            writer.writerow([text(record.get(h, attributes.get(h))) for h in spec.header])
        count += len(rows)
        after = rows[-1]["id"]
    return count
