"""Every GraphQL example in the documentation runs against the demo data, and
every shell example marked runnable runs: an example that no longer matches the
API fails the build instead of misleading a reader.

The convention (docs/development.md, "Documentation examples"): each fenced
``graphql`` block of README.md and docs/**/*.md that holds an operation is an
example (a block of SDL, types and inputs only, is not); an HTML comment right
before a block may say ``<!-- example: {JSON} -->`` (variables, expected shape,
expected error code, role, plugins) or ``<!-- runnable -->`` (shell). Reads run
on one seeded SQLite copy per plugin set; a block with a mutation runs on a copy
of its own, so examples never depend on each other's order; a subscription is
validated against the schema, not run. SQLite only: the docs describe the API,
which both engines serve alike (their equality is the other tests' job).

No doctest-like library: pytest-markdown-docs and friends run Python blocks, and
none knows a GraphQL server or the demo data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphql
import pytest

from crmgraph import auth
from crmgraph.app import AppState, with_state
from crmgraph.demo import seed_demo
from crmgraph.testing import LiveServer, TemplateDatabases, live_server, settings_for

ROOT = Path(__file__).resolve().parent.parent
DEMO_CUSTOMERS = 300  # every kind, stage and record type present; seeded in about a second
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
META_KEYS = {"variables", "expect", "error", "role", "plugins"}
# Shell commands a runnable block may hold: read-only, quick, no server, no network.
SAFE_COMMANDS = {
    ("crmgraph", "--help"),
    ("crmgraph", "schema"),
    ("crmgraph", "settings"),
    ("crmgraph", "plugins"),
    ("crmgraph", "prune", "--dry-run"),
}
SHELL_TIMEOUT = 60


@dataclass
class Example:
    path: Path
    line: int
    lang: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    runnable: bool = False

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    docs = sorted((ROOT / "docs").rglob("*.md"))
    return [ROOT / "README.md", *docs]


def blocks(path: Path) -> Iterator[Example]:
    """The fenced blocks of a Markdown file, each with the comment right before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = i + 1
        fence = opening["fence"]
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        body = "\n".join(line.removeprefix(opening["indent"]) for line in lines[i + 1 : end])
        example = Example(path, i + 1, opening["lang"], body)
        annotate(example, comment_before(lines, i))
        yield example
        i = end + 1


def comment_before(lines: list[str], fence_index: int) -> str | None:
    """The HTML comment ending on the last non-blank line before the fence."""
    j = fence_index - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0 or not lines[j].rstrip().endswith("-->"):
        return None
    start = j
    while start >= 0 and "<!--" not in lines[start]:
        start -= 1
    text = "\n".join(lines[start : j + 1]).strip()
    return text.removeprefix("<!--").removesuffix("-->").strip()


def annotate(example: Example, comment: str | None) -> None:
    if comment is None:
        return
    if comment == "runnable":
        example.runnable = True
    elif comment.startswith("example:"):
        meta = json.loads(comment.removeprefix("example:"))
        unknown = set(meta) - META_KEYS
        if not isinstance(meta, dict) or unknown:
            raise ValueError(f"{example.name}: unknown example keys {sorted(unknown)}")
        example.meta = meta


def operations(example: Example) -> list[graphql.OperationDefinitionNode]:
    document = graphql.parse(example.text)
    return [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]


def is_operation(example: Example) -> bool:
    """A ``graphql`` block holding an operation; SDL (types, inputs, enums) is
    not an example. A block that does not parse is one (and fails)."""
    try:
        return bool(operations(example))
    except graphql.GraphQLError:
        return True


def graphql_examples() -> list[Example]:
    found = []
    for path in doc_files():
        found += [b for b in blocks(path) if b.lang == "graphql" and is_operation(b)]
    return found


def shell_examples() -> list[Example]:
    return [b for path in doc_files() for b in blocks(path) if b.runnable]


# --- the demo servers ---------------------------------------------------------


async def seed(state: AppState) -> None:
    await seed_demo(
        state.db, state.catalog, customers=DEMO_CUSTOMERS, plugin_manager=state.plugin_manager
    )


class DemoSites:
    """Seeded SQLite files, one per plugin set, each seeded once; a read server
    on each, and fresh copies for mutations."""

    def __init__(self, templates: TemplateDatabases, directory: Path) -> None:
        self.templates = templates
        self.directory = directory
        self.stack = contextlib.ExitStack()
        self.seeded: dict[tuple[str, ...], Path] = {}
        self.readers: dict[tuple[str, ...], LiveServer] = {}
        self.copies = 0

    def seeded_file(self, plugins: tuple[str, ...]) -> Path:
        if plugins not in self.seeded:
            path = self.directory / f"demo-{len(self.seeded)}.sqlite"
            url = self.stack.enter_context(self.templates.fresh("sqlite", plugins, path))
            asyncio.run(with_state(settings_for(url, plugins=plugins), seed))
            with sqlite3.connect(path) as conn:  # fold the WAL in: a plain copy is complete
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.seeded[plugins] = path
        return self.seeded[plugins]

    def reader(self, plugins: tuple[str, ...]) -> LiveServer:
        if plugins not in self.readers:
            url = f"sqlite:///{self.copy(plugins)}"
            server = live_server(settings_for(url, plugins=plugins))
            self.readers[plugins] = self.stack.enter_context(server)
        return self.readers[plugins]

    def copy(self, plugins: tuple[str, ...]) -> Path:
        self.copies += 1
        path = self.directory / f"copy-{self.copies}.sqlite"
        shutil.copyfile(self.seeded_file(plugins), path)
        return path

    @contextlib.contextmanager
    def writer(self, plugins: tuple[str, ...]) -> Iterator[LiveServer]:
        """A server on a fresh copy of the seeded data, for one example."""
        url = f"sqlite:///{self.copy(plugins)}"
        with live_server(settings_for(url, plugins=plugins)) as server:
            yield server


