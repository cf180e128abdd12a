"""The report as one self-contained HTML page: inline CSS and inline SVG charts
(:mod:`crmgraph.analytics.report_svg`), no script and nothing fetched, so the
file opens offline; a Content-Security-Policy says so to the browser too.

Sections: the lifecycle funnel (a bar chart and a table per customer type with
stage entries, then per phase), satisfaction (a line per channel by month,
tables by channel and by outcome) and cohort retention (a heat map). Every
text from the database is escaped."""

from __future__ import annotations

from html import escape

from crmgraph.analytics.cohorts import Cohort
from crmgraph.analytics.funnel import KindFunnel, PhaseFunnel
from crmgraph.analytics.report import (
    PHASE_HEADERS,
    SATISFACTION_HEADERS,
    STAGE_HEADERS,
    ReportData,
    key_label,
    percent,
    phase_cells,
    satisfaction_cells,
    stage_cells,
)
from crmgraph.analytics.report_svg import Bar, Cell, Series, bar_chart, heat_map, line_chart
from crmgraph.analytics.satisfaction import SatisfactionRow

CSP = "default-src 'none'; style-src 'unsafe-inline'"
STYLE = """
body { font-family: system-ui, sans-serif; color: #1a1a1a; background: #fff;
       margin: 0 auto; max-width: 1100px; padding: 1.5rem; line-height: 1.4; }
h1 { margin-bottom: 0.2rem; }
.meta { color: #444; margin-top: 0; }
nav a { margin-right: 1rem; color: #0b5394; }
section { margin-top: 2.5rem; }
figure { margin: 1rem 0; }
figcaption { color: #444; font-size: 0.9rem; margin-top: 0.3rem; }
svg.chart { max-width: 100%; height: auto; font-size: 12px; }
svg.chart .axis line { stroke: #555; }
svg.chart .axis line.grid { stroke: #ddd; }
svg.chart .axis-title { font-weight: 600; }
svg.chart .note { fill: #333; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.7rem; text-align: left; }
th { background: #f3f5f8; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.empty { color: #666; font-style: italic; }
"""


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def table(caption: str, headers: list[str], rows: list[list[str]], numeric_from: int) -> str:
    """A data table; columns from ``numeric_from`` on are right-aligned numbers."""

    def cells(row: list[str], tag: str) -> str:
        out = []
        for i, value in enumerate(row):
            css = ' class="num"' if i >= numeric_from else ""
            scope = ' scope="col"' if tag == "th" else ""
            if tag == "td" and i == 0:
                out.append(f'<th scope="row">{esc(value)}</th>')
            else:
                out.append(f"<{tag}{scope}{css}>{esc(value)}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    body = "".join(cells(row, "td") for row in rows)
    return (
        f"<table><caption>{esc(caption)}</caption><thead>{cells(headers, 'th')}</thead>"
        f"<tbody>{body}</tbody></table>"
    )


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


def kind_section(kind: KindFunnel) -> str:
    heading = f'<h3 id="funnel-{esc(kind.kind)}">{esc(kind.kind)}</h3>'
    if not any(stage.entered or stage.current for stage in kind.stages):
        return heading + '<p class="empty">No stage entries in the period.</p>'
    bars = [
        Bar(
            stage.label,
            stage.entered,
            f"{stage.entered} · conversion {percent(stage.conversion_rate)}",
            f"{stage.label} ({stage.phase}): {stage.entered} entered, {stage.current} now, "
            f"conversion {percent(stage.conversion_rate)}, "
            f"drop-off {percent(stage.drop_off_rate)}",
        )
        for stage in kind.stages
    ]
    chart = bar_chart(
        f"chart-funnel-{kind.kind}",
        f"funnel-{kind.kind}",
        f"Lifecycle funnel: {kind.kind}",
        f"Customers of type {kind.kind} who entered each stage in the period.",
        bars,
        ("customers who entered the stage", "stage"),
    )
    rows = [stage_cells(stage) for stage in kind.stages]
    headers = list(STAGE_HEADERS)
    return (
        heading
        + figure(chart, f"{kind.kind}: entries per stage, in lifecycle order, with conversion.")
        + table(f"Funnel · {kind.kind}", headers, rows, numeric_from=2)
    )


def phase_section(phases: list[PhaseFunnel]) -> str:
    bars = [
        Bar(
            phase.phase,
            phase.entered,
            f"{phase.entered} · conversion {percent(phase.conversion_rate)}",
            f"{phase.phase}: {phase.entered} entered, {phase.current} now, "
            f"{phase.advanced} advanced, {phase.dropped_off} dropped off",
        )
        for phase in phases
    ]
    chart = bar_chart(
        "chart-funnel-phases",
        "funnel-phases",
        "Lifecycle funnel by phase",
        "Customers of the report's types who entered a stage of each phase in the period.",
        bars,
        ("customers who entered the phase", "phase"),
    )
    headers = list(PHASE_HEADERS)
    rows = [phase_cells(phase) for phase in phases]
    return (
        '<h3 id="funnel-phases">By phase</h3>'
        + figure(chart, "Phases compare the types: entries per phase, and the share that advanced.")
        + table("Funnel by phase", headers, rows, numeric_from=1)
    )


def month_range(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last``."""
    year, month = int(first[:4]), int(first[5:7])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def satisfaction_chart(rows: list[SatisfactionRow]) -> str:
    if not rows:
        return '<p class="empty">No rated interactions in the period.</p>'
    months = month_range(min(r.period or "" for r in rows), max(r.period or "" for r in rows))
    averages: dict[str, dict[str, float]] = {}
    for row in rows:
        averages.setdefault(key_label(row.key), {})[row.period or ""] = row.average
    series = [Series(name, [values.get(m) for m in months]) for name, values in averages.items()]
    chart = line_chart(
        "chart-satisfaction",
        "satisfaction",
        "Average satisfaction by channel and month",
        "Average rating (1 to 5) of rated interactions, one line per channel, by calendar month "
        "in UTC.",
        months,
        series,
        (1.0, 5.0),
        ("month", "average rating (1-5)"),
    )
    return figure(chart, "Satisfaction over time: a line per channel; points are monthly averages.")


def satisfaction_table(caption: str, grouping: str, rows: list[SatisfactionRow]) -> str:
    headers = [grouping, *SATISFACTION_HEADERS[:-1], "Satisfied (4-5)"]
    body = [satisfaction_cells(r) for r in rows]
    return table(caption, headers, body, numeric_from=1)


def cohort_chart(cohorts: list[Cohort]) -> str:
    if not cohorts:
        return '<p class="empty">No customers acquired in the period.</p>'
    offsets = max(len(c.months) for c in cohorts)
    rows = [
        (
            f"{c.month} ({c.size})",
            [
                Cell(
                    m.rate,
                    f"{m.rate * 100:.0f}%",
                    f"acquired {c.month}, month +{m.month_offset}: {m.active} of {c.size} "
                    f"active ({percent(m.rate)})",
                )
                for m in c.months
            ],
        )
        for c in cohorts
    ]
    chart = heat_map(
        "chart-cohorts",
        "cohorts",
        "Cohort retention",
        "Share of each month's new customers with an interaction in each later month.",
        rows,
        [f"+{k}" for k in range(offsets)],
        ("months after acquisition", "month acquired (customers)"),
    )
    return figure(
        chart,
        "Cohort retention: rows are the month customers were acquired (cohort size in "
        "brackets), columns the months after; darker is a larger share active.",
    )


def page(data: ReportData) -> str:
    title = f"crmgraph report · {data.period}"
    funnel = "".join(kind_section(kind) for kind in data.funnel.kinds)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>crmgraph report</h1>"
        f'<p class="meta">Period: {esc(data.period)} · {esc(data.filters)} · generated '
        f"{esc(data.generated_at.strftime('%Y-%m-%d %H:%M UTC'))}</p>"
        '<nav aria-label="sections"><a href="#funnel">Lifecycle funnel</a>'
        '<a href="#satisfaction">Satisfaction</a><a href="#cohorts">Cohort retention</a></nav>'
        "</header><main>"
        '<section aria-labelledby="funnel"><h2 id="funnel">Lifecycle funnel</h2>'
        f"{funnel}{phase_section(data.funnel.phases)}</section>"
        '<section aria-labelledby="satisfaction"><h2 id="satisfaction">Satisfaction</h2>'
        f"{satisfaction_chart(data.by_channel.over_time)}"
        f"{satisfaction_table('Satisfaction by channel', 'Channel', data.by_channel.overall)}"
        f"{satisfaction_table('Satisfaction by outcome', 'Outcome', data.by_outcome.overall)}"
        "</section>"
        '<section aria-labelledby="cohorts"><h2 id="cohorts">Cohort retention</h2>'
        f"{cohort_chart(data.cohorts)}</section>"
        "</main></body></html>\n"
    )
