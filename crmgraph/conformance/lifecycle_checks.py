"""The write contract of one customer type: create with valid and invalid
attributes, update with ``expectedVersion``, every declared transition.

Transitions: a customer is walked to the transition's first stage by the
shortest path of declared moves, with every attribute set and a purchase
logged (what guards commonly ask for), so the move itself must succeed. A
guarded move is first tried with the optional attributes cleared: a guard
may refuse then, but only with reasons (``TRANSITION_REFUSED``), never by
failing (``PLUGIN_ERROR``)."""

from __future__ import annotations

from collections import deque
from typing import Any

from crmgraph.conformance.harness import Refused
from crmgraph.conformance.report import Report
from crmgraph.conformance.subject import Subject
from crmgraph.conformance.values import (
    input_field,
    invalid_values,
    kind_enum,
    same_value,
    valid_values,
)
from crmgraph.customer_types import Lifecycle, Transition
from crmgraph.validation import camel


async def check_create(report: Report, subject: Subject) -> None:
    name = f"{subject.name}.create.valid"
    sent = valid_values(subject.descriptor)
    payload = await subject.create_payload(sent)
    customer = payload["customer"]
    if customer is None:
        report.failed(name, f"valid attributes {sent} were refused: {payload['userErrors']}")
        return
    problems = [
        f"{camel(a.name)} sent {sent[camel(a.name)]!r}, read back {customer.get(camel(a.name))!r}"
        for a in subject.descriptor.attributes
        if not same_value(a, sent[camel(a.name)], customer.get(camel(a.name)))
    ]
    if customer["stage"] != subject.descriptor.lifecycle.initial:
        problems.append(f"created in stage {customer['stage']!r}, not the initial one")
    report.outcome(name, problems)
    await check_invalid(report, subject)


async def check_invalid(report: Report, subject: Subject) -> None:
    problems: list[str] = []
    for attr in subject.descriptor.attributes:
        for what, value in invalid_values(attr):
            attributes = {**valid_values(subject.descriptor), camel(attr.name): value}
            answer = await subject.app.post(
                "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) "
                "{ customer { id } userErrors { field message } } }",
                {"input": _create_input(subject, attributes)},
            )
            created = ((answer.get("data") or {}).get("createCustomer") or {}).get("customer")
            if created is not None:
                problems.append(f"{camel(attr.name)} {what} ({value!r}) was accepted")
    for attr in (a for a in subject.descriptor.attributes if a.required):
        attributes = valid_values(subject.descriptor)
        del attributes[camel(attr.name)]
        payload = await subject.create_payload(attributes)
        if payload["customer"] is not None:
            problems.append(f"required {camel(attr.name)} left out was accepted")
    report.outcome(f"{subject.name}.create.invalid", problems)


def _create_input(subject: Subject, attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": kind_enum(subject.descriptor),
        "name": "Conformance invalid",
        "allowDuplicate": True,
        input_field(subject.descriptor): attributes,
    }


async def check_update(report: Report, subject: Subject) -> None:
    name = f"{subject.name}.update.expected-version"
    customer = await subject.create()
    read_version = customer["version"]
    changed = valid_values(subject.descriptor, "updated-")
    payload = await subject.update(customer, changed)
    problems = []
    if payload["customer"] is None:
        problems.append(f"an update with the current version was refused: {payload['userErrors']}")
    elif customer["version"] <= read_version:
        problems.append("the version did not increase")
    stale = await subject.update(customer, changed, version=read_version)
    if stale["customer"] is not None or not stale["userErrors"]:
        problems.append("an update with a stale expectedVersion was accepted")
    report.outcome(name, problems)


def paths(lifecycle: Lifecycle) -> dict[str, list[Transition]]:
    """Shortest path of moves from the initial stage to each reachable stage
    (conversions, which leave the type, are never a step on the way)."""
    found: dict[str, list[Transition]] = {lifecycle.initial: []}
    queue = deque([lifecycle.initial])
    while queue:
        stage = queue.popleft()
        for t in lifecycle.transitions_from(stage):
            if t.to_stage not in found and not t.convert_to:
                found[t.to_stage] = [*found[stage], t]
                queue.append(t.to_stage)
    return found