@pytest.fixture(scope="module")
def sites(
    crmgraph_templates: TemplateDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoSites]:
    demo = DemoSites(crmgraph_templates, tmp_path_factory.mktemp("docs-examples"))
    with demo.stack:
        yield demo


# --- placeholders, roles, expectations ---------------------------------------

KINDS_QUERY = '{ __type(name: "CustomerKind") { enumValues { name } } }'
ORDINALS = ("first", "second", "third")


def placeholders(server: LiveServer) -> dict[str, Any]:
    """``$firstCustomerId``, ``$secondCustomerId``, … and per kind
    ``$firstClientId``, ``$secondSupplierId``, … (with ``$firstClientVersion``
    and so on, the customer's ``version``) from the demo data: customers of
    that primary kind (a party holding it as a further role is not counted)."""
    kinds = [v["name"] for v in server.gql(KINDS_QUERY)["__type"]["enumValues"]]
    per_kind = " ".join(
        f"{kind}: customers(first: 3, filter: {{kinds: [{kind}], primaryKindOnly: true}}) "
        "{ edges { node { id version } } }"
        for kind in kinds
    )
    data = server.gql(
        f"{{ Customer: customers(first: 3) {{ edges {{ node {{ id version }} }} }} {per_kind} }}"
    )
    values: dict[str, Any] = {}
    for kind, connection in data.items():
        name = kind.title().replace("_", "")
        for ordinal, edge in zip(ORDINALS, connection["edges"], strict=False):
            values[f"${ordinal}{name}Id"] = edge["node"]["id"]
            values[f"${ordinal}{name}Version"] = edge["node"]["version"]
    return values


def fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str) and (later := re.fullmatch(r"(\$\w+Version)\+(\d)", value)):
        return fill(later[1], values) + int(later[2])  # the version after N writes
    if isinstance(value, str) and value.startswith("$"):
        if value not in values:
            raise AssertionError(f"unknown placeholder {value}; known: {sorted(values)}")
        return values[value]
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


async def demo_user_key(state: AppState, role: str) -> str:
    """A key for the first demo user with ``role`` (as ``serve --demo`` prints)."""
    users = await state.db.fetch(
        "SELECT email FROM crm_user WHERE role = {} ORDER BY id LIMIT 1", role
    )
    assert users, f"the demo data has no {role}"
    return await auth.create_key(state.db, users[0]["email"], "docs example")


def matches(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected``: a dict names the keys it
    checks, a list checks its first elements, ``">0"``/``">=N"`` a number,
    ``"*"`` anything not null; anything else must be equal."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where or '.'}: expected an object, got {actual!r}"]
        return [
            problem
            for key, value in expected.items()
            for problem in (
                matches(value, actual[key], f"{where}.{key}")
                if key in actual
                else [f"{where}.{key}: missing"]
            )
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) < len(expected):
            return [f"{where}: expected at least {len(expected)} items, got {actual!r}"]
        return [p for i, e in enumerate(expected) for p in matches(e, actual[i], f"{where}[{i}]")]
    if expected == "*":
        return [] if actual is not None else [f"{where}: null"]
    if isinstance(expected, str) and (bound := re.fullmatch(r">(=?)(-?\d+(?:\.\d+)?)", expected)):
        ok = isinstance(actual, (int, float)) and (
            actual >= float(bound[2]) if bound[1] else actual > float(bound[2])
        )
        return [] if ok else [f"{where}: {actual!r} is not {expected}"]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def user_error_codes(data: Any) -> list[str]:
    """The codes (or messages) of every non-empty ``userErrors`` in ``data``."""
    if isinstance(data, list):
        return [c for item in data for c in user_error_codes(item)]
    if not isinstance(data, dict):
        return []
    found = []
    for key, value in data.items():
        if key == "userErrors" and value:
            found += [e.get("code") or e.get("message") or repr(e) for e in value]
        else:
            found += user_error_codes(value)
    return found


# --- the tests ----------------------------------------------------------------


