"""Throughput over time as an inline SVG bar chart (no script, no external font)."""

from __future__ import annotations

from datetime import datetime, timezone

WIDTH, HEIGHT = 720, 200
LEFT, BOTTOM, TOP = 48, 28, 12  # margins for the axis labels


def _clock(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%H:%M:%S")


def throughput_svg(bins: list[tuple[float, int]], bin_s: float) -> str:
    """Items finished per minute in each bin, as bars; '' when nothing finished yet."""
    if not bins:
        return ""
    rates = [count * 60.0 / bin_s for _, count in bins]
    peak = max(rates) or 1.0
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    bar_w = plot_w / len(bins)
    bars = "".join(
        f'<rect x="{LEFT + i * bar_w:.1f}" y="{TOP + plot_h * (1 - r / peak):.1f}" '
        f'width="{max(bar_w - 1, 0.5):.1f}" height="{plot_h * r / peak:.1f}">'
        f"<title>{_clock(start)} UTC: {r:.1f} items/min</title></rect>"
        for i, ((start, _), r) in enumerate(zip(bins, rates))
    )
    end = bins[-1][0] + bin_s
    base = TOP + plot_h
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'role="img" aria-label="items finished per minute over time">'
        f'<g class="bars">{bars}</g>'
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - 8}" y2="{base}" class="axis"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" class="axis"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end">{peak:.0f}</text>'
        f'<text x="{LEFT - 4}" y="{base}" text-anchor="end">0</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 8}">{_clock(bins[0][0])}</text>'
        f'<text x="{WIDTH - 8}" y="{HEIGHT - 8}" text-anchor="end">{_clock(end)} UTC</text>'
        f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">'
        f"items/min, bins of {bin_s:.0f} s</text></svg>"
    )
