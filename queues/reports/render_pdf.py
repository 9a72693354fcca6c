"""The report as PDF (fpdf2: pure Python, no system libraries), laid out for a pharmacy to sign off:
a first page with the period, the pharmacy and the five figures against the period before, then
the charts, then the detail tables. US Letter unless the config says A4. The charts are drawn with
PDF primitives from the same `BarChart` the HTML version draws as SVG."""

from __future__ import annotations

from collections.abc import Sequence

from fpdf import FPDF
from fpdf.enums import Align, TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace
from fpdf.recorder import FPDFRecorder

from queues.reports.charts import PALETTE, BarChart, charts_for
from queues.reports.headline import figures
from queues.reports.model import PharmacyReport, ProgramReport
from queues.reports.tables import Table, period_words, tables_for

# The PDF core fonts cover Latin-1 only; these are the characters our own texts use beyond it.
_PLAIN = str.maketrans({"–": "-", "—": "-", "…": "...", "·": "-", "’": "'", "→": "->", "≥": ">="})
PAPER = {"letter": "Letter", "a4": "A4"}
INK = (34, 34, 34)
MUTED = (102, 102, 102)
RULE = (200, 205, 212)
HEAD_FILL = (238, 242, 247)
ALARM = (178, 34, 34)
MARGIN = 18.0


def plain(text: str) -> str:
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


class _Document(FPDF):
    def __init__(self, paper: str, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format=PAPER[paper])
        self.footer_text = footer_text
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=MARGIN + 4)
        self.alias_nb_pages()

    def footer(self) -> None:
        self.set_y(-MARGIN + 2)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(*MUTED)
        self.cell(self.epw / 2, 5, plain(self.footer_text), align=Align.L)
        self.cell(self.epw / 2, 5, f"Page {self.page_no()} of {{nb}}", align=Align.R)
        self.set_text_color(*INK)


def render_pdf(report: ProgramReport, paper: str = "letter") -> bytes:
    if paper not in PAPER:
        raise ValueError(f"paper {paper!r}: expected one of {', '.join(PAPER)}")
    period = period_words(report.start, report.last_day)
    pdf = _Document(paper, f"Outreach program report, {period}")
    pdf.set_title(plain(f"Outreach program report {report.start} to {report.end}"))
    pdf.set_creator("Outreach Console")
    pdf.set_creation_date(report.generated_at)
    pdf.set_text_color(*INK)
    sections = report.sections
    pdf.add_page()
    if not sections:
        _title(pdf, report, "No pharmacy")
        _line(pdf, 8, "No pharmacy is in this report.")
        return bytes(pdf.output())
    if len(sections) == 1:
        s = sections[0]
        _title(pdf, report, f"{s.name} ({s.code})")
        _figures(pdf, [s], _previous(report, s), report)
    else:
        _title(
            pdf, report, f"All pharmacies ({len(sections)}): {', '.join(s.code for s in sections)}"
        )
        _figures(pdf, sections, report.previous or None, report)
        _by_pharmacy(pdf, report)
    for s in sections:
        _section(pdf, s, report, own_page_figures=len(sections) > 1)
    return bytes(pdf.output())


def _previous(report: ProgramReport, s: PharmacyReport) -> list[PharmacyReport] | None:
    before = report.previous_of(s.code)
    return [before] if before is not None else None


