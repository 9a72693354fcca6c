"""The report as one self-contained HTML page: tables and inline SVG charts, no script, nothing
fetched from elsewhere (it is sent to pharmacies by mail)."""

from __future__ import annotations

from html import escape

from queues.reports.charts import charts_for, svg
from queues.reports.model import PharmacyReport, ProgramReport
from queues.reports.tables import Table, tables_for

STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 2px solid #4c78a8; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
td:not(:first-child) { text-align: right; }
th { background: #eef2f7; }
table.alarm td { background: #fde2e2; }
.charts svg { margin: 0.4em 1em 0.4em 0; }
.note, footer { color: #666; font-size: 0.9em; }
"""


def render_html(report: ProgramReport) -> bytes:
    title = f"Outreach program report, {report.start} to {report.end}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">Generated {report.generated_at:%Y-%m-%d %H:%M} UTC by '
        f"{escape(report.generated_by)}. Dates are each pharmacy's local dates, both ends "
        "included.</p>",
    ]
    if not report.sections:
        parts.append("<p>No pharmacy in this report.</p>")
    for section in report.sections:
        parts.append(_section(section))
    parts.append("</body></html>")
    return "\n".join(parts).encode("utf-8")


def _section(s: PharmacyReport) -> str:
    out = [
        f'<section id="pharmacy-{escape(s.code)}">',
        f"<h2>{escape(s.name)} ({escape(s.code)})</h2>",
    ]
    charts = charts_for(s)
    if charts:
        out.append('<div class="charts">' + "".join(svg(c) for c in charts) + "</div>")
    out.extend(_table(t) for t in tables_for(s))
    out.append(f'<p class="note">{escape(s.pdc.note)}</p>')
    out.append("</section>")
    return "\n".join(out)


def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in t.rows
    )
    if not t.rows:
        body = f'<tr><td colspan="{len(t.header)}">none</td></tr>'
    cls = ' class="alarm"' if t.alarm else ""
    return f"<h3>{escape(t.title)}</h3><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
