"""The report as one self-contained HTML page: tables and inline SVG charts, no script, nothing
fetched from elsewhere (it is sent to pharmacies by mail). Printed, it lays out as the PDF does:
the first page holds the period, the pharmacy and the five figures; charts and tables follow."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from queues.reports.charts import charts_for, svg
from queues.reports.headline import figures
from queues.reports.model import PharmacyReport, ProgramReport
from queues.reports.tables import Table, period_words, tables_for

PAGE = {"letter": "letter", "a4": "A4"}

STYLE = """
@page { size: %(page)s; margin: 18mm; }
body { font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 52em; color: #222;
       line-height: 1.35; }
@media print { body { margin: 0; max-width: none; } }
.kicker { color: #666; margin: 0; }
h1 { font-size: 1.8em; margin: 0.1em 0; } h2 { font-size: 1.35em; margin: 0 0 0.4em; }
h3 { font-size: 1em; margin: 1.2em 0 0.3em; }
.period { font-size: 1.15em; margin: 0.2em 0; }
.note, footer { color: #666; font-size: 0.85em; text-align: left; }
.measured { color: #b22222; }
.cover, .pharmacy { break-after: page; page-break-after: always; }
.details { break-before: page; }
.figures { border-top: 1px solid #c8cdd4; margin: 1em 0; }
.figure { display: grid; grid-template-columns: 9em 1fr 14em; gap: 0 1em; padding: 0.6em 0;
          border-bottom: 1px solid #c8cdd4; align-items: start; }
.figure .value { font-size: 1.7em; font-weight: bold; white-space: nowrap; }
.figure .label { font-weight: bold; } .figure .detail { color: #444; font-size: 0.9em; }
.figure .previous { text-align: right; } .figure .previous small { display: block; color: #666; }
.figure.alarm .value { color: #b22222; }
table { border-collapse: collapse; margin: 0.3em 0 1em; width: 100%; font-size: 0.9em; }
th, td { border-bottom: 1px solid #c8cdd4; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eef2f7; }
table.alarm td { color: #b22222; font-weight: bold; }
section.table { break-inside: avoid; }
.charts svg { margin: 0.4em 1em 0.4em 0; max-width: 100%; height: auto; break-inside: avoid; }
"""


def render_html(report: ProgramReport, paper: str = "letter") -> bytes:
    title = f"Outreach program report, {period_words(report.start, report.end)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE.replace('%(page)s', PAGE.get(paper, 'letter'))}"
        "</style></head><body>",
    ]
    sections = report.sections
    if not sections:
        parts.append(_cover(report, "No pharmacy", (), None))
        parts.append("<p>No pharmacy is in this report.</p>")
    elif len(sections) == 1:
        s = sections[0]
        prev = report.previous_of(s.code)
        parts.append(_cover(report, f"{s.name} ({s.code})", sections, [prev] if prev else None))
    else:
        who = f"All pharmacies ({len(sections)}): {', '.join(s.code for s in sections)}"
        parts.append(_cover(report, who, sections, report.previous or None))
    for s in sections:
        parts.append(_section(s, report, own_figures=len(sections) > 1))
    parts.append("</body></html>")
    return "\n".join(parts).encode("utf-8")


def _cover(
    report: ProgramReport,
    who: str,
    sections: Sequence[PharmacyReport],
    previous: Sequence[PharmacyReport] | None,
) -> str:
    out = [
        '<section class="cover" id="first-page">',
        '<p class="kicker">Outreach program report</p>',
        f"<h1>{escape(who)}</h1>",
        f'<p class="period">{escape(period_words(report.start, report.end))}</p>',
    ]
    if report.measured_to is not None:
        out.append(
            f'<p class="note measured">The period runs past today: it is measured to '
            f"{report.measured_to:%B} {report.measured_to.day}, {report.measured_to.year}. "
            "Days still to come are not counted.</p>"
        )
    out.append(
        f'<p class="note">Prepared {report.generated_at:%B} {report.generated_at.day}, '
        f"{report.generated_at.year} by Outreach Console. Dates are the pharmacy's local dates, "
        "both ends included.</p>"
    )
    if sections:
        out.append(_figures(report, sections, previous))
    out.append("</section>")
    return "\n".join(out)


def _figures(
    report: ProgramReport,
    sections: Sequence[PharmacyReport],
    previous: Sequence[PharmacyReport] | None,
) -> str:
    before = report.previous_period
    label = "previous period" if before is None else period_words(*before)
    rows = []
    for f in figures(sections, previous):
        cls = "figure alarm" if f.alarm else "figure"
        rows.append(
            f'<div class="{cls}"><div class="value">{escape(f.value)}</div>'
            f'<div><div class="label">{escape(f.label)}</div>'
            f'<div class="detail">{escape(f.detail)}</div></div>'
            f'<div class="previous"><small>{escape(label)}</small>{escape(f.previous)}</div></div>'
        )
    return '<div class="figures">' + "".join(rows) + "</div>"


def _section(s: PharmacyReport, report: ProgramReport, *, own_figures: bool) -> str:
    out = [f'<section class="pharmacy" id="pharmacy-{escape(s.code)}">']
    out.append(f"<h2>{escape(s.name)} ({escape(s.code)})</h2>")
    if own_figures:
        prev = report.previous_of(s.code)
        out.append(_figures(report, [s], [prev] if prev else None))
    charts = charts_for(s)
    if charts:
        out.append('<div class="charts">' + "".join(svg(c) for c in charts) + "</div>")
    out.append("</section>")
    out.append(f'<section class="details" id="details-{escape(s.code)}">')
    out.append(f"<h2>{escape(s.name)} ({escape(s.code)}): details</h2>")
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
    return (
        f'<section class="table"><h3>{escape(t.title)}</h3><table{cls}><thead><tr>{head}</tr>'
        f"</thead><tbody>{body}</tbody></table></section>"
    )
