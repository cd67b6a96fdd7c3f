"""Line charts as inline SVG, drawn on the server (no chart library, no script).

The SVG is built from numbers and fixed labels only, never from user text, so it is safe to
insert unescaped (`Markup`).
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

WIDTH = 600
HEIGHT = 140
PAD_LEFT = 44
PAD_BOTTOM = 18
PAD_TOP = 8


def _label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:g}"


def line_chart(points: Sequence[tuple[int, float]], *, start_ms: int, end_ms: int, label: str,
               ticks: Sequence[tuple[int, str]] = ()) -> Markup:
    """A chart of `points` (epoch ms, value) over [start_ms, end_ms], with `label` as its
    accessible name and `ticks` (epoch ms, text) under the x axis."""
    top = max((v for _, v in points), default=0.0)
    top = max(1.0, top * 1.1)
    span = max(1, end_ms - start_ms)
    plot_w = WIDTH - PAD_LEFT - 4
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP

    def x(at: int) -> float:
        return PAD_LEFT + (at - start_ms) * plot_w / span

    def y(value: float) -> float:
        return PAD_TOP + plot_h - value * plot_h / top

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{Markup.escape(label)}" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<line class="axis" x1="{PAD_LEFT}" y1="{y(0):.1f}" x2="{WIDTH - 4}" y2="{y(0):.1f}"/>',
             f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{y(0):.1f}"/>',
             f'<text class="tick" x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end">{_label(top)}</text>',
             f'<text class="tick" x="{PAD_LEFT - 4}" y="{y(0):.1f}" text-anchor="end">0</text>']
    for at, text in ticks:
        parts.append(f'<text class="tick" x="{x(at):.1f}" y="{HEIGHT - 4}" text-anchor="middle">'
                     f'{Markup.escape(text)}</text>')
    if points:
        coords = " ".join(f"{x(at):.1f},{y(v):.1f}" for at, v in points)
        parts.append(f'<polyline class="line" points="{coords}"/>')
        if len(points) == 1:
            at, v = points[0]
            parts.append(f'<circle class="dot" cx="{x(at):.1f}" cy="{y(v):.1f}" r="3"/>')
    else:
        parts.append(f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no samples yet</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
