"""Exporting customers, contacts, interactions and needs as CSV or JSON Lines.

Rows are read in id order :data:`BATCH` at a time (keyset pagination: each
statement starts after the last id written), so memory stays flat whatever
the table's size. Deleted customers, and what hangs off them, are left out.

Customers carry their typed attributes: one CSV column per attribute name
of the exported kinds (empty where a kind has no such attribute), or a
nested ``attributes`` object in JSON Lines. ``owner`` is the owner's e-mail
and ``team`` the team's name, as the importer reads them, so an export
imports back cleanly (``owner.name`` names a user the import creates where
the e-mail is unknown). ``stage`` and ``stage_entered_at`` are the current
stage of the customer's kind.

Roles (:mod:`crmgraph.operations.roles`): ``roles`` lists the further roles
the party holds now, ``kind:stage`` joined by ``;``
(``guarantor:verified;supplier:evaluation``); each role's typed attributes
and the time it entered its stage are CSV columns prefixed by its kind
(``guarantor.guaranteed_amount``, ``guarantor.stage_entered_at``), one set
for each kind some exported party holds as a further role. ``former_roles``
lists the other types a customer has a stage in without holding them (a
converted prospect: ``prospect:converted``; an ended role), whose
attributes, kept from before a conversion, are among its own columns. In
JSON Lines ``roles`` is a list of objects (``kind``, ``stage``, ``phase``,
``stage_entered_at``, ``added_at``, ``attributes``) and ``former_roles`` one
of ``kind``/``stage`` objects.

Every row carries ``ref`` (:mod:`.references`: this database's origin and the
global ID), the stable name of the record across files and imports.
Contacts, interactions and needs name their customer by ``customer.ref``, by
global ID (``customer``) and by the keys that survive a move to another
database (``customer.email``, ``customer.tax_id``); interactions name their
contact the same way (``contact.ref``, ``contact``, ``contact.email``). These
are the columns the importer finds them by (:mod:`.refs`), so an export
imports back.
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
from crmgraph.db.queries import Where, load_json, read_timestamp
from crmgraph.ids import encode_id
from crmgraph.operations.roles import is_held
from crmgraph.registry import Catalog
from crmgraph.transfer.references import make_ref, own_origin

BATCH = 1000

CUSTOMER_SQL = (
    "SELECT c.id, c.kind, c.name, c.email, c.phone, c.attributes, c.created_at, c.updated_at, "
    "r.stage, r.phase, r.entered_at, u.email AS owner_email, u.name AS owner_name, "
    "t.name AS team_name FROM customer c "
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
NEED_COLUMNS = (
    "title", "description", "category", "consumption_type", "volume", "unit", "priority",
    "status", "due_date",
)  # fmt: skip
# how a customer's other roles are written (roles_text) and read back (the importer)
ROLE_SEPARATOR, STAGE_SEPARATOR = ";", ":"
# a further role's columns: ``<kind>.<attribute>`` and this one
ROLE_ENTERED = "stage_entered_at"
HELD_KINDS_SQL = (
    "SELECT DISTINCT r.kind FROM customer_role r JOIN customer c ON c.id = r.customer "
    "WHERE c.deleted_at IS NULL AND r.kind <> c.kind AND r.added_at IS NOT NULL "
    "AND r.ended_at IS NULL AND {}"
)


def attribute_columns(catalog: Catalog, kind: str | None) -> list[str]:
    """The attributes customers of ``kind`` (any, when None) may carry: their
    type's, and those of the types that convert into it (kept on conversion)."""
    names: list[str] = []
    for descriptor in catalog.customer_types:
        converts = any(t.convert_to == kind for t in descriptor.lifecycle.transitions)
        if kind is None or descriptor.key == kind or converts:
            names += [a.name for a in descriptor.attributes if a.name not in names]
    return names


Record = Callable[[dict[str, Any], str], dict[str, Any]]


def roles_text(roles: Sequence[dict[str, Any]]) -> str | None:
    """``guarantor:verified;supplier:active``: roles as one CSV cell."""
    pairs = sorted((r["kind"], r["stage"]) for r in roles)
    return ROLE_SEPARATOR.join(f"{k}{STAGE_SEPARATOR}{s}" for k, s in pairs) or None


def role_columns(catalog: Catalog, kinds: Sequence[str]) -> list[str]:
    """The CSV columns of further roles of ``kinds``: per kind, when it
    entered its stage and each typed attribute, prefixed by the kind."""
    columns: list[str] = []
    for descriptor in catalog.customer_types:
        if descriptor.key in kinds:
            names = [ROLE_ENTERED, *(a.name for a in descriptor.attributes)]
            columns += [f"{descriptor.key}.{name}" for name in names]
    return columns


