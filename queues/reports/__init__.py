"""The program report a pharmacy pays for: figures for a period (`build`), rendered to CSV, HTML
or PDF (`render_*`), every export audited (`export`)."""

from queues.reports.build import ALL, ReportNotAllowed, Requester, program_report
from queues.reports.export import FORMATS, ReportFile, export_report
from queues.reports.model import PharmacyReport, ProgramReport

__all__ = [
    "ALL",
    "FORMATS",
    "PharmacyReport",
    "ProgramReport",
    "ReportFile",
    "ReportNotAllowed",
    "Requester",
    "export_report",
    "program_report",
]
