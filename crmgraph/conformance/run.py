"""``check_plugin``: load, contract suite, schema diff, one report.

The contract suite runs against a temporary SQLite database through two
in-process apps on it (compiled reads on, and off for the comparison); a
check that cannot go on (a request refused, a plugin raising) is reported
failed under its own name and the others still run."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from crmgraph.conformance import data_checks, lifecycle_checks, read_checks, schema_diff
from crmgraph.conformance.harness import Running, migrated_copies, running, settings_for
from crmgraph.conformance.loading import load_alone, load_with_builtins, resolve
from crmgraph.conformance.report import Report
from crmgraph.conformance.subject import Subject
from crmgraph.customer_types import CustomerType
from crmgraph.plugin_errors import PluginError


def check_plugin(
    target: str,
    against: Path | None = None,
    allow_breaking: bool = False,
    save: Path | None = None,
) -> Report:
    """Check one plugin (a module path, an entry point name or a distribution
    name). Call it from a plain (not async) test: it runs its own event loop."""
    module = resolve(target)
    report = Report(module)
    stage = "load.alone"
    try:
        load_alone(module)
        report.passed(stage)
        stage = "load.with-builtins"
        loaded = load_with_builtins(module)
        report.passed(stage)
    except PluginError as exc:
        report.failed(stage, str(exc))
        return report
    except Exception as exc:  # pluggy's own validation, a schema that does not build
        report.failed(stage, f"plugin {module!r}: {exc!r}")
        return report
    if save is not None:
        save.write_text(loaded.sdl + "\n", encoding="utf-8")
    schema_diff.diff(report, module, loaded.sdl, against, allow_breaking)
    if loaded.types:
        try:
            asyncio.run(contract(report, module, loaded.types))
        except Exception as exc:  # the plugin's migrations, the app's start-up
            report.failed("contract", f"the app with plugin {module!r} did not start: {exc!r}")
    else:
        report.skipped("contract", "the plugin declares no customer type")
    return report


def assert_conforms(target: str, against: Path | None = None, allow_breaking: bool = False) -> None:
    """For a plugin's own test suite: fails with every failed check named."""
    report = check_plugin(target, against, allow_breaking)
    assert report.ok, report.text()


async def contract(report: Report, module: str, types: tuple[CustomerType, ...]) -> None:
    with tempfile.TemporaryDirectory(prefix="crmgraph-check-") as folder:
        main, *empties = await migrated_copies(Path(folder), module, 1 + len(types))
        # both count their statements: one tells the compiled path answered
        counted = {"expose_sql_count": True}
        resolver_settings = settings_for(
            main, module, compiled_reads=False, direct_reads=False, **counted
        )
        async with (
            running(settings_for(main, module, compiled_reads=True, **counted)) as app,
            running(resolver_settings) as resolver,
        ):
            for descriptor, empty in zip(types, empties, strict=True):
                subject = Subject(descriptor, app)
                await check_type(report, subject, resolver, empty, module)


async def check_type(
    report: Report, subject: Subject, resolver: Running, empty: Path, module: str
) -> None:
    """Every contract check of one type, in order; one that raises is failed
    under its own name and the next one runs."""
    checks: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("create", partial(lifecycle_checks.check_create, report, subject)),
        ("update", partial(lifecycle_checks.check_update, report, subject)),
        ("transitions", partial(lifecycle_checks.check_transitions, report, subject)),
        ("merge-undo", partial(data_checks.check_merge, report, subject)),
        ("erasure", partial(data_checks.check_erasure, report, subject)),
        ("csv-round-trip", partial(data_checks.check_csv, report, subject, empty, module)),
        ("agent", partial(read_checks.check_agent, report, subject)),
        # last: the customers every other check left, in every state
        ("compiled-reads", partial(read_checks.check_compiled, report, subject, resolver)),
    ]
    for name, check in checks:
        try:
            await check()
        except Exception as exc:
            report.failed(f"{subject.name}.{name}", f"{type(exc).__name__}: {exc}")
