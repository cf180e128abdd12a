"""The read contract of one customer type: the compiled read path answers
its fields exactly as the resolver path does (two apps on one database,
``compiled_reads`` on and off, the same queries sent to both), and an agent
sees only their own customers and no attribute behind a permission their
role lacks (the whole query refused with ``FORBIDDEN``, naming the field)."""

from __future__ import annotations

import json
from typing import Any

from crmgraph.conformance.harness import Running
from crmgraph.conformance.report import Report
from crmgraph.conformance.subject import Subject
from crmgraph.conformance.values import kind_enum
from crmgraph.ids import encode_id
from crmgraph.validation import camel


def _without_count(answer: dict[str, Any]) -> dict[str, Any]:
    extensions = {k: v for k, v in (answer.get("extensions") or {}).items() if k != "sqlStatements"}
    return {**answer, "extensions": extensions}


async def check_compiled(report: Report, subject: Subject, resolver: Running) -> None:
    """Every customer of the type, listed and one by one, through both paths."""
    listing = (
        "query($kinds: [CustomerKind!]) { customers(first: 100, filter: {kinds: $kinds}) "
        f"{{ edges {{ node {{ {subject.fields()} }} }} }} }}"
    )
    one = f"query($id: ID!) {{ customer(id: $id) {{ {subject.fields()} }} }}"
    variables = {"kinds": [kind_enum(subject.descriptor)]}
    listed = await subject.app.post(listing, variables)
    queries = [(listing, variables)]
    for edge in ((listed.get("data") or {}).get("customers") or {}).get("edges", []):
        queries.append((one, {"id": edge["node"]["id"]}))
    found: list[str] = []
    compiled_answers = 0
    for query, given in queries:
        raw = await subject.app.post(query, given)
        # one statement: the compiled path answered (the resolvers take more)
        compiled_answers += (raw.get("extensions") or {}).get("sqlStatements") == 1
        resolved = _without_count(await resolver.post(query, given))
        found += [
            f"{where}: compiled {a} vs resolver {b}"
            for where, a, b in differences(_without_count(raw), resolved)
        ]
    name = f"{subject.name}.compiled-reads"
    if found:
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        report.failed(
            name,
            "compiled reads answer differently from the resolvers at "
            + "; ".join(found[:3])
            + more,
        )
    elif compiled_answers == 0:
        report.skipped(name, "the compiled path answered none of the queries")
    else:
        report.passed(name, f"{compiled_answers} of {len(queries)} queries compiled, same answers")


def differences(a: Any, b: Any, path: str = "") -> list[tuple[str, str, str]]:
    """Where two JSON answers differ: (path, one value, the other), deepest first."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            found += differences(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in differences(x, y, f"{path}[{i}]")]
    if a == b and type(a) is type(b):
        return []
    return [(path, json.dumps(a)[:200], json.dumps(b)[:200])]


async def check_agent(report: Report, subject: Subject) -> None:
    user_id, key = await subject.app.user("agent")
    own = await subject.create(tag="agent-own-", owner=encode_id("User", user_id))
    other = await subject.create(tag="agent-other-")
    problems = []
    plain = f"query($id: ID!) {{ customer(id: $id) {{ {subject.fields(guarded=False)} }} }}"
    seen = await subject.app.post(plain, {"id": own["id"]}, key)
    if seen.get("errors") or not (seen.get("data") or {}).get("customer"):
        problems.append(f"the agent cannot read their own customer: {seen}")
    hidden = await subject.app.post(plain, {"id": other["id"]}, key)
    if (hidden.get("data") or {}).get("customer"):
        problems.append("the agent reads a customer that is not theirs")
    report.outcome(f"{subject.name}.agent.row-scope", problems)
    await _guarded(report, subject, own["id"], key)


async def _guarded(report: Report, subject: Subject, customer_id: str, key: str) -> None:
    name = f"{subject.name}.agent.guarded-attributes"
    guarded = [a for a in subject.descriptor.attributes if a.permission]
    if not guarded:
        report.passed(name, "no attribute behind a permission")
        return
    held = (await subject.app.gql("{ viewer { permissions } }", key=key))["viewer"]["permissions"]
    problems = []
    for attr in guarded:
        coordinate = f"{subject.descriptor.graphql_name}.{camel(attr.name)}"
        query = (
            f"query($id: ID!) {{ customer(id: $id) {{ ... on "
            f"{subject.descriptor.graphql_name} {{ {camel(attr.name)} }} }} }}"
        )
        answer = await subject.app.post(query, {"id": customer_id}, key)
        refusals = [e.get("extensions") or {} for e in answer.get("errors") or []]
        denied = [r for r in refusals if r.get("code") == "FORBIDDEN"]
        if attr.permission in held and answer.get("errors"):
            problems.append(f"{coordinate}: refused though the agent holds {attr.permission}")
        if attr.permission not in held and not any(
            coordinate in e.get("fields", []) for e in denied
        ):
            problems.append(f"{coordinate}: an agent without {attr.permission} was not refused")
    report.outcome(name, problems)