def _line(pdf: FPDF | FPDFRecorder, height: float, text: str, align: Align = Align.L) -> None:
    pdf.cell(0, height, plain(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align=align)


def _para(pdf: FPDF, height: float, text: str) -> None:
    pdf.multi_cell(0, height, plain(text), align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _title(pdf: FPDF, report: ProgramReport, who: str) -> None:
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(*MUTED)
    _line(pdf, 5, "Outreach program report")
    pdf.set_text_color(*INK)
    pdf.set_font("Helvetica", "B", 18)
    _para(pdf, 8, who)
    pdf.set_font("Helvetica", "", 12)
    _line(pdf, 7, period_words(report.start, report.end))
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(*MUTED)
    if report.measured_to is not None:
        pdf.set_text_color(*ALARM)
        _para(
            pdf,
            4.5,
            f"The period runs past today: it is measured to {report.measured_to:%B %-d, %Y}. "
            "Days still to come are not counted.",
        )
        pdf.set_text_color(*MUTED)
    _para(
        pdf,
        4.5,
        f"Prepared {report.generated_at:%B %-d, %Y} by Outreach Console. Dates are the "
        "pharmacy's local dates, both ends included.",
    )
    pdf.set_text_color(*INK)
    pdf.ln(4)


def _figures(
    pdf: FPDF,
    sections: Sequence[PharmacyReport],
    previous: Sequence[PharmacyReport] | None,
    report: ProgramReport,
) -> None:
    before = report.previous_period
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.3)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    label = "Previous period" if before is None else period_words(*before)
    for fig in figures(sections, previous):
        top = pdf.get_y() + 3
        pdf.set_xy(pdf.l_margin, top)
        pdf.set_font("Helvetica", "B", 20)
        pdf.set_text_color(*(ALARM if fig.alarm else INK))
        pdf.cell(42, 10, plain(fig.value))
        pdf.set_text_color(*INK)
        pdf.set_xy(pdf.l_margin + 44, top)
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(pdf.epw - 44 - 48, 5.5, plain(fig.label))
        pdf.set_font("Helvetica", "", 8)
        pdf.set_text_color(*MUTED)
        pdf.set_xy(pdf.l_margin + pdf.epw - 46, top)
        pdf.cell(46, 4, plain(label), align=Align.R)
        pdf.set_xy(pdf.l_margin + 44, top + 5.5)
        pdf.set_font("Helvetica", "", 9)
        pdf.multi_cell(pdf.epw - 44 - 48, 4.2, plain(fig.detail), align=Align.L)
        bottom = max(pdf.get_y(), top + 10)
        pdf.set_xy(pdf.l_margin + pdf.epw - 46, top + 4.5)
        pdf.set_font("Helvetica", "B", 11)
        pdf.set_text_color(*INK)
        pdf.cell(46, 5.5, plain(fig.previous), align=Align.R)
        pdf.set_y(bottom + 3)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(4)


def _by_pharmacy(pdf: FPDF, report: ProgramReport) -> None:
    """For a report of several pharmacies, the figures of each on the first page as a table."""
    rows = []
    for s in report.sections:
        f = figures([s], [p] if (p := report.previous_of(s.code)) else None)
        rows.append((s.code, *(x.value for x in f)))
    _table(
        pdf,
        Table(
            "By pharmacy",
            ("pharmacy", *(x.label.lower() for x in figures(report.sections, None))),
            tuple(rows),
        ),
    )


def _section(
    pdf: FPDF, s: PharmacyReport, report: ProgramReport, *, own_page_figures: bool
) -> None:
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    _line(pdf, 8, f"{s.name} ({s.code})")
    if own_page_figures:
        _figures(pdf, [s], _previous(report, s), report)
    for chart in charts_for(s):
        _chart(pdf, chart)
    for table in tables_for(s):
        _table(pdf, table)
    with pdf.unbreakable() as doc:  # the notes never stand alone on a page
        doc.set_font("Helvetica", "I", 8)
        doc.set_text_color(*MUTED)
        doc.multi_cell(0, 4, plain(s.pdc.note), align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        doc.set_text_color(*INK)


def _table(pdf: FPDF, t: Table) -> None:
    """A titled table; one that fits on a page is kept on one page (never a title alone at the
    foot of a page, never a row or two carried over)."""
    with pdf.offset_rendering() as trial:
        _draw_table(trial, t)
    if trial.page_break_triggered:
        pdf.add_page()
    _draw_table(pdf, t)


def _draw_table(pdf: FPDF | FPDFRecorder, t: Table) -> None:
    rows = t.rows or (("none",) + ("",) * (len(t.header) - 1),)
    pdf.set_font("Helvetica", "B", 10)
    _line(pdf, 7, t.title)
    pdf.set_font("Helvetica", "", 8.5)
    n = len(t.header)
    first = 110.0 if n == 2 else 62.0 if n <= 5 else 34.0
    rest = (pdf.epw - first) / max(n - 1, 1)
    pdf.set_draw_color(*RULE)
    pdf.set_fill_color(255, 255, 255)
    with pdf.table(
        col_widths=(first, *([rest] * (n - 1))),
        width=pdf.epw,
        line_height=5.2,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        headings_style=FontFace(emphasis="BOLD", fill_color=HEAD_FILL),
        cell_fill_color=(255, 255, 255),
        cell_fill_mode="NONE",
        text_align=("LEFT", *(["RIGHT"] * (n - 1))),
        first_row_as_headings=True,
        padding=(0.8, 1.5),
    ) as table:
        table.row([plain(h) for h in t.header])
        for row in rows:
            style = FontFace(color=ALARM, emphasis="BOLD") if t.alarm else None
            table.row([plain(cell) for cell in row], style=style)
    pdf.ln(3)


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """The text cut with "..." to fit `width` in the current font (chart labels never overlap)."""
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "...") > width:
        text = text[:-1]
    return text.rstrip() + "..."


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _chart(pdf: FPDF, chart: BarChart, height: float = 50) -> None:
    if pdf.will_page_break(height + 20):
        pdf.add_page()
    pdf.set_font("Helvetica", "B", 10)
    _line(pdf, 6, chart.title)
    left, top = pdf.l_margin + 12, pdf.get_y() + 3
    width = pdf.epw - 14
    n_cat = max(len(chart.categories), 1)
    n_ser = max(len(chart.series), 1)
    group_w = width / n_cat
    bar_w = group_w * 0.8 / n_ser
    scale = height / chart.top
    pdf.set_font("Helvetica", "", 7)
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)
    for frac in (0.0, 0.5, 1.0):  # light gridlines at 0, half and the top
        y = top + height - frac * height
        pdf.line(left, y, left + width, y)
        pdf.set_text_color(*MUTED)
        pdf.text(pdf.l_margin, y + 1, chart.label(chart.top * frac))
    pdf.set_text_color(*INK)
    for c, category in enumerate(chart.categories):
        x0 = left + c * group_w + group_w * 0.1
        for s, (_, values) in enumerate(chart.series):
            h = values[c] * scale
            x = x0 + s * bar_w
            pdf.set_fill_color(*_hex(PALETTE[s % len(PALETTE)]))
            if h > 0:
                pdf.rect(x, top + height - h, bar_w * 0.9, h, style="F")
            label = chart.label(values[c])
            pdf.text(
                x + bar_w * 0.45 - pdf.get_string_width(label) / 2, top + height - h - 1, label
            )
        name = _fit(pdf, plain(category), group_w * 0.95)
        pdf.text(
            left + (c + 0.5) * group_w - pdf.get_string_width(name) / 2, top + height + 4, name
        )
    if chart.threshold is not None:
        y = top + height - chart.threshold * scale
        pdf.set_draw_color(*ALARM)
        pdf.set_dash_pattern(dash=1.5, gap=1)
        pdf.line(left, y, left + width, y)
        pdf.set_dash_pattern()
        pdf.set_text_color(*ALARM)
        pdf.text(left + width - 8, y - 1, chart.label(chart.threshold))
        pdf.set_text_color(*INK)
    for s, (legend, _) in enumerate(chart.series):
        x = left + s * 35
        pdf.set_fill_color(*_hex(PALETTE[s % len(PALETTE)]))
        pdf.rect(x, top + height + 7, 3, 3, style="F")
        pdf.text(x + 4.5, top + height + 9.6, plain(legend))
    pdf.set_y(top + height + 15)
