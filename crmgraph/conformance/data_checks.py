"""The data contract of one customer type: merge and undo give both parties
back as they were; the personal data export holds the type's attributes and,
after an erasure, no attribute of the type survives (in the customer, in
GraphQL, in the export with every plugin's section); a CSV export imports
back into an empty database with the same attribute values."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from crmgraph.app import with_state
from crmgraph.conformance.harness import Refused, settings_for
from crmgraph.conformance.report import Report
from crmgraph.conformance.subject import Subject
from crmgraph.conformance.values import same_value, valid_values
from crmgraph.db.queries import load_json
from crmgraph.ids import decode_id
from crmgraph.transfer.entities import entity_for
from crmgraph.transfer.export import export
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.source import CsvSource, text_stream
from crmgraph.validation import camel


async def check_merge(report: Report, subject: Subject) -> None:
    survivor = await subject.create(tag="survivor-")
    merged = await subject.create(tag="merged-")
    before = {c["id"]: dict(c) for c in (survivor, merged)}
    done = await subject.app.gql(
        "mutation($input: MergeCustomersInput!) { mergeCustomers(input: $input) "
        "{ merge { id } userErrors { message } } }",
        {"input": {"survivorId": survivor["id"], "mergedId": merged["id"], "reason": "check"}},
    )
    payload = done["mergeCustomers"]
    if payload["merge"] is None:
        report.failed(f"{subject.name}.merge-undo", f"merge refused: {payload['userErrors']}")
        return
    undone = (
        await subject.app.gql(
            "mutation($input: UndoMergeInput!) { undoMerge(input: $input) "
            "{ merge { undoneAt } userErrors { message } } }",
            {"input": {"mergeId": payload["merge"]["id"]}},
        )
    )["undoMerge"]
    if undone["merge"] is None:
        report.failed(f"{subject.name}.merge-undo", f"undo refused: {undone['userErrors']}")
        return
    problems = []
    for customer_id, was in before.items():
        now = (await subject.read(customer_id)).get("data", {}).get("customer") or {}
        for attr in subject.descriptor.attributes:
            field = camel(attr.name)
            if now.get(field) != was.get(field):
                problems.append(
                    f"{customer_id}.{field} was {was.get(field)!r}, now {now.get(field)!r}"
                )
    report.outcome(f"{subject.name}.merge-undo", problems)


async def personal_export(subject: Subject, customer_id: str) -> str:
    data = await subject.app.gql(
        "query($id: ID!) { personalDataExport(customerId: $id) { document } }", {"id": customer_id}
    )
    return json.dumps(data["personalDataExport"])


async def check_erasure(report: Report, subject: Subject) -> None:
    name = f"{subject.name}.erasure"
    customer = await subject.create(tag="erase-")
    sent = valid_values(subject.descriptor, "erase-")
    marks = [v for v in sent.values() if isinstance(v, str) and "erase-" in v]
    problems = []
    exported = await personal_export(subject, customer["id"])
    problems += [f"the export lacks attribute value {m!r}" for m in marks if m not in exported]
    erased = await subject.app.gql(
        "mutation($input: ErasePersonalDataInput!) { erasePersonalData(input: $input) "
        "{ erasure { id } userErrors { message } } }",
        {"input": {"customerId": customer["id"], "reason": "conformance check"}},
    )
    if erased["erasePersonalData"]["erasure"] is None:
        report.failed(name, f"erasure refused: {erased['erasePersonalData']['userErrors']}")
        return
    read = (await subject.read(customer["id"]))["data"]["customer"] or {}
    for attr in subject.descriptor.attributes:
        if read.get(camel(attr.name)) is not None:
            problems.append(f"{camel(attr.name)} survives erasure in GraphQL")
    _, pk = decode_id(customer["id"], "Customer")
    rows = await subject.app.state.db.fetch("SELECT attributes FROM customer WHERE id = {}", pk)
    stored = {k: v for k, v in load_json(rows[0]["attributes"]).items() if v is not None}
    problems += [f"{key} survives erasure in the customer's row" for key in stored]
    after = await personal_export(subject, customer["id"])
    problems += [
        f"attribute value {m!r} survives erasure in the export" for m in marks if m in after
    ]
    report.outcome(name, problems)


async def check_csv(report: Report, subject: Subject, empty_database: Path, module: str) -> None:
    """Export the type's customers to CSV, import them into an empty database,
    compare the attributes by name."""
    name = f"{subject.name}.csv-round-trip"
    full = await subject.create(tag="csv-full-")
    bare = await subject.create(full=False, tag="csv-bare-")
    state = subject.app.state
    out = io.StringIO()
    await export(state.db, state.catalog, "customers", "csv", out, subject.descriptor.key)
    wanted = {c["name"]: c for c in (full, bare)}

    async def import_back(target: Any) -> dict[str, dict[str, Any]]:
        ctx = ImportContext(target.db, target.catalog, target.plugin_manager)
        options = ImportOptions(on_duplicate="create")
        source = CsvSource(text_stream(io.BytesIO(out.getvalue().encode())))
        summary, rejected = await run_import(
            target.db, entity_for("customers", ctx, options), source, options
        )
        if summary.failure or rejected.count:
            raise Refused(
                f"the import failed: {summary.failure or [r.reasons() for r in rejected.first]}"
            )
        rows = await target.db.fetch(
            "SELECT name, attributes FROM customer WHERE kind = {}", subject.descriptor.key
        )
        return {
            r["name"]: subject.descriptor.decode_attributes(load_json(r["attributes"]))
            for r in rows
        }

    try:
        imported = await with_state(settings_for(empty_database, module), import_back)
    except Refused as exc:
        report.failed(name, str(exc))
        return
    problems = []
    for customer_name, customer in wanted.items():
        back = imported.get(customer_name)
        if back is None:
            problems.append(f"{customer_name!r} did not come back")
            continue
        problems += _differences(subject, customer, back)
    report.outcome(name, problems)


def _differences(subject: Subject, sent: dict[str, Any], back: dict[str, Any]) -> list[str]:
    found = []
    for attr in subject.descriptor.attributes:
        value = back.get(attr.name)
        text = value.isoformat() if hasattr(value, "isoformat") else value
        if not same_value(attr, sent.get(camel(attr.name)), text):
            found.append(f"{attr.name}: {sent.get(camel(attr.name))!r} came back as {text!r}")
    return found
