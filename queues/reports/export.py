"""Producing a report file: build, render, and audit the export in the same transaction, so no
report leaves the database without its "export" event (45 CFR 164.312(b))."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from queues.audit import record
from queues.errors import OutreachError
from queues.reports.build import Requester, allowed_pharmacies, program_report
from queues.reports.model import ProgramReport
from queues.reports.pdc_source import PdcMeasure
from queues.reports.render_csv import render_csv
from queues.reports.render_html import render_html


def render_pdf(report: ProgramReport, paper: str = "letter") -> bytes:
    """fpdf2 holds ~35 MB once imported: only a PDF report imports it."""
    from queues.reports import render_pdf as pdf

    return pdf.render_pdf(report, paper)


def _csv(report: ProgramReport, paper: str = "letter") -> bytes:
    return render_csv(report)  # a spreadsheet has no paper


RENDERERS: dict[str, tuple[Callable[[ProgramReport, str], bytes], str]] = {
    "csv": (_csv, "text/csv"),
    "html": (render_html, "text/html"),
    "pdf": (render_pdf, "application/pdf"),
}
FORMATS = tuple(RENDERERS)


@dataclass(frozen=True)
class ReportFile:
    report: ProgramReport
    content: bytes
    media_type: str
    filename: str  # suggested, e.g. report-TX1-2026-07-01-2026-09-30.pdf


def export_report(
    session: Session,
    who: Requester,
    pharmacy: str,
    start: date,
    end: date,
    fmt: str,
    now: datetime,
    *,
    pdc: PdcMeasure | None = None,
    report: ProgramReport | None = None,
    paper: str = "letter",
) -> ReportFile:
    """Run in the caller's transaction; the audit event commits with it.

    `report`, when given, is one already built for the same requester, pharmacy and period (say,
    to save it in several formats): it is rendered as it is, after checking that it is that one.
    """
    if fmt not in RENDERERS:
        raise OutreachError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if report is None:
        report = program_report(session, who, pharmacy, start, end, now, pdc=pdc)
    else:
        _check_same(session, report, who, pharmacy, start, end)
    render, media_type = RENDERERS[fmt]
    content = render(report, paper)
    record(
        session,
        "export",
        user_id=who.user_id,
        detail={
            "report": "program",
            "pharmacy": pharmacy,
            "pharmacies": [s.code for s in report.sections],
            "from": start.isoformat(),
            "to": end.isoformat(),
            "format": fmt,
            "by": who.name,
            "role": who.role,
            "bytes": len(content),
        },
    )
    return ReportFile(report, content, media_type, f"report-{pharmacy}-{start}-{end}.{fmt}")


def _check_same(
    session: Session, report: ProgramReport, who: Requester, pharmacy: str, start: date, end: date
) -> None:
    """A built report may only be exported as what it is: same period, requester, pharmacies
    (which are the ones `who` may see now, so a reused report never widens access)."""
    codes = tuple(s.code for s in report.sections)
    allowed = tuple(p.code for p in allowed_pharmacies(session, who, pharmacy))
    if (report.start, report.end, report.generated_by, codes) != (start, end, who.name, allowed):
        raise OutreachError(
            f"the report given is for {report.start} to {report.end}, {', '.join(codes) or 'none'}"
            f" by {report.generated_by}, not the one asked for ({pharmacy}, {start} to {end}, "
            f"{who.name})"
        )
