"""Bar charts as inline SVG for report.html: text the page carries, drawn by the reader's browser.

A plotting library would cost every run a second or more of imports and drawing for
three bar charts; SVG needs nothing, stays a few KB, and its labels and values are in
the DOM (each bar's <title> holds its count). Output is a pure function of the input.
"""

from __future__ import annotations

import html

WIDTH, HEIGHT = 640, 340
LEFT, RIGHT, TOP, BOTTOM = 80, 16, 36, 96  # margins: y tick labels, title, x labels and axis name
BAR_COLOR = "#3b6ea5"


def _number(value: float) -> str:
    """A short, stable tick label: 1234567 → 1.2M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:g}"


def bar_chart(alt: str, title: str, labels: list, values: list[int], xlabel: str, ylabel: str) -> str:
    """An <svg role="img"> with one <rect> per value, its height proportional to the value."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max(values, default=0) or 1
    slot = plot_w / max(len(values), 1)
    rotate = len(labels) > 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(alt)}" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<text x="{WIDTH / 2:.1f}" y="20" text-anchor="middle" font-size="14">{html.escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#333"/>',
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(top * fraction)}</text>')
    for i, (label, value) in enumerate(zip(labels, values)):
        h = plot_h * value / top
        x, text = LEFT + slot * i, html.escape(str(label))
        parts.append(
            f'<rect x="{x + slot * 0.1:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
            f'fill="{BAR_COLOR}"><title>{text}: {value:,}</title></rect>'
        )
        cx, ly = x + slot / 2, TOP + plot_h + 16
        turn = f' transform="rotate(-45 {cx:.1f} {ly:.1f})" text-anchor="end"' if rotate else ' text-anchor="middle"'
        parts.append(f'<text x="{cx:.1f}" y="{ly:.1f}"{turn}>{text}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{html.escape(xlabel)}</text>')
    parts.append(
        f'<text x="16" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + plot_h / 2:.1f})">{html.escape(ylabel)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
