"""``crmgraph plugin check`` (issue 26): the conformance kit passes the loyalty
package and a freshly generated scaffold, and names each fault of a plugin
that breaks the contract: a guard that fails instead of refusing, an
attribute that survives erasure, compiled reads that differ from the
resolvers, a field removed since the saved SDL. Each check runs the real app
in process on a temporary SQLite file (crmgraph.conformance)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crmgraph import scaffold
from crmgraph.conformance import check_plugin
from crmgraph.conformance.loading import load_with_builtins
from crmgraph.conformance.report import Report
from crmgraph.conformance.run import contract
from crmgraph.conformance.schema_diff import compare

BROKEN = "tests.plugins_broken.broken_contract"
ROOT = Path(__file__).resolve().parent.parent


def failed(report: Report) -> dict[str, str]:
    return {c.name: c.reason for c in report.failures}


def test_the_loyalty_package_passes(tmp_path: Path) -> None:
    saved = tmp_path / "loyalty.graphql"
    report = check_plugin("crmgraph_loyalty.plugin", save=saved)
    assert report.ok, report.text()
    names = {c.name for c in report.checks if c.status == "passed"}
    assert {
        "load.alone",
        "load.with-builtins",
        "distributor.create.valid",
        "distributor.create.invalid",
        "distributor.update.expected-version",
        "distributor.transition.authorised->active",
        "distributor.merge-undo",
        "distributor.erasure",
        "distributor.csv-round-trip",
        "distributor.compiled-reads",
        "distributor.agent.row-scope",
        "distributor.agent.guarded-attributes",
    } <= names
    assert "type Distributor implements" in saved.read_text()


def test_a_fresh_scaffold_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = scaffold.write_plugin("check_gizmos", tmp_path / "pkg")
    monkeypatch.syspath_prepend(str(target))
    # the release step: the SDL saved inside the package is the one the diff
    # finds when no --against is given (saved before it is looked for)
    released = target / "crmgraph_check_gizmos" / "crmgraph-schema.graphql"
    report = check_plugin("crmgraph_check_gizmos.plugin", save=released)
    assert report.ok, report.text()
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["check_gizmos.transition.new->qualified"] == "passed"
    assert statuses["schema.breaking-changes"] == "passed"
    assert "type CheckGizmos implements" in released.read_text()
    assert (target / "tests" / "test_conformance.py").is_file()


def removed_field_sdl(tmp_path: Path) -> Path:
    """The broken plugin's SDL as its last release saw it: Gadget had a field
    it no longer has."""
    sdl = load_with_builtins(BROKEN).sdl
    head = "type Gadget implements Customer & Node {\n"
    assert head in sdl
    saved = tmp_path / "released.graphql"
    saved.write_text(sdl.replace(head, head + "  legacyCode: String\n"))
    return saved


def test_a_broken_plugin_fails_with_each_reason_named(tmp_path: Path) -> None:
    """Through the command line, as CI runs it: exit status 1 and the JSON report."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "crmgraph", "plugin", "check", BROKEN, "--json",
         "--against", str(removed_field_sdl(tmp_path))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    body = json.loads(result.stdout)
    reasons = {c["name"]: c["reason"] for c in body["checks"] if c["status"] == "failed"}
    assert body["ok"] is False
    assert "a guard failed instead of refusing with a reason" in reasons.get(
        "gadget.transition.new->approved", ""
    ), reasons
    assert "needs_a_serial" in reasons["gadget.transition.new->approved"]
    assert "'cf-erase-serial' survives erasure" in reasons.get("gadget.erasure", ""), reasons
    assert "compiled reads answer differently from the resolvers" in reasons.get(
        "gadget.compiled-reads", ""
    ), reasons
    assert 'score: compiled "5" vs resolver 5' in reasons["gadget.compiled-reads"]
    assert "Gadget.legacyCode was removed" in reasons.get("schema.breaking-changes", ""), reasons


def test_an_intended_breaking_change_passes() -> None:
    old = "type Query { a: Int b: Int }"
    new = "type Query { a: Int }"
    refused, allowed = Report("p"), Report("p")
    compare(refused, old, new, allow_breaking=False)
    compare(allowed, old, new, allow_breaking=True)
    assert "Query.b was removed" in failed(refused)["schema.breaking-changes"]
    assert allowed.ok


def test_a_plugin_that_does_not_start_is_named() -> None:
    report = check_plugin("tests.plugins_for_tests.clashing_type")
    assert failed(report) == {
        "load.with-builtins": "plugin 'tests.plugins_for_tests.clashing_type': GraphQL type "
        "name 'Client' is already taken by 'crmgraph.plugins.client'"
    }
    missing = check_plugin("tests.plugins_broken.no_such_module")
    assert "cannot be imported" in failed(missing)["load.alone"]


def test_the_built_in_types_with_guarded_attributes_keep_the_contract() -> None:
    """The suite holds for crmgraph's own types whose attributes need a
    permission (an agent is refused them, naming each field); a guard the
    check's customer cannot satisfy (a hire date still ahead) is reported
    skipped, with its reason, not failed."""
    loaded = load_with_builtins("crmgraph_loyalty.plugin")
    types = tuple(d for d in loaded.catalog.customer_types if d.key in ("agenda", "employee"))
    report = Report("built-ins")
    asyncio.run(contract(report, "crmgraph_loyalty.plugin", types))
    assert report.ok, report.text()
    passed = {c.name for c in report.checks if c.status == "passed"}
    assert {"agenda.agent.guarded-attributes", "employee.agent.guarded-attributes"} <= passed
    skipped = {c.name: c.reason for c in report.checks if c.status == "skipped"}
    assert "hire date" in skipped["employee.transition.onboarding->active"]
