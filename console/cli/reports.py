"""`outreach report`: the program report for a pharmacy (or all) and a period, as CSV, HTML or PDF.

A supervisor's or an admin's command, signed in (console.cli.signin): a supervisor gets their
pharmacies ('all': every one of theirs), an admin every pharmacy. Every report, and every
refusal, is audited as the signed-in user.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from console.cli.signin import SIGN_IN_HELP, add_sign_in_arguments, sign_in
from queues.errors import OutreachError

# queues.reports.FORMATS, written out so that `outreach --help` does not import the reports (an
# unknown format is refused by export_report all the same).
FORMATS = ("csv", "html", "pdf")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    report = sub.add_parser(
        "report",
        parents=[common],
        help="the program report for a pharmacy and a period (csv, html, pdf)",
        description="The pharmacy program report for a period: patients called and reached by "
        "campaign, attempts per reached patient, refill requests and fills, med-sync "
        "enrollments, PDC by PQA class, vaccine interests, prescriber-office calls, calls "
        "outside policy. 'all' gives one section per pharmacy the user may see. Supervisors "
        "(their pharmacies) and admins (every pharmacy); every report is audited as the "
        "signed-in user. " + SIGN_IN_HELP,
    )
    report.add_argument(
        "--pharmacy", required=True, metavar="CODE|all", help="a pharmacy code, or all"
    )
    report.add_argument(
        "--from", dest="start", required=True, metavar="DATE", help="first day, YYYY-MM-DD"
    )
    report.add_argument(
        "--to", dest="end", required=True, metavar="DATE", help="last day (included)"
    )
    report.add_argument("--format", required=True, choices=FORMATS)
    report.add_argument(
        "--out", metavar="PATH", help="write here (default: standard output, or for pdf a file)"
    )
    add_sign_in_arguments(report)
    report.set_defaults(func=cmd_report)


def parse_date(value: str, flag: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise OutreachError(f"{flag}: {value!r} is not a date like 2026-07-01") from None


def cmd_report(args: argparse.Namespace) -> int:
    from console.cli.core import services_for
    from console.cli.empty import require_pharmacies
    from queues.access import acting_scope
    from queues.audit import record
    from queues.reports import ALL, ReportNotAllowed, Requester, export_report
    from queues.store.db import reading, transaction

    start = parse_date(args.start, "--from")
    end = parse_date(args.end, "--to")
    if end < start:
        raise OutreachError(f"--to {end} is before --from {start}")
    pharmacy = ALL if args.pharmacy.lower() == ALL else args.pharmacy
    services = services_for(args)
    try:
        require_pharmacies(services)
        user = sign_in(args, services)  # an agent's refusal below is audited, as any refusal
        with reading(services.sessions) as session:
            who = Requester.of(acting_scope(session, user))
        try:
            with transaction(services.sessions) as session:
                made = export_report(
                    session,
                    who,
                    pharmacy,
                    start,
                    end,
                    args.format,
                    services.clock.now(),
                    paper=services.settings.report.paper,
                )
        except ReportNotAllowed as refused:
            with transaction(services.sessions) as session:  # a refusal is worth a trace too
                record(
                    session,
                    "export_refused",
                    user_id=who.user_id,
                    detail={"report": "program", "pharmacy": pharmacy, "why": str(refused)},
                )
            raise
    finally:
        services.close()
    out = args.out
    if out is None and args.format == "pdf" and sys.stdout.isatty():
        out = made.filename  # never spill binary onto a terminal
    if out is None:
        sys.stdout.buffer.write(made.content)
        sys.stdout.flush()
        return 0
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(made.content)
    codes = ", ".join(s.code for s in made.report.sections) or "no pharmacy"
    print(f"wrote {path} ({args.format}, {len(made.content)} bytes; {codes})", file=sys.stderr)
    return 0