def role_cells(roles: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A record's further roles as CSV cells under :func:`role_columns`' names."""
    cells: dict[str, Any] = {}
    for role in roles:
        values = {ROLE_ENTERED: role["stage_entered_at"], **role["attributes"]}
        cells |= {f"{role['kind']}.{name}": value for name, value in values.items()}
    return cells


def customer_record(row: dict[str, Any], origin: str) -> dict[str, Any]:
    return {
        "id": encode_id("Customer", row["id"]),
        "ref": make_ref(origin, "Customer", row["id"]),
        "kind": row["kind"],
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "owner": row["owner_email"],
        "owner.name": row["owner_name"],
        "team": row["team_name"],
        "stage": row["stage"],
        "phase": row["phase"],
        "stage_entered_at": read_timestamp(row["entered_at"]),
        "roles": row.get("held_roles", []),
        "former_roles": row.get("former_roles", []),
        "created_at": read_timestamp(row["created_at"]),
        "updated_at": read_timestamp(row["updated_at"]),
        "attributes": load_json(row["attributes"]),
    }


def child_record(type_name: str, columns: Sequence[str]) -> Record:
    def record(row: dict[str, Any], origin: str) -> dict[str, Any]:
        out = {
            "id": encode_id(type_name, row["id"]),
            "ref": make_ref(origin, type_name, row["id"]),
            "customer": encode_id("Customer", row["customer"]),
            "customer.ref": make_ref(origin, "Customer", row["customer"]),
            "customer.email": row["customer_email"],
            "customer.tax_id": load_json(row["customer_attributes"]).get("tax_id"),
        }
        if "contact" in row:
            contact = row["contact"]
            out["contact"] = encode_id("Contact", contact) if contact else None
            out["contact.ref"] = make_ref(origin, "Contact", contact) if contact else None
            out["contact.email"] = row["contact_email"]
        out |= {column: row[column] for column in columns}
        if "occurred_at" in out:
            out["occurred_at"] = read_timestamp(out["occurred_at"])
        out["created_at"] = read_timestamp(row["created_at"])
        if "updated_at" in row:
            out["updated_at"] = read_timestamp(row["updated_at"])
        return out

    return record


@dataclass(frozen=True)
class Spec:
    sql: str
    record: Record
    header: list[str]


def spec_for(entity: str, catalog: Catalog, kind: str | None) -> Spec:
    reference = ["id", "ref", "customer", "customer.ref", "customer.email", "customer.tax_id"]
    if entity == "customers":
        core = ["id", "ref", "kind", "name", "email", "phone", "owner", "owner.name", "team"]
        lifecycle = ["stage", "phase", "stage_entered_at", "roles", "former_roles"]
        header = [*core, *lifecycle, "created_at", "updated_at", *attribute_columns(catalog, kind)]
        return Spec(CUSTOMER_SQL, customer_record, header)
    if entity == "contacts":
        header = [*reference, *CONTACT_COLUMNS, "created_at"]
        record = child_record("Contact", CONTACT_COLUMNS)
        return Spec(CHILD_SQL.format(table="contact", columns="", joins=""), record, header)
    if entity == "interactions":
        contact = ["contact", "contact.ref", "contact.email"]
        header = [*reference, *contact, *INTERACTION_COLUMNS, "created_at"]
        record = child_record("Interaction", INTERACTION_COLUMNS)
        sql = CHILD_SQL.format(
            table="interaction",
            columns=", k.email AS contact_email",
            joins=" LEFT JOIN contact k ON k.id = x.contact",
        )
        return Spec(sql, record, header)
    if entity == "needs":
        header = [*reference, *NEED_COLUMNS, "created_at", "updated_at"]
        record = child_record("Need", NEED_COLUMNS)
        return Spec(CHILD_SQL.format(table="need", columns="", joins=""), record, header)
    raise ValueError(f"cannot export {entity!r}")


async def held_role_kinds(db: Database, kind: str | None) -> list[str]:
    """The kinds exported customers (of ``kind``, or all) hold as further roles."""
    sql = HELD_KINDS_SQL.format("c.kind = {}" if kind else "1 = 1")
    return [row["kind"] for row in await db.fetch(sql, *([kind] if kind else []))]


async def add_other_roles(db: Database, rows: list[dict[str, Any]]) -> None:
    """Each customer row's further roles (``held_roles``: kind, stage, phase,
    times and typed attributes) and the other types it has a stage in
    without holding them (``former_roles``: kind and stage), by kind."""
    where = Where()
    where.add_in("customer", [row["id"] for row in rows])
    found: dict[int, list[dict[str, Any]]] = {}
    for role in await db.fetch(
        "SELECT customer, kind, stage, phase, entered_at, attributes, added_at, ended_at "
        f"FROM customer_role WHERE {where.sql()} ORDER BY kind",
        *where.args,
    ):
        found.setdefault(role["customer"], []).append(role)
    for row in rows:
        others = [r for r in found.get(row["id"], ()) if r["kind"] != row["kind"]]
        row["held_roles"] = [
            {
                "kind": r["kind"],
                "stage": r["stage"],
                "phase": r["phase"],
                "stage_entered_at": read_timestamp(r["entered_at"]),
                "added_at": read_timestamp(r["added_at"]),
                "attributes": load_json(r["attributes"]),
            }
            for r in others
            if is_held(r, row["kind"])
        ]
        row["former_roles"] = [
            {"kind": r["kind"], "stage": r["stage"]} for r in others if not is_held(r, row["kind"])
        ]


def csv_cells(record: dict[str, Any]) -> dict[str, Any]:
    """A record flattened for CSV: attributes, roles and their attributes as cells."""
    cells = {**record.pop("attributes", {}), **record}
    if "roles" in record:
        cells |= role_cells(record["roles"])
        cells["roles"] = roles_text(record["roles"])
        cells["former_roles"] = roles_text(record["former_roles"])
    return cells


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
    if entity == "customers":
        spec.header.extend(role_columns(catalog, await held_role_kinds(db, kind)))
    origin = await own_origin(db)
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(spec.header)
    kind_clause, kind_args = ("c.kind = {}", [kind]) if kind else ("1 = 1", [])
    sql = spec.sql.replace("AND {} ORDER", f"AND {kind_clause} ORDER")
    after, count = 0, 0
    while rows := await db.fetch(sql, after, *kind_args, BATCH):
        if entity == "customers":
            await add_other_roles(db, rows)
        for row in rows:
            record = spec.record(row, origin)
            if writer is None:
                out.write(orjson.dumps(record, default=_json_default).decode() + "\n")
                continue
            cells = csv_cells(record)
            writer.writerow([text(cells.get(h)) for h in spec.header])
        count += len(rows)
        after = rows[-1]["id"]
    return count
