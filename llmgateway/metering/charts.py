"""Bar charts drawn on the server as SVG: no script, nothing from elsewhere (CSP allows it as markup)."""

import math
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import mark_safe

from llmgateway.metering.money import money_text

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 66, 8, 12, 28  # room for "$0.20" at the larger labels of a phone


def _nice_max(value):
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * magnitude
        if top >= value:
            return top
    return value


def _fmt(value, kind):
    if kind == "money":
        return f"${money_text(value)}"
    if kind == "percent":
        return f"{value:.0f}%"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:g}"


def bar_charts(points, specs, bucket="day"):
    """[(title, chart)] for specs of (field, title, kind): the points' dates are formatted once for all."""
    labels = [point["at"].strftime("%Y-%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d") for point in points]
    return [(title, bar_chart(points, field, title, kind, bucket, labels)) for field, title, kind in specs]


def bar_chart(points, field, title, kind="count", bucket="day", labels=None):
    """An accessible SVG bar chart of points[field] over points["at"]; labels: each point's date, formatted."""
    values = []
    for point in points:
        value = point.get(field)
        if field == "hit_rate":
            value = None if value is None else float(value) * 100
        values.append(float(value) if isinstance(value, int | float | Decimal) else None)
    top = 100 if kind == "percent" else _nice_max(max((v for v in values if v is not None), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(points), 1)
    step = plot_w / n
    gap = min(2, step * 0.2)
    parts = [
        f'<svg class="gw-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        label = _fmt(top * fraction, kind)
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>')
    width = f"{max(step - gap, 0.5):.1f}"
    for index, (point, value) in enumerate(zip(points, values, strict=True)):
        if not value:
            continue
        h = plot_h * min(value / top, 1)
        x = LEFT + index * step + gap / 2
        y = TOP + plot_h - h
        if labels is not None:
            when = labels[index]
        else:
            when = point["at"].strftime("%Y-%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d")
        # Dates and figures hold no markup: no escaping needed inside the title.
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width}" height="{h:.1f}"><title>{when}: {_fmt(value, kind)}</title></rect>'
        )
    if points:
        marks = sorted({0, len(points) // 2, len(points) - 1})
        for index in marks:
            at = points[index]["at"]
            label = at.strftime("%d %b %H:00") if bucket == "hour" else at.strftime("%d %b")
            x = LEFT + index * step + step / 2
            anchor = "start" if index == 0 else "end" if index == len(points) - 1 else "middle"
            if anchor == "start":
                x = LEFT
            elif anchor == "end":
                x = WIDTH - RIGHT
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
