"""GraphiQL's example tabs (crmgraph/static/graphiql-examples, also shown in
docs/api.md) stay true: each parses and validates against the committed schema,
its variables are a JSON object naming only the operation's variables, and the
page carries them as tabs in file order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, build_schema, parse, validate

from crmgraph import graphiql

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = build_schema((ROOT / "docs" / "schema.graphql").read_text())
EXAMPLES = sorted(graphiql.EXAMPLES_DIR.glob("*.graphql"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_against_the_schema(path: Path) -> None:
    document = parse(path.read_text())
    assert validate(SCHEMA, document) == []
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert operations and all(o.name for o in operations), "every operation is named"
    declared = {v.variable.name.value for o in operations for v in o.variable_definitions or ()}
    variables = path.with_suffix(".json")
    given = set(json.loads(variables.read_text())) if variables.exists() else set()
    assert given == declared


def test_page_carries_the_examples_as_tabs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphiql, "missing_assets", lambda directory=None: [])
    html = graphiql.page(token="k1", demo_keys={"admin": "k1", "agent": "k2"}, examples=True)
    config = json.loads(re.search(r'type="application/json">(.*?)</script>', html, re.S)[1])
    assert [t["query"] for t in config["tabs"]] == [p.read_text() for p in EXAMPLES]
    assert config["keys"] == {"admin": "k1", "agent": "k2"}


def test_page_without_a_token_holds_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphiql, "missing_assets", lambda directory=None: [])
    html = graphiql.page(token=None, demo_keys={"admin": "k1", "agent": "k2"})
    config = json.loads(re.search(r'type="application/json">(.*?)</script>', html, re.S)[1])
    assert config["keys"] == {} and "k1" not in html and "k2" not in html


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_api_page_shows_the_example_as_it_is(path: Path) -> None:
    page = (ROOT / "docs" / "api.md").read_text()
    assert f"```graphql\n{path.read_text().rstrip()}\n```" in page
    variables = path.with_suffix(".json")
    if variables.exists():
        assert f"Variables: `{variables.read_text().strip()}`" in page
