"""The report in a terminal: rich tables of the lifecycle funnel (per type and
per phase) and of satisfaction (by channel and by outcome).

Text from the database or from plugins goes into cells as :class:`rich.text.Text`,
so brackets in it are never read as rich markup."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from crmgraph.analytics.funnel import KindFunnel, PhaseFunnel
from crmgraph.analytics.report import (
    PHASE_HEADERS,
    SATISFACTION_HEADERS,
    STAGE_HEADERS,
    ReportData,
    phase_cells,
    satisfaction_cells,
    stage_cells,
)
from crmgraph.analytics.satisfaction import SatisfactionRow

MIN_PIPED_WIDTH = 120  # output to a file or pipe has no terminal width to respect


def console() -> Console:
    """A console for stdout; piped output gets room for the widest table."""
    default = Console()
    if default.is_terminal:
        return default
    return Console(width=max(default.width, MIN_PIPED_WIDTH))


def render(data: ReportData, out: Console) -> None:
    out.print(Text("crmgraph report", style="bold"))
    out.print(Text(f"period: {data.period} · {data.filters}"))
    out.print()
    out.rule("Lifecycle funnel")
    for kind in data.funnel.kinds:
        if any(stage.entered or stage.current for stage in kind.stages):
            out.print(kind_table(kind))
        else:
            out.print(Text(f"{kind.kind}: no stage entries in the period", style="dim"))
    out.print(phase_table(data.funnel.phases))
    out.rule("Satisfaction")
    out.print(satisfaction_table("Satisfaction by channel", "Channel", data.by_channel.overall))
    out.print(satisfaction_table("Satisfaction by outcome", "Outcome", data.by_outcome.overall))


def numeric_columns(table: Table, *names: str) -> None:
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)


def kind_table(kind: KindFunnel) -> Table:
    table = Table(title=Text(f"Funnel · {kind.kind}"), title_justify="left")
    table.add_column(STAGE_HEADERS[0])
    table.add_column(STAGE_HEADERS[1], no_wrap=True)
    numeric_columns(table, *STAGE_HEADERS[2:])
    for stage in kind.stages:
        label, *rest = stage_cells(stage)
        table.add_row(Text(label), *rest)
    return table


def phase_table(phases: list[PhaseFunnel]) -> Table:
    table = Table(title="Funnel by phase", title_justify="left")
    table.add_column(PHASE_HEADERS[0], no_wrap=True)
    numeric_columns(table, *PHASE_HEADERS[1:])
    for phase in phases:
        table.add_row(*phase_cells(phase))
    return table


def satisfaction_table(title: str, grouping: str, rows: list[SatisfactionRow]) -> Table:
    table = Table(title=title, title_justify="left", caption="satisfied: rated 4 or 5")
    table.add_column(grouping)
    numeric_columns(table, *SATISFACTION_HEADERS)
    for row in rows:
        key, *rest = satisfaction_cells(row)
        table.add_row(Text(key), *rest)
    if not rows:
        table.add_row(Text("no rated interactions in the period", style="dim"), "", "", "")
    return table
