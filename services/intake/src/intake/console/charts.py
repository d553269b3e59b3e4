"""Small SVG charts for the console, drawn on the server as inline markup: no script, no CDN, nothing the strict CSP
would block (colours come from classes in console.css, never from `style` attributes). Pure: numbers in, markup
out, so the geometry and the escaping are unit-tested.

Every chart is `role="img"` with a `<title>` and a `<desc>` that carry its numbers as text; the page adds a table
beside it. Each mark also carries its number in `data-value`, which the browser test compares with the API."""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

WIDTH = 720  # bar charts; line charts are narrower, two fit side by side
LABEL_WIDTH = 180  # bar labels, left of the bars
VALUE_WIDTH = 260  # the numbers written after each bar
ROW_HEIGHT = 30
BAR_HEIGHT = 18
LABEL_CHARS = 20  # longer labels are cut (the full text stays in the row's <title>)
EMPTY_HEIGHT = 90
NO_DATA = "No data yet"
_ID = re.compile(r"[a-z][a-z0-9-]{0,40}")


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str = ""  # written after the number, e.g. a conversion rate


@dataclass(frozen=True)
class StackedBar:
    label: str
    parts: tuple[tuple[str, float], ...]  # (part name, value), drawn left to right
    key: str = ""  # a stable identifier for the row (`data-key`), e.g. a partner id
    note: str = ""


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[tuple[datetime, float], ...]  # oldest first


