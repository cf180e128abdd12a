"""Inline SVG charts for the HTML report, drawn in Python: horizontal bars, lines
over calendar months, and a heat-map grid. No script, no external file: each
function returns markup to place inside an HTML page.

Every chart is an ``<svg role="img">`` labelled by its ``<title>`` and
``<desc>``; every mark carries a ``<title>`` (a tooltip and the text a screen
reader gives) and the axes carry text labels. All text is escaped here, so
callers pass plain strings, including ones that came from the database."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

# Okabe-Ito: told apart with the common colour-vision deficiencies; beyond
# them, dash patterns keep series apart.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
BAR_COLOUR = "#0072B2"
HEAT_LOW = (247, 251, 255)
HEAT_HIGH = (8, 48, 107)
CHAR_WIDTH = 7.0  # average glyph width at the charts' 12px, for laying out labels


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def fmt(value: float) -> str:
    """A coordinate, short."""
    return f"{value:.1f}".removesuffix(".0")


def text_width(text: str) -> float:
    return len(text) * CHAR_WIDTH


def svg_open(chart_id: str, kind: str, title: str, desc: str, width: float, height: float) -> str:
    return (
        f'<svg class="chart" id="{esc(chart_id)}" data-chart="{esc(kind)}" role="img" '
        f'aria-labelledby="{esc(chart_id)}-title {esc(chart_id)}-desc" '
        f'width="{fmt(width)}" height="{fmt(height)}" viewBox="0 0 {fmt(width)} {fmt(height)}">'
        f'<title id="{esc(chart_id)}-title">{esc(title)}</title>'
        f'<desc id="{esc(chart_id)}-desc">{esc(desc)}</desc>'
    )


def label(x: float, y: float, text: str, anchor: str = "start", css: str = "") -> str:
    extra = f' class="{css}"' if css else ""
    return f'<text x="{fmt(x)}" y="{fmt(y)}" text-anchor="{anchor}"{extra}>{esc(text)}</text>'


def vertical_label(x: float, y: float, text: str) -> str:
    return (
        f'<text x="{fmt(x)}" y="{fmt(y)}" text-anchor="middle" class="axis-title" '
        f'transform="rotate(-90 {fmt(x)} {fmt(y)})">{esc(text)}</text>'
    )


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``top`` (steps of 1, 2 or 5 x 10^k)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(step, 1.0)  # counts: whole numbers
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str  # written after the bar
    tooltip: str


def bar_chart(
    chart_id: str,
    kind: str,
    title: str,
    desc: str,
    bars: list[Bar],
    axis_titles: tuple[str, str],
) -> str:
    """One horizontal bar per item, in the given order, on a common scale;
    ``axis_titles``: what the values are, what the items are."""
    label_width = min(max(max((text_width(b.label) for b in bars), default=0) + 16, 90), 240)
    note_width = min(max(max((text_width(b.note) for b in bars), default=0) + 12, 60), 320)
    plot_width, row, top, axis = 360.0, 30.0, 12.0, 52.0
    left = label_width + 22  # room for the vertical axis title
    width = left + plot_width + note_width
    height = top + row * len(bars) + axis
    ticks = nice_ticks(max((b.value for b in bars), default=0))
    scale = plot_width / ticks[-1]
    parts = [svg_open(chart_id, kind, title, desc, width, height)]
    for i, bar in enumerate(bars):
        y = top + i * row
        length = bar.value * scale
        parts.append(
            f'<g class="bar"><title>{esc(bar.tooltip)}</title>'
            + label(left - 8, y + 19, bar.label, "end")
            + f'<rect x="{fmt(left)}" y="{fmt(y + 5)}" width="{fmt(length)}" height="20" '
            f'fill="{BAR_COLOUR}"/>'
            + label(left + length + 6, y + 19, bar.note, css="note")
            + "</g>"
        )
    base = top + row * len(bars) + 4
    parts.append(
        f'<g class="axis"><line x1="{fmt(left)}" y1="{fmt(base)}" '
        f'x2="{fmt(left + plot_width)}" y2="{fmt(base)}"/>'
    )
    for tick in ticks:
        x = left + tick * scale
        parts.append(
            f'<line x1="{fmt(x)}" y1="{fmt(base)}" x2="{fmt(x)}" y2="{fmt(base + 4)}"/>'
            + label(x, base + 16, f"{tick:g}", "middle")
        )
    parts.append("</g>")
    value_title, item_title = axis_titles
    parts.append(label(left + plot_width / 2, base + 38, value_title, "middle", "axis-title"))
    parts.append(vertical_label(12, top + row * len(bars) / 2, item_title))
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]  # one per x label; None: no value there


def line_chart(
    chart_id: str,
    kind: str,
    title: str,
    desc: str,
    x_labels: list[str],
    series: list[Series],
    y_range: tuple[float, float],
    axis_titles: tuple[str, str],
    value_format: str = "{:.2f}",
) -> str:
    """A line per series across the x labels; a line joins the points a series
    has (a missing value is skipped, not drawn as zero); markers show the points."""
    left, right, top, bottom = 64.0, 170.0, 16.0, 64.0
    plot_width = min(max(360.0, 48.0 * len(x_labels)), 680.0)
    plot_height = 220.0
    width, height = left + plot_width + right, top + plot_height + bottom
    low, high = y_range

    def x_at(i: int) -> float:
        if len(x_labels) == 1:
            return left + plot_width / 2
        return left + i * plot_width / (len(x_labels) - 1)

    def y_at(value: float) -> float:
        return top + plot_height - (value - low) / (high - low) * plot_height

    parts = [svg_open(chart_id, kind, title, desc, width, height), '<g class="axis">']
    for tick in range(math.ceil(low), math.floor(high) + 1):
        y = y_at(tick)
        parts.append(
            f'<line class="grid" x1="{fmt(left)}" y1="{fmt(y)}" '
            f'x2="{fmt(left + plot_width)}" y2="{fmt(y)}"/>'
            + label(left - 8, y + 4, str(tick), "end")
        )
    base = top + plot_height
    every = max(1, math.ceil(len(x_labels) / 12))  # at most about 12 labels
    for i, text in enumerate(x_labels):
        x = x_at(i)
        parts.append(f'<line x1="{fmt(x)}" y1="{fmt(base)}" x2="{fmt(x)}" y2="{fmt(base + 4)}"/>')
        if i % every == 0:
            parts.append(label(x, base + 18, text, "middle"))
    parts.append(
        f'<line x1="{fmt(left)}" y1="{fmt(base)}" x2="{fmt(left + plot_width)}" '
        f'y2="{fmt(base)}"/></g>'
    )
    x_title, y_title = axis_titles
    parts.append(label(left + plot_width / 2, base + 46, x_title, "middle", "axis-title"))
    parts.append(vertical_label(16, top + plot_height / 2, y_title))
    for n, item in enumerate(series):
        colour, dash = PALETTE[n % len(PALETTE)], DASHES[n // len(PALETTE) % len(DASHES)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        points = [(i, v) for i, v in enumerate(item.values) if v is not None]
        path = " ".join(
            f"{'M' if k == 0 else 'L'}{fmt(x_at(i))} {fmt(y_at(v))}"
            for k, (i, v) in enumerate(points)
        )
        parts.append(
            f'<g class="series"><title>{esc(item.name)}</title>'
            f'<path class="line" d="{path}" fill="none" stroke="{colour}" stroke-width="2.5"'
            f"{dashed}/>"
        )
        for i, v in points:
            parts.append(
                f'<circle class="point" cx="{fmt(x_at(i))}" cy="{fmt(y_at(v))}" r="4" '
                f'fill="{colour}"><title>{esc(item.name)}, {esc(x_labels[i])}: '
                f"{esc(value_format.format(v))}</title></circle>"
            )
        legend_y = top + 8 + n * 20
        legend_x = left + plot_width + 20
        parts.append(
            f'<line class="swatch" x1="{fmt(legend_x)}" y1="{fmt(legend_y)}" '
            f'x2="{fmt(legend_x + 22)}" y2="{fmt(legend_y)}" stroke="{colour}" '
            f'stroke-width="2.5"{dashed}/>' + label(legend_x + 28, legend_y + 4, item.name) + "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Cell:
    value: float  # 0..1: the shade
    text: str
    tooltip: str


def shade(value: float) -> tuple[str, str]:
    """Fill and a readable text colour for a share from 0 to 1."""
    t = min(max(value, 0.0), 1.0)
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(HEAT_LOW, HEAT_HIGH, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}", "#ffffff" if t > 0.5 else "#1a1a1a"


def heat_map(
    chart_id: str,
    kind: str,
    title: str,
    desc: str,
    rows: list[tuple[str, list[Cell]]],
    column_labels: list[str],
    axis_titles: tuple[str, str],
) -> str:
    """A grid of shaded cells, one row per label; rows may be shorter than others."""
    cell_w, cell_h = 46.0, 26.0
    x_title, y_title = axis_titles
    names = [name for name, _ in rows]
    left = max(text_width(text) for text in [*names, y_title]) * 1.1 + 24
    top = 48.0
    width = max(left + cell_w * len(column_labels) + 12, left + 220)
    legend_y = top + cell_h * len(rows) + 16
    height = legend_y + 40
    parts = [
        svg_open(chart_id, kind, title, desc, width, height),
        label(left + cell_w * len(column_labels) / 2, 16, x_title, "middle", "axis-title"),
        # the rows' title heads the row labels, as in a table
        label(left - 8, top - 8, y_title, "end", "axis-title"),
    ]
    for j, text in enumerate(column_labels):
        parts.append(label(left + j * cell_w + cell_w / 2, top - 8, text, "middle"))
    for i, (name, cells) in enumerate(rows):
        y = top + i * cell_h
        parts.append(label(left - 8, y + cell_h / 2 + 4, name, "end"))
        for j, cell in enumerate(cells):
            x = left + j * cell_w
            fill, ink = shade(cell.value)
            parts.append(
                f'<g class="cell"><title>{esc(cell.tooltip)}</title>'
                f'<rect x="{fmt(x)}" y="{fmt(y)}" width="{fmt(cell_w - 2)}" '
                f'height="{fmt(cell_h - 2)}" fill="{fill}"/>'
                f'<text x="{fmt(x + cell_w / 2 - 1)}" y="{fmt(y + cell_h / 2 + 4)}" '
                f'text-anchor="middle" fill="{ink}">{esc(cell.text)}</text></g>'
            )
    parts.append('<g class="legend">' + label(left, legend_y + 14, "0%", "end"))
    for k in range(11):
        fill, _ = shade(k / 10)
        parts.append(
            f'<rect x="{fmt(left + 6 + k * 16)}" y="{fmt(legend_y + 2)}" width="16" '
            f'height="16" fill="{fill}"/>'
        )
    parts.append(label(left + 6 + 11 * 16 + 6, legend_y + 14, "100%") + "</g></svg>")
    return "".join(parts)
