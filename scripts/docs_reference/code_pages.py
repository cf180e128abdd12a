"""docs/reference/events.md and docs/reference/errors.md, found in the code:
every core event type written to the outbox (with the payload keys the code
shows) and every error code a response may carry (the ``userErrors`` codes of
``UserErrorCode`` and the ``extensions.code`` of GraphQL errors and refused
requests). Found by reading the calls, so a new event or code shows up here
without anyone listing it; ``…`` marks payload keys merged in from elsewhere."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Callable
from functools import cache

from graphql import GraphQLEnumType, build_schema

from crmgraph.event_types import EVENT_TYPE, RESERVED_NAMESPACES
from scripts.docs_reference import DOCS
from scripts.docs_reference.markdown import header, table
from scripts.docs_reference.source_index import (
    Module,
    call_name,
    dict_keys,
    modules,
    strings,
    text_of,
)

# The calls that write an event, and where their payload is relative to the
# event type's argument (update_recorded builds its own: ``<node>Id``, ``fields``).
EVENT_WRITERS = {"record_change": 4, "outbox": 2, "insert_recorded": 1, "record": 4}
UPDATE_RECORDED = "update_recorded"


def events_page() -> str:
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for module in modules():
        for event, keys in module_events(module):
            found[event]["keys"].update(keys)
            found[event]["where"].add(module.name)
    rows = [
        (f"`{event}`", keys_text(found[event]["keys"]), ", ".join(sorted(found[event]["where"])))
        for event in sorted(found)
    ]
    return (
        header(
            "Events",
            "the outbox writes in crmgraph/",
            "Every event type the core writes to the outbox, in the transaction of the change it "
            "describes. Events reach plugins' `crmgraph_event_handlers`, `customerEvents` "
            "subscriptions and webhooks (see [Live events and webhooks]"
            "(../live-events-and-webhooks.md)). Every payload also has `at`, the time written; "
            "`…` marks keys merged in from elsewhere (the module named tells which). Plugins "
            "write their own events under a namespace of their own (`crmgraph.emit`; the "
            "namespaces " + ", ".join(f"`{n}`" for n in sorted(RESERVED_NAMESPACES)) + " are "
            "crmgraph's).",
        )
        + "\n"
        + table(("event type", "payload keys", "written by"), rows)
    )


def keys_text(keys: set[str]) -> str:
    named = sorted(k for k in keys if k != "…")
    return ", ".join([f"`{k}`" for k in named] + (["…"] if "…" in keys else []))


def module_events(module: Module) -> list[tuple[str, list[str]]]:
    found = []
    for call in (n for n in module.nodes if isinstance(n, ast.Call)):
        name = call_name(call)
        if name not in EVENT_WRITERS and name != UPDATE_RECORDED:
            continue
        for i, arg in enumerate(call.args):
            for event in event_types(module, arg):
                found.append((event, payload_keys(call, name, i) + own_keys(module, name)))
    return found


def event_types(module: Module, arg: ast.AST) -> list[str]:
    """The core event types an argument may be (a name assigned a constant counts)."""
    texts = strings(arg)
    if isinstance(arg, ast.Name):
        texts = [
            t
            for node in module.nodes
            if isinstance(node, ast.Assign)
            and any(isinstance(x, ast.Name) and x.id == arg.id for x in node.targets)
            for t in strings(node.value)
        ]
    return [t for t in texts if is_core_event(t)]


def is_core_event(text: str) -> bool:
    return bool(EVENT_TYPE.match(text)) and text.partition(".")[0] in RESERVED_NAMESPACES


def own_keys(module: Module, writer: str) -> list[str]:
    """The keys a writer defined in this module adds itself (dedupe's ``record``)."""
    return [
        key
        for node in module.nodes
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == writer
        for call in ast.walk(node)
        if isinstance(call, ast.Call) and call_name(call) in ("outbox", "record_change")
        for key in payload_keys(call, call_name(call), 1)
        if key != "…"
    ]


def payload_keys(call: ast.Call, name: str, at: int) -> list[str]:
    if name == UPDATE_RECORDED:
        entity = call.args[1] if len(call.args) > 1 else None
        node = strings(entity.elts[0]) if isinstance(entity, ast.Tuple) else []
        return [f"{node[0].lower()}Id" if node else "…", "fields"]
    index = at + EVENT_WRITERS[name]
    return dict_keys(call.args[index] if index < len(call.args) else None)


def errors_page() -> str:
    schema = build_schema((DOCS / "schema.graphql").read_text(encoding="utf-8"))
    enum = schema.get_type("UserErrorCode")
    assert isinstance(enum, GraphQLEnumType)
    user_rows = [(f"`{name}`", value.description or "") for name, value in enum.values.items()]
    codes = extension_codes()
    ext_rows = [
        (
            f"`{code}`",
            "; ".join(sorted(codes[code]["message"])),
            ", ".join(sorted(codes[code]["where"])),
        )
        for code in sorted(codes)
    ]
    return (
        header(
            "Error codes",
            "docs/schema.graphql (UserErrorCode) and the errors raised in crmgraph/",
            "Two kinds of failure carry a code. A mutation that refuses its input answers "
            "with `userErrors` in its payload (the request succeeds, nothing is written); "
            "their `code` is a `UserErrorCode`. A request or field that cannot be answered "
            "at all gets an entry in the response's `errors`, whose `extensions.code` is one "
            "of the second table (found in the code: `{…}` stands for values filled in).",
        )
        + "\n## userErrors codes (UserErrorCode)\n\n"
        + table(("code", "description"), user_rows)
        + "\n## extensions.code of errors\n\n"
        + table(("code", "message", "raised in"), ext_rows)
    )


# Calls whose ``code`` argument is a UserErrorCode (the first table), not an extension code.
USER_ERROR_CALLS = {"Problem", "add", "single", "UserError", "UserErrorCode", "DuplicateReasonCode"}


def extension_codes() -> dict[str, dict[str, set[str]]]:
    positions = code_parameters()
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for module in modules():
        constants = module.constants() | all_constants()
        for node in module.nodes:
            for code, message in codes_at(module, node, positions, constants):
                if code.isupper() and len(code) > 2:
                    found[code]["where"].add(module.name)
                    if message and message != code:
                        found[code]["message"].add(message)
    return found


def codes_at(
    module: Module, node: ast.AST, positions: dict[str, int], constants: dict[str, str]
) -> list[tuple[str, str]]:
    """(code, message) pairs an AST node sets: ``{"code": X}`` in a dict, or a
    call of a function taking ``code`` (a refusal helper) with X there."""
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "code":
                return [(c, message_near(module, node)) for c in resolve(value, constants)]
    if isinstance(node, ast.Call) and call_name(node) in positions:
        if call_name(node) in USER_ERROR_CALLS:
            return []
        at = positions[call_name(node)]
        value = node.args[at] if at < len(node.args) else None
        value = next((k.value for k in node.keywords if k.arg == "code"), value)
        message = next((text_of(a) for a in node.args if text_of(a)), "")
        return [(c, message) for c in resolve(value, constants)] if value else []
    return []


def resolve(value: ast.AST, constants: dict[str, str]) -> list[str]:
    if isinstance(value, ast.Name) and value.id in constants:
        return [constants[value.id]]
    return strings(value)


def message_near(module: Module, node: ast.AST) -> str:
    """The message of the error a ``{"code": …}`` dict belongs to."""
    for parent in module.ancestors(node):
        if isinstance(parent, ast.Dict):
            for key, value in zip(parent.keys, parent.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "message" and text_of(value):
                    return text_of(value)
        if isinstance(parent, ast.Call):
            return next((text_of(a) for a in parent.args if text_of(a)), "")
    return ""


@cache
def code_parameters() -> dict[str, int]:
    """The refusal helpers: functions and classes whose ``code`` parameter or
    field ends up as an error's ``{"code": …}``, by name: its position."""
    found = {}
    for module in modules():
        for node in module.nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in node.args.args]
                if "code" in names and sets_code(node, lambda v: isinstance(v, ast.Name)):
                    found[node.name] = names.index("code") - (names[:1] in (["self"], ["cls"]))
            elif isinstance(node, ast.ClassDef):
                fields = [
                    s.target.id
                    for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                ]
                if "code" in fields and sets_code(module.tree, is_code_attribute):
                    found[node.name] = fields.index("code")
    return found


def is_code_attribute(value: ast.AST) -> bool:
    return isinstance(value, ast.Attribute) and value.attr == "code"


def sets_code(tree: ast.AST, passes: Callable[[ast.AST], bool]) -> bool:
    """Whether ``tree`` builds a ``{"code": value}`` with a value ``passes`` accepts."""
    return any(
        isinstance(key, ast.Constant) and key.value == "code" and passes(value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key, value in zip(node.keys, node.values, strict=True)
    )


@cache
def all_constants() -> dict[str, str]:
    """Module-level string constants of every module (a code imported by name)."""
    merged: dict[str, str] = {}
    for module in modules():
        merged.update({k: v for k, v in module.constants().items() if v.isupper()})
    return merged
