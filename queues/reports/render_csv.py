"""The report as CSV: one figure a row (pharmacy, section, item, metric, value), for spreadsheets."""

from __future__ import annotations

import csv
import io

from queues.reports.model import ProgramReport
from queues.reports.tables import tidy_rows

HEADER = ("pharmacy", "section", "item", "metric", "value", "from", "to")


def render_csv(report: ProgramReport) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADER)
    period = (report.start.isoformat(), report.end.isoformat())
    for pharmacy, section, item, metric, value in tidy_rows(report):
        writer.writerow((pharmacy, section, item, metric, "" if value is None else value, *period))
    return buf.getvalue().encode("utf-8")
