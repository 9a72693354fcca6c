"""The report as PDF (fpdf2: pure Python, no system libraries), with the same tables and bar
charts as the HTML version, the charts drawn with PDF primitives from the same `BarChart`."""

from __future__ import annotations

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from queues.reports.charts import PALETTE, BarChart, charts_for
from queues.reports.model import PharmacyReport, ProgramReport
from queues.reports.tables import Table, tables_for

# The PDF core fonts cover Latin-1 only; these are the characters our own texts use beyond it.
_PLAIN = str.maketrans({"–": "-", "—": "-", "…": "...", "·": "-", "’": "'", "→": "->"})


def plain(text: str) -> str:
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def render_pdf(report: ProgramReport) -> bytes:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(plain(f"Outreach program report {report.start} to {report.end}"))
    pdf.set_creator("Outreach Console")
    pdf.set_creation_date(report.generated_at)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    _line(pdf, 9, f"Outreach program report, {report.start} to {report.end}")
    pdf.set_font("Helvetica", "", 9)
    _line(
        pdf,
        5,
        f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC by {report.generated_by}. "
        "Dates are each pharmacy's local dates, both ends included.",
    )
    if not report.sections:
        _line(pdf, 8, "No pharmacy in this report.")
    for n, section in enumerate(report.sections):
        if n:
            pdf.add_page()
        _section(pdf, section)
    return bytes(pdf.output())


def _line(pdf: FPDF, height: float, text: str) -> None:
    pdf.cell(0, height, plain(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _section(pdf: FPDF, s: PharmacyReport) -> None:
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 13)
    _line(pdf, 8, f"{s.name} ({s.code})")
    for chart in charts_for(s):
        _chart(pdf, chart)
    for table in tables_for(s):
        _table(pdf, table)
    pdf.set_font("Helvetica", "I", 8)
    pdf.multi_cell(0, 4, plain(s.pdc.note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _table(pdf: FPDF, t: Table) -> None:
    pdf.set_font("Helvetica", "B", 10)
    _line(pdf, 7, t.title)
    pdf.set_font("Helvetica", "", 8)
    rows = t.rows or (("none",) + ("",) * (len(t.header) - 1),)
    first = 60 if len(t.header) > 2 else 110
    rest = (pdf.epw - first) / max(len(t.header) - 1, 1)
    with pdf.table(
        col_widths=(first, *([rest] * (len(t.header) - 1))),
        width=pdf.epw,
        line_height=4.5,
        cell_fill_color=(253, 226, 226) if t.alarm else None,
        cell_fill_mode="ALL" if t.alarm else "NONE",
        first_row_as_headings=True,
    ) as table:
        table.row([plain(h) for h in t.header])
        for row in rows:
            table.row([plain(cell) for cell in row])
    pdf.ln(2)


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _chart(pdf: FPDF, chart: BarChart, height: float = 55) -> None:
    if pdf.will_page_break(height + 14):
        pdf.add_page()
    pdf.set_font("Helvetica", "B", 9)
    _line(pdf, 6, chart.title)
    left, top = pdf.l_margin + 12, pdf.get_y() + 2
    width = pdf.epw - 14
    n_cat = max(len(chart.categories), 1)
    n_ser = max(len(chart.series), 1)
    group_w = width / n_cat
    bar_w = group_w * 0.8 / n_ser
    scale = height / chart.top
    pdf.set_font("Helvetica", "", 7)
    pdf.set_draw_color(60, 60, 60)
    pdf.line(left, top + height, left + width, top + height)
    pdf.text(pdf.l_margin, top + 2, chart.label(chart.top))
    pdf.text(pdf.l_margin, top + height, chart.label(0))
    for c, category in enumerate(chart.categories):
        x0 = left + c * group_w + group_w * 0.1
        for s, (_, values) in enumerate(chart.series):
            h = values[c] * scale
            x = x0 + s * bar_w
            pdf.set_fill_color(*_hex(PALETTE[s % len(PALETTE)]))
            if h > 0:
                pdf.rect(x, top + height - h, bar_w * 0.92, h, style="F")
            pdf.text(x, top + height - h - 1, chart.label(values[c]))
        label = plain(category if len(category) <= 24 else category[:23] + "...")
        pdf.text(left + c * group_w + group_w * 0.1, top + height + 4, label)
    if chart.threshold is not None:
        y = top + height - chart.threshold * scale
        pdf.set_draw_color(200, 0, 0)
        pdf.set_dash_pattern(dash=1.5, gap=1)
        pdf.line(left, y, left + width, y)
        pdf.set_dash_pattern()
        pdf.text(left + width - 8, y - 1, chart.label(chart.threshold))
    for s, (legend, _) in enumerate(chart.series):
        x = left + s * 35
        pdf.set_fill_color(*_hex(PALETTE[s % len(PALETTE)]))
        pdf.rect(x, top + height + 7, 3, 3, style="F")
        pdf.text(x + 4.5, top + height + 9.6, plain(legend))
    pdf.set_y(top + height + 13)
