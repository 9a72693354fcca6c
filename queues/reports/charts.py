"""The report's charts as data (grouped bars), and as inline SVG for the HTML version.

The PDF renderer draws the same `BarChart` with its own primitives, so both versions show the
same bars from the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from queues.reports.model import ADHERENT, PharmacyReport

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2")


@dataclass(frozen=True)
class BarChart:
    title: str
    categories: tuple[str, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]  # (legend, one value per category)
    max_value: float | None = None  # fixed scale (PDC: 1.0); None: the largest value
    threshold: float | None = None  # a dashed line across the chart (PDC 0.80)
    percent: bool = False

    @property
    def top(self) -> float:
        largest = max((v for _, vs in self.series for v in vs), default=0.0)
        return self.max_value if self.max_value is not None else max(largest, 1.0)

    def label(self, value: float) -> str:
        return f"{value:.0%}" if self.percent else f"{value:g}"


DAY_BUCKETS = ((0, 3, "0-3"), (4, 7, "4-7"), (8, 14, "8-14"), (15, 30, "15-30"), (31, 10**6, "31+"))


def charts_for(section: PharmacyReport) -> list[BarChart]:
    charts: list[BarChart] = []
    if section.campaigns:
        charts.append(
            BarChart(
                "Patients called and reached, by campaign",
                tuple(c.campaign for c in section.campaigns),
                (
                    ("called", tuple(float(c.patients_called) for c in section.campaigns)),
                    ("reached", tuple(float(c.patients_reached) for c in section.campaigns)),
                ),
            )
        )
    if section.refills.days_to_fill:
        counts = tuple(
            float(sum(1 for d in section.refills.days_to_fill if lo <= d <= hi))
            for lo, hi, _ in DAY_BUCKETS
        )
        charts.append(
            BarChart(
                "Days from call to fill (filled refill requests)",
                tuple(label for _, _, label in DAY_BUCKETS),
                (("requests", counts),),
            )
        )
    measured = [p for p in section.pdc.lines if p.mean_start is not None or p.mean_end is not None]
    if measured:
        charts.append(
            BarChart(
                "Mean PDC by PQA class, start and end of the period",
                tuple(p.pqa_class for p in measured),
                (
                    ("start", tuple(p.mean_start or 0.0 for p in measured)),
                    ("end", tuple(p.mean_end or 0.0 for p in measured)),
                ),
                max_value=1.0,
                threshold=ADHERENT,
                percent=True,
            )
        )
    return charts


def svg(chart: BarChart, width: int = 640, height: int = 260) -> str:
    """A self-contained SVG: no script, no external font or stylesheet."""
    left, right, top, bottom = 48, 12, 34, 54
    plot_w, plot_h = width - left - right, height - top - bottom
    n_cat = max(len(chart.categories), 1)
    n_ser = max(len(chart.series), 1)
    group_w = plot_w / n_cat
    bar_w = group_w * 0.8 / n_ser
    scale = plot_h / chart.top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(chart.title)}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="11">',
        f"<title>{escape(chart.title)}</title>",
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(chart.title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#333"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{chart.label(chart.top)}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">{chart.label(0)}</text>',
    ]
    for c, category in enumerate(chart.categories):
        x0 = left + c * group_w + group_w * 0.1
        for s, (_, values) in enumerate(chart.series):
            value = values[c]
            h = value * scale
            x = x0 + s * bar_w
            out.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w * 0.92:.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(category)}: {chart.label(value)}</title></rect>"
            )
            out.append(
                f'<text x="{x + bar_w * 0.46:.1f}" y="{top + plot_h - h - 3:.1f}" '
                f'text-anchor="middle" font-size="10">{chart.label(value)}</text>'
            )
        out.append(
            f'<text x="{left + (c + 0.5) * group_w:.1f}" y="{top + plot_h + 14}" '
            f'text-anchor="middle">{escape(_short(category, max(4, int(group_w / 6.2))))}</text>'
        )
    if chart.threshold is not None:
        y = top + plot_h - chart.threshold * scale
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            'stroke="#c00" stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text x="{left + plot_w}" y="{y - 3:.1f}" text-anchor="end" fill="#c00">'
            f"{chart.label(chart.threshold)}</text>"
        )
    for s, (legend, _) in enumerate(chart.series):
        x = left + s * 110
        y = height - 14
        out.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{PALETTE[s % len(PALETTE)]}"/>'
        )
        out.append(f'<text x="{x + 14}" y="{y}">{escape(legend)}</text>')
    out.append("</svg>")
    return "".join(out)


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