def number(value: float) -> str:
    """Counts print as integers, anything else with one decimal."""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _cut(label: str, limit: int = LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _slug(name: str) -> str:
    """A part or series name as a CSS class fragment: whatever the name holds, the class stays inert."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "part"


def _open(chart_id: str, title: str, desc: str, size: tuple[int, int], kind: str) -> list[str]:
    if not _ID.fullmatch(chart_id):
        raise ValueError(f"not a chart id: {chart_id!r}")
    width, height = size
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{chart_id}" class="chart chart-{kind}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]


def empty_chart(chart_id: str, title: str, width: int = WIDTH, message: str = NO_DATA) -> Markup:
    """What every chart draws when it has nothing to show: a framed "no data yet", said in the desc too."""
    parts = _open(chart_id, title, f"{message}.", (width, EMPTY_HEIGHT), "empty")
    parts.append(f'<rect class="chart-frame" x="0.5" y="0.5" width="{width - 1}" height="{EMPTY_HEIGHT - 1}"/>')
    parts.append(
        f'<text class="chart-empty-text" x="{width / 2}" y="{EMPTY_HEIGHT / 2}" text-anchor="middle" '
        f'dominant-baseline="middle">{escape(message)}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def _bar_length(value: float, largest: float) -> float:
    room = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    return round(room * max(value, 0.0) / largest, 2) if largest > 0 else 0.0


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar]) -> Markup:
    """Horizontal bars whose lengths are proportional to the values (the largest spans the room)."""
    if not bars or all(bar.value <= 0 for bar in bars):
        return empty_chart(chart_id, title)
    desc = "; ".join(f"{bar.label}: {number(bar.value)}{bar.note}" for bar in bars)
    height = ROW_HEIGHT * len(bars) + 8
    parts = _open(chart_id, title, desc, (WIDTH, height), "bars")
    largest = max(bar.value for bar in bars)
    for row, bar in enumerate(bars):
        top = 4 + row * ROW_HEIGHT
        length = _bar_length(bar.value, largest)
        parts += [
            f'<g class="bar" data-label="{_attr(bar.label)}" data-value="{_attr(number(bar.value))}">',
            f"<title>{escape(bar.label)}: {escape(number(bar.value))}{escape(bar.note)}</title>",
            *_row_label(bar.label, top),
            f'<rect class="bar-fill" x="{LABEL_WIDTH}" y="{top + 3}" width="{length}" height="{BAR_HEIGHT}"/>',
            _row_value(f"{number(bar.value)}{bar.note}", LABEL_WIDTH + length + 6, top),
            "</g>",
        ]
    parts.append("</svg>")
    return Markup("".join(parts))


def _row_label(label: str, top: int) -> list[str]:
    return [
        f'<text class="bar-label" x="{LABEL_WIDTH - 8}" y="{top + 3 + BAR_HEIGHT / 2}" text-anchor="end" '
        f'dominant-baseline="middle">{escape(_cut(label))}</text>'
    ]


def _row_value(text: str, x: float, top: int) -> str:
    return (
        f'<text class="bar-value" x="{round(x, 2)}" y="{top + 3 + BAR_HEIGHT / 2}" '
        f'dominant-baseline="middle">{escape(text)}</text>'
    )


def stacked_bar_chart(chart_id: str, title: str, bars: Sequence[StackedBar]) -> Markup:
    """One bar per row, split into its parts; bar lengths are proportional to the rows' totals, so volume and
    the share of each part both show. A legend names the parts (colour is never the only cue: the row's text
    spells every number out)."""
    totals = [sum(value for _, value in bar.parts) for bar in bars]
    if not bars or max(totals) <= 0:
        return empty_chart(chart_id, title)
    names = list(dict.fromkeys(name for bar in bars for name, _ in bar.parts))
    desc = "; ".join(f"{bar.label}: {_spelled(bar)}" for bar in bars)
    height = 30 + ROW_HEIGHT * len(bars) + 4
    parts = _open(chart_id, title, desc, (WIDTH, height), "stacked")
    parts += _legend(names, 4)
    largest = max(totals)
    for row, (bar, total) in enumerate(zip(bars, totals, strict=True)):
        parts += _stacked_row(bar, 30 + row * ROW_HEIGHT, largest, total)
    parts.append("</svg>")
    return Markup("".join(parts))


def _spelled(bar: StackedBar) -> str:
    return ", ".join(f"{number(value)} {name}" for name, value in bar.parts) + bar.note


def _legend(names: Sequence[str], top: int) -> list[str]:
    parts, x = ['<g class="legend">'], LABEL_WIDTH
    for name in names:
        parts.append(f'<rect class="part-{_slug(name)}" x="{x}" y="{top + 3}" width="12" height="12"/>')
        parts.append(f'<text class="legend-text" x="{x + 16}" y="{top + 13}">{escape(name)}</text>')
        x += 28 + 8 * len(name)
    parts.append("</g>")
    return parts


def _stacked_row(bar: StackedBar, top: int, largest: float, total: float) -> list[str]:
    parts = [
        f'<g class="bar" data-key="{_attr(bar.key)}" data-label="{_attr(bar.label)}" '
        f'data-value="{_attr(number(total))}">',
        f"<title>{escape(bar.label)}: {escape(_spelled(bar))}</title>",
        *_row_label(bar.label, top),
    ]
    x = float(LABEL_WIDTH)
    for name, value in bar.parts:
        length = _bar_length(value, largest)
        parts.append(
            f'<rect class="part part-{_slug(name)}" data-part="{_attr(name)}" data-value="{_attr(number(value))}" '
            f'x="{round(x, 2)}" y="{top + 3}" width="{length}" height="{BAR_HEIGHT}"/>'
        )
        x += length
    short = " · ".join(f"{number(value)} {name}" for name, value in bar.parts if value) + bar.note
    parts += [_row_value(short, x + 6, top), "</g>"]
    return parts


# -- time series ------------------------------------------------------------------------------------------

LINE_WIDTH = 600
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP = 52, 12, 10
PLOT_HEIGHT = 110
LEGEND_TOP = PLOT_TOP + PLOT_HEIGHT + 44  # below the time axis
LEGEND_COLUMNS, LEGEND_ROW = 3, 20


def nice_ceiling(value: float) -> float:
    """The smallest round number at or above `value` (at least 1), so the top and middle gridlines read well."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(step * power for step in (1, 2, 4, 5, 6, 8, 10) if step * power >= value))


def _segments(points: Sequence[tuple[datetime, float]], gap: timedelta) -> list[list[tuple[datetime, float]]]:
    """Splits a series where samples are missing (a service was unreachable): the line breaks, it does not lie."""
    runs: list[list[tuple[datetime, float]]] = []
    for point in points:
        if runs and point[0] - runs[-1][-1][0] <= gap:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def line_chart(
    chart_id: str, title: str, series: Sequence[Series], start: datetime, end: datetime, gap: timedelta
) -> Markup:
    """Lines of values over [start, end], one per series, on a shared axis from 0; the latest value of each is
    marked with a dot and written in the legend. Series with no points are left out."""
    drawn = [s for s in series if s.points]
    if not drawn or end <= start:
        return empty_chart(chart_id, title, LINE_WIDTH)
    desc = "; ".join(_series_text(s) for s in drawn) + f" (from {_clock(start)} to {_clock(end)} UTC)"
    legend_rows = math.ceil(len(drawn) / LEGEND_COLUMNS)
    parts = _open(chart_id, title, desc, (LINE_WIDTH, LEGEND_TOP + LEGEND_ROW * (legend_rows - 1) + 10), "lines")
    top_value = nice_ceiling(max(value for s in drawn for _, value in s.points))
    plot = _Plot(start, end, top_value)
    parts += plot.axes()
    for index, one in enumerate(drawn):
        parts += plot.series(one, index, gap)
    parts += _line_legend(drawn)
    parts.append("</svg>")
    return Markup("".join(parts))


def _series_text(series: Series) -> str:
    values = [value for _, value in series.points]
    at, latest = series.points[-1]
    return (
        f"{series.name}: {number(latest)} at {_clock(at)} (lowest {number(min(values))}, "
        f"highest {number(max(values))}, {len(values)} samples)"
    )


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M")


@dataclass(frozen=True)
class _Plot:
    start: datetime
    end: datetime
    top_value: float

    @property
    def width(self) -> float:
        return LINE_WIDTH - PLOT_LEFT - PLOT_RIGHT

    def x(self, at: datetime) -> float:
        share = (at - self.start) / (self.end - self.start)
        return round(PLOT_LEFT + self.width * min(max(share, 0.0), 1.0), 2)

    def y(self, value: float) -> float:
        return round(PLOT_TOP + PLOT_HEIGHT * (1 - max(value, 0.0) / self.top_value), 2)

    def axes(self) -> list[str]:
        parts = ['<g class="axes">']
        for value in (0.0, self.top_value / 2, self.top_value):
            y = self.y(value)
            parts.append(f'<line class="grid" x1="{PLOT_LEFT}" y1="{y}" x2="{LINE_WIDTH - PLOT_RIGHT}" y2="{y}"/>')
            parts.append(
                f'<text class="tick" x="{PLOT_LEFT - 6}" y="{y}" text-anchor="end" '
                f'dominant-baseline="middle">{number(value)}</text>'
            )
        bottom = PLOT_TOP + PLOT_HEIGHT + 16
        middle = self.start + (self.end - self.start) / 2
        for at, anchor in ((self.start, "start"), (middle, "middle"), (self.end, "end")):
            parts.append(
                f'<text class="tick" x="{self.x(at)}" y="{bottom}" text-anchor="{anchor}">{_clock(at)} UTC</text>'
            )
        parts.append("</g>")
        return parts

    def series(self, series: Series, index: int, gap: timedelta) -> list[str]:
        at, latest = series.points[-1]
        parts = [
            f'<g class="series series-{index % 6}" data-series="{_attr(series.name)}" '
            f'data-points="{len(series.points)}" data-value="{_attr(number(latest))}">',
            f"<title>{escape(_series_text(series))}</title>",
        ]
        for run in _segments(series.points, gap):
            coords = " ".join(f"{self.x(t)},{self.y(v)}" for t, v in run)
            parts.append(f'<polyline class="line" points="{coords}"/>')
        parts.append(f'<circle class="dot" cx="{self.x(at)}" cy="{self.y(latest)}" r="3.5"/>')
        parts.append("</g>")
        return parts


def _line_legend(series: Sequence[Series]) -> list[str]:
    """Each series' name and latest value, in columns under the plot (the text, not the colour, tells them apart)."""
    parts, column_width = ['<g class="legend">'], (LINE_WIDTH - PLOT_LEFT) // LEGEND_COLUMNS
    for index, one in enumerate(series):
        row, column = divmod(index, LEGEND_COLUMNS)
        x, y = PLOT_LEFT + column * column_width, LEGEND_TOP + row * LEGEND_ROW
        label = f"{_cut(one.name, 16)}: {number(one.points[-1][1])}"
        parts.append(f'<line class="series-{index % 6} key" x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}"/>')
        parts.append(f'<text class="legend-text" x="{x + 24}" y="{y}">{escape(label)}</text>')
    parts.append("</g>")
    return parts