class NotShown(Exception):
    """A guard refused the check's customer with reasons: the move is not
    broken, but the check could not show it succeeds (the guard wants more
    than every attribute set and a purchase)."""


async def check_transitions(report: Report, subject: Subject) -> None:
    lifecycle = subject.descriptor.lifecycle
    routes = paths(lifecycle)
    for transition in lifecycle.transitions:
        name = f"{subject.name}.transition.{transition.from_stage}->{transition.to_stage}"
        route = routes.get(transition.from_stage)
        if route is None:
            report.skipped(name, f"stage {transition.from_stage!r} is unreachable from the initial")
            continue
        try:
            problems = await _one_transition(subject, route, transition)
        except NotShown as exc:
            report.skipped(name, str(exc))
            continue
        except Refused as exc:
            problems = [str(exc)]
        report.outcome(name, problems)


async def _one_transition(
    subject: Subject, route: list[Transition], transition: Transition
) -> list[str]:
    customer = await subject.create(tag="moving-")
    await subject.purchase(customer)
    await subject.refresh(customer)
    for step in route:
        failure, refusal = _move_problem(await subject.move(customer, step.to_stage), step)
        if failure:
            return [f"on the way, {failure}"]
        if refusal:
            raise NotShown(f"on the way, {refusal}")
    problems: list[str] = []
    if transition.guards:
        problems, moved = await _bare_attempt(subject, customer, transition)
        if moved:
            return problems
    failure, refusal = _move_problem(await subject.move(customer, transition.to_stage), transition)
    if refusal and not problems:
        raise NotShown(refusal)
    return [*problems, *(p for p in (failure, refusal) if p)]


async def _bare_attempt(
    subject: Subject, customer: dict[str, Any], transition: Transition
) -> tuple[list[str], bool]:
    """The guarded move with the optional attributes cleared: refused with
    reasons or let through (then it is done: True), never failed; when
    refused, the attributes are put back for the full attempt."""
    optional = [camel(a.name) for a in subject.descriptor.attributes if not a.required]
    full = valid_values(subject.descriptor, "moving-")
    cleared = await subject.update(customer, dict.fromkeys(optional))
    if cleared["customer"] is None:
        return [], False  # the type's own validation wants them: nothing bare to try
    answer = await subject.move(customer, transition.to_stage)
    problems = []
    if answer.get("errors"):
        problems.append(f"a guard failed instead of refusing with a reason: {_messages(answer)}")
    else:
        payload = answer["data"]["transitionCustomer"]
        if payload["customer"] is not None:
            return problems, True  # the guards let it through
        if not all(e["message"].strip() for e in payload["userErrors"]):
            problems.append("a guard refused without a reason")
    restored = await subject.update(customer, full)
    if restored["customer"] is None:
        raise Refused(f"the attributes could not be set again: {restored['userErrors']}")
    return problems, False


def _messages(answer: dict[str, Any]) -> str:
    return "; ".join(e.get("message", "?") for e in answer["errors"])


def _move_problem(answer: dict[str, Any], transition: Transition) -> tuple[str, str]:
    """(failure, refusal): a move that failed (a GraphQL error, such as a
    guard that raised), or one refused with reasons; both empty: it moved."""
    move = f"{transition.from_stage}->{transition.to_stage}"
    if answer.get("errors"):
        return f"{move} failed (a guard that raised?): {_messages(answer)}", ""
    payload = answer["data"]["transitionCustomer"]
    if payload["customer"] is None:
        reasons = "; ".join(e["message"] for e in payload["userErrors"])
        return "", (
            f"{move} was refused with every attribute set and a purchase logged "
            f"(not shown to succeed): {reasons}"
        )
    return "", ""
