"""What ``crmgraph plugin check`` found: one named result per check, printed
for a person (a rich table) or as JSON for CI. The checks only fill a
:class:`Report`; how it is shown is decided here, once."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAILED


@dataclass
class Report:
    plugin: str
    checks: list[Check] = field(default_factory=list)

    def passed(self, name: str, detail: str = "") -> None:
        self.checks.append(Check(name, PASSED, detail))

    def failed(self, name: str, reason: str) -> None:
        self.checks.append(Check(name, FAILED, reason))

    def skipped(self, name: str, reason: str) -> None:
        self.checks.append(Check(name, SKIPPED, reason))

    def outcome(self, name: str, problems: list[str], detail: str = "") -> None:
        """One check from the problems it found: none is a pass."""
        if problems:
            self.failed(name, "; ".join(problems))
        else:
            self.passed(name, detail)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_json(self) -> str:
        body: dict[str, Any] = {
            "plugin": self.plugin,
            "ok": self.ok,
            "checks": [asdict(c) for c in self.checks],
        }
        return json.dumps(body, indent=2)

    def text(self) -> str:
        """Plain lines (for an assertion message): the failures, then a count."""
        lines = [f"FAILED {c.name}: {c.reason}" for c in self.failures]
        counts = {s: sum(c.status == s for c in self.checks) for s in (PASSED, FAILED, SKIPPED)}
        lines.append(f"{self.plugin}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        return "\n".join(lines)

    def print(self, console: Console | None = None) -> None:
        console = console or Console()
        table = Table(title=f"crmgraph plugin check: {self.plugin}", show_lines=False)
        table.add_column("check", overflow="fold")
        table.add_column("result")
        table.add_column("reason", overflow="fold")
        colours = {PASSED: "green", FAILED: "bold red", SKIPPED: "yellow"}
        for c in self.checks:
            table.add_row(c.name, f"[{colours[c.status]}]{c.status}[/]", c.reason)
        console.print(table)
        console.print(self.text().splitlines()[-1])