def run_operations(server: LiveServer, example: Example, key: str | None) -> dict[str, Any]:
    """Each operation of the block in order; the responses' data merged, their
    errors listed."""
    variables = fill(example.meta.get("variables", {}), placeholders(server))
    ops = operations(example)
    merged: dict[str, Any] = {"data": {}, "errors": []}
    for op in ops:
        body: dict[str, Any] = {"query": example.text, "variables": variables}
        if len(ops) > 1:
            body["operationName"] = op.name.value if op.name else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = server.http.post("/graphql", json=body, headers=headers)
        answer = response.json()
        merged["data"].update(answer.get("data") or {})
        merged["errors"] += answer.get("errors") or []
    return merged


def check_answer(example: Example, answer: dict[str, Any]) -> None:
    codes = [(e.get("extensions") or {}).get("code") for e in answer["errors"]]
    user_codes = user_error_codes(answer["data"])
    expected_error = example.meta.get("error")
    if expected_error is not None:
        assert expected_error in codes + user_codes, (
            f"{example.name}: expected error {expected_error}, got {answer['errors']}, "
            f"userErrors {user_codes}"
        )
    else:
        assert not answer["errors"], f"{example.name}: {answer['errors']}"
        assert not user_codes, f"{example.name}: userErrors {user_codes}"
    problems = matches(example.meta.get("expect", {}), answer)
    assert not problems, f"{example.name}: " + "; ".join(problems)


def validate_subscription(server: LiveServer, example: Example) -> None:
    introspection = server.gql(graphql.get_introspection_query())
    schema = graphql.build_client_schema(introspection)
    errors = graphql.validate(schema, graphql.parse(example.text))
    assert not errors, f"{example.name}: {[e.message for e in errors]}"


@pytest.mark.parametrize("example", graphql_examples(), ids=lambda e: e.name)
def test_graphql_example(example: Example, sites: DemoSites) -> None:
    plugins = tuple(example.meta.get("plugins", ()))
    ops = operations(example)  # a block that does not parse fails here, named
    kinds = {op.operation for op in ops}
    if graphql.OperationType.SUBSCRIPTION in kinds:
        validate_subscription(sites.reader(plugins), example)
        return
    with contextlib.ExitStack() as stack:
        if graphql.OperationType.MUTATION in kinds:
            server = stack.enter_context(sites.writer(plugins))
        else:
            server = sites.reader(plugins)
        role = example.meta.get("role")
        key = server.run(lambda state: demo_user_key(state, role)) if role else None
        check_answer(example, run_operations(server, example, key))


def test_examples_found() -> None:
    """The collector finds the docs' examples (a broken pattern would make
    the test above pass by running nothing)."""
    assert len(graphql_examples()) >= 10
    assert len(shell_examples()) >= 2


def test_the_conventions_are_read(tmp_path: Path) -> None:
    """The comment before a block is read, and ``expect`` checks what it says."""
    page = tmp_path / "page.md"
    page.write_text(
        '<!-- example: {"role": "viewer",\n  "error": "FORBIDDEN"} -->\n```graphql\n{ a }\n```\n\n'
        "<!-- runnable -->\n```sh\ncrmgraph schema\n```\n\n```graphql\ntype A { b: Int }\n```\n"
    )
    found = list(blocks(page))
    assert [(b.lang, b.meta, b.runnable) for b in found] == [
        ("graphql", {"role": "viewer", "error": "FORBIDDEN"}, False),
        ("sh", {}, True),
        ("graphql", {}, False),
    ]
    assert [is_operation(b) for b in (found[0], found[2])] == [True, False]
    answer = {"data": {"c": {"n": 0, "items": [{"id": None}], "name": "x"}}}
    assert matches({"data": {"c": {"name": "x", "n": ">=0"}}}, answer) == []
    assert matches({"data": {"c": {"n": ">0", "items": [{"id": "*"}], "gone": 1}}}, answer) == [
        ".data.c.n: 0 is not >0",
        ".data.c.items[0].id: null",
        ".data.c.gone: missing",
    ]
    assert user_error_codes({"x": {"userErrors": [{"code": "INVALID"}]}, "y": []}) == ["INVALID"]


def shell_commands(example: Example) -> Iterator[tuple[dict[str, str], list[str]]]:
    """Each command line of a block: its leading VAR=value settings and argv."""
    for line in example.text.splitlines():
        words = shlex.split(line, comments=True)
        env = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        if words:
            yield env, words


def is_safe(argv: Sequence[str]) -> bool:
    return any(tuple(argv[: len(safe)]) == safe for safe in SAFE_COMMANDS)


@pytest.mark.parametrize("example", shell_examples(), ids=lambda e: e.name)
def test_runnable_shell_example(example: Example, tmp_path: Path) -> None:
    crmgraph = [sys.executable, "-m", "crmgraph"]
    for env, argv in shell_commands(example):
        assert is_safe(argv), f"{example.name}: {shlex.join(argv)} is not a command the test runs"
        environment = {
            **os.environ,
            "CRMGRAPH_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.sqlite'}",
            "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
            **env,
        }
        done = subprocess.run(
            crmgraph + argv[1:],
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=SHELL_TIMEOUT,
        )
        assert done.returncode == 0, f"{example.name}: {shlex.join(argv)}: {done.stderr}"
