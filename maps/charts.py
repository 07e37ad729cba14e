"""Small inline SVG charts for the dashboards: no chart library, nothing to download.

``stacked_bars`` draws counts per period split by series; ``rate_line`` draws a 0..1 rate per
period. Both return an ``<svg>`` string sized by its viewBox, so it scales with the panel.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 48


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for mult in (1, 2, 5, 10):
        if value <= mult * step:
            return float(mult * step)
    return float(10 * step)


def _frame(y_max: float, ticks: int, fmt: str, xlabels: Sequence[str]) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#999"/>']
    for i in range(ticks + 1):
        value = y_max * i / ticks
        y = HEIGHT - BOTTOM - plot_h * i / ticks
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end" fill="#555">'
            f"{fmt.format(value)}</text>"
        )
    n = max(len(xlabels), 1)
    every = max(1, n // 8)
    band = (WIDTH - LEFT - RIGHT) / n
    for i, text in enumerate(xlabels):
        if i % every == 0:
            x = LEFT + band * (i + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 12}" font-size="9" text-anchor="middle" fill="#555">'
                f"{html.escape(text)}</text>"
            )
    return parts


def _svg(parts: Sequence[str], title: str) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{html.escape(title)}" font-family="sans-serif">{"".join(parts)}</svg>'
    )


def stacked_bars(
    periods: Sequence[str], series: Mapping[str, Sequence[int]], names: Mapping[str, str], title: str
) -> str:
    """Bars per period, one stacked segment per series (e.g. incidents per week by category)."""
    for key, values in series.items():
        if len(values) != len(periods):
            raise ValueError(f"series {key!r} has {len(values)} values for {len(periods)} periods")
    totals = [sum(v[i] for v in series.values()) for i in range(len(periods))]
    y_max = _nice_max(max(totals, default=0))
    parts = _frame(y_max, 4, "{:.0f}", periods)
    plot_h = HEIGHT - TOP - BOTTOM
    band = (WIDTH - LEFT - RIGHT) / max(len(periods), 1)
    colors = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(series)}
    for i in range(len(periods)):
        base = 0.0
        for key, values in series.items():
            if not values[i]:
                continue
            h = plot_h * values[i] / y_max
            y = HEIGHT - BOTTOM - plot_h * base / y_max - h
            parts.append(
                f'<rect x="{LEFT + band * i + band * 0.1:.1f}" y="{y:.1f}" width="{band * 0.8:.1f}" '
                f'height="{h:.1f}" fill="{colors[key]}"><title>{html.escape(periods[i])} '
                f"{html.escape(names.get(key, key))}: {values[i]}</title></rect>"
            )
            base += values[i]
    x = LEFT
    for key in series:
        text = html.escape(names.get(key, key))
        parts.append(f'<rect x="{x}" y="{HEIGHT - 22}" width="10" height="10" fill="{colors[key]}"/>')
        parts.append(f'<text x="{x + 13}" y="{HEIGHT - 13}" font-size="10">{text}</text>')
        x += 22 + 11 * len(names.get(key, key))
    return _svg(parts, title)


def rate_line(periods: Sequence[str], rates: Sequence[float | None], title: str) -> str:
    """A 0..100 % line per period; None (no incidents that period) leaves a gap."""
    if len(rates) != len(periods):
        raise ValueError(f"{len(rates)} rates for {len(periods)} periods")
    parts = _frame(1.0, 4, "{:.0%}", periods)
    plot_h = HEIGHT - TOP - BOTTOM
    band = (WIDTH - LEFT - RIGHT) / max(len(periods), 1)
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, rate in enumerate(rates):
        if rate is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        x = LEFT + band * (i + 0.5)
        y = HEIGHT - BOTTOM - plot_h * max(0.0, min(1.0, rate))
        segment.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#2ca02c">'
            f"<title>{html.escape(periods[i])}: {rate:.1%}</title></circle>"
        )
    if segment:
        segments.append(segment)
    for seg in segments:
        parts.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="#2ca02c" stroke-width="2"/>')
    return _svg(parts, title)


def grouped_bars(
    groups: Sequence[str], series: Mapping[str, Sequence[float]], names: Mapping[str, str], title: str
) -> str:
    """Bars side by side per group, one per series (e.g. this week's count beside the mean of the
    weeks before, per category)."""
    for key, values in series.items():
        if len(values) != len(groups):
            raise ValueError(f"series {key!r} has {len(values)} values for {len(groups)} groups")
    y_max = _nice_max(max((v for values in series.values() for v in values), default=0))
    parts = _frame(y_max, 4, "{:g}", groups)
    plot_h = HEIGHT - TOP - BOTTOM
    band = (WIDTH - LEFT - RIGHT) / max(len(groups), 1)
    width = band * 0.8 / max(len(series), 1)
    colors = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(series)}
    for j, (key, values) in enumerate(series.items()):
        for i, value in enumerate(values):
            h = plot_h * value / y_max
            x = LEFT + band * i + band * 0.1 + width * j
            parts.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
                f'fill="{colors[key]}"><title>{html.escape(groups[i])} {html.escape(names.get(key, key))}: '
                f"{value:g}</title></rect>"
            )
    x = LEFT
    for key in series:
        text = html.escape(names.get(key, key))
        parts.append(f'<rect x="{x}" y="{HEIGHT - 22}" width="10" height="10" fill="{colors[key]}"/>')
        parts.append(f'<text x="{x + 13}" y="{HEIGHT - 13}" font-size="10">{text}</text>')
        x += 22 + 11 * len(names.get(key, key))
    return _svg(parts, title)
