"""Every hookspec is documented in docs/plugins.md, with a worked example, and
implemented by at least one plugin we ship (built-ins or crmgraph-loyalty), so
no extension point is untested or undocumented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import crmgraph
from crmgraph import hookspecs
from crmgraph.registry import make_plugin_manager
from crmgraph.testing import settings_for
from tests.helpers import require_loyalty

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def hook_names() -> list[str]:
    # pluggy marks each hookspec with "<project>_spec"; helpers in the module are not hooks.
    return sorted(
        name
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, "crmgraph_spec")
    )


def doc_sections() -> dict[str, str]:
    """``### name`` heading -> the text up to the next heading."""
    text = DOCS.read_text(encoding="utf-8")
    parts = re.split(r"^(#{2,3}) (.+?)\s*$", text, flags=re.MULTILINE)
    sections = {}
    for level, title, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        if level == "###":
            sections[title] = body
    return sections


def test_there_are_hooks_to_check() -> None:
    assert len(hook_names()) >= 11
    assert "crmgraph_customer_types" in hook_names()


def test_every_hookspec_has_a_section_with_a_worked_example() -> None:
    sections = doc_sections()
    missing = [name for name in hook_names() if name not in sections]
    assert not missing, f"docs/plugins.md lacks a '### name' section for: {', '.join(missing)}"
    for name in hook_names():
        body = sections[name]
        assert "```python" in body, f"### {name} has no Python example"
        assert re.search(rf"def {name}\(", body), f"### {name}'s example does not implement it"
        assert "@hookimpl" in body, f"### {name}'s example does not mark the hook"


def test_no_section_documents_a_hook_that_does_not_exist() -> None:
    documented = {title for title in doc_sections() if title.startswith("crmgraph_")}
    assert documented <= set(hook_names()), documented - set(hook_names())


def test_every_hookspec_is_implemented_by_a_shipped_plugin(tmp_path: Path) -> None:
    require_loyalty()
    settings = settings_for(
        f"sqlite:///{tmp_path / 'unused.sqlite'}", plugins=("crmgraph_loyalty.plugin",)
    )
    pm = make_plugin_manager(settings)
    unimplemented = [name for name in hook_names() if not getattr(pm.hook, name).get_hookimpls()]
    assert not unimplemented, f"no shipped plugin implements: {', '.join(unimplemented)}"


def public_api_section() -> str:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"^## Public API\s*$(.*?)^## ", text, flags=re.MULTILINE | re.DOTALL)
    assert found, "docs/plugins.md has no '## Public API' section"
    return found.group(1)


def test_every_public_name_is_documented() -> None:
    """Each name of ``crmgraph.__all__`` is explained in docs/plugins.md's
    Public API section (as `` `name` ``, on a line saying what it is)."""
    section = public_api_section()
    missing = [name for name in crmgraph.__all__ if f"`{name}`" not in section]
    assert not missing, f"docs/plugins.md's Public API does not document: {', '.join(missing)}"


def test_linked_party_fields_and_directions_are_documented() -> None:
    section = public_api_section()
    for name in [f.name for f in dataclasses.fields(crmgraph.LinkedParty)]:
        assert f"`{name}`" in section, f"LinkedParty.{name} is not documented"
    for direction in crmgraph.Direction:
        assert f"`Direction.{direction.name}`" in section and f'`"{direction.value}"`' in section


def test_doc_examples_import_only_the_public_api() -> None:
    """The examples teach what the plugins do: no ``crmgraph.<sub>`` import
    but ``crmgraph.testing``."""
    text = DOCS.read_text(encoding="utf-8")
    imports = re.findall(r"^\s*(?:from|import) (crmgraph\.[\w.]+)", text, flags=re.MULTILINE)
    assert set(imports) <= {"crmgraph.testing"}, set(imports)


def examples() -> list[tuple[int, str]]:
    """(line, code) of every ```python block of docs/plugins.md, in order."""
    text = DOCS.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, found.start(1)) + 1, found.group(1))
        for found in re.finditer(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    ]


def test_every_example_runs() -> None:
    """The examples run, top to bottom, as the loyalty plugin's modules would:
    in one namespace that starts with crmgraph's public names and the loyalty
    plugin's own (its guards, ``ledger``, ...), which the examples are taken
    from. Their ``from crmgraph import ...`` lines must name public names.
    An example that is part of a function's body (a top-level ``await`` or
    ``return``) is compiled as one, not run."""
    require_loyalty()
    from crmgraph_loyalty import plugin as loyalty

    namespace: dict[str, object] = {n: v for n, v in vars(loyalty).items() if not n.startswith("_")}
    namespace |= {name: getattr(crmgraph, name) for name in crmgraph.__all__}
    namespace["__file__"] = loyalty.__file__
    found = examples()
    assert len(found) >= 20
    ran = 0
    for line, code in found:
        where = f"docs/plugins.md:{line}"
        try:
            compiled = compile(code, where, "exec")
        except SyntaxError:
            body = "".join(f"    {row}\n" for row in code.splitlines())
            compile(f"async def example():\n{body}", where, "exec")  # a body: compiles
            continue
        try:
            exec(compiled, namespace)
        except Exception as exc:
            pytest.fail(f"the example at {where} fails: {exc!r}", pytrace=False)
        ran += 1
    assert ran >= len(found) - 3
