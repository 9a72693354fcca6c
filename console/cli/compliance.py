"""`outreach compliance check`: may an ad-hoc patient (ZIP, number, state) be called at a time?"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the domain is imported by the command that runs, not by `outreach --help`
    from queues.compliance import Verdict


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("compliance", help="calling rules: windows, states, caps")
    actions = group.add_subparsers(dest="compliance_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        parents=[common],
        help="may a patient with this ZIP and number be called at this time?",
        description="Apply the calling rules (federal 08:00-21:00, stricter state rules by the "
        "address's and the area code's state, Sundays and holidays where a state forbids them, "
        "the [queue] limits of the config) to an ad-hoc patient. The window must be open in "
        "every time zone of the ZIP and of the number. A ZIP that does not exist is not trusted: "
        "the number's area code decides, and a note says so.",
        epilog="exit status: 0 callable now; 1 not callable now (the reasons are printed); "
        "2 bad input (a ZIP, number, state or time that is not one, named on stderr).",
    )
    check.add_argument("--zip", required=True, metavar="ZIP", help="the patient's ZIP code")
    check.add_argument("--phone", required=True, metavar="E164", help="number, e.g. +12145550100")
    check.add_argument("--state", metavar="XX", help="the address's state (default: the ZIP's)")
    check.add_argument(
        "--at",
        metavar="ISO-TIME",
        help="the moment, with offset, e.g. 2026-12-02T18:00:00Z (default: now)",
    )
    check.add_argument("--json", action="store_true", help="one JSON object on the last line")
    check.set_defaults(func=cmd_compliance_check)


def print_verdict(verdict: Verdict) -> None:
    print(f"{'callable':<10}{'yes' if verdict.callable else 'no'}")
    for reason in verdict.reasons:
        print(f"  {reason.code:<22}{reason.sentence}")
    local = verdict.next_open_local()
    if not verdict.callable:
        when = f"{local:%a %Y-%m-%d %H:%M %Z} ({local.isoformat()})" if local else "not by itself"
        print(f"{'next open':<10}{when}")
    print(f"{'zones':<10}{', '.join(verdict.zones) or '(none known)'}")
    print(f"{'states':<10}{', '.join(verdict.states) or '(none known)'}")
    for note in verdict.notes:
        print(f"note: {note}")


# The exit status a script can act on (documented in the command's --help).
CALLABLE, NOT_CALLABLE, BAD_INPUT = 0, 1, 2


def cmd_compliance_check(args: argparse.Namespace) -> int:
    from console.cli.core import parse_time_arg
    from console.config import settings_from_args
    from queues.compliance import ad_hoc_verdict
    from queues.errors import OutreachError
    from queues.timeutil import utcnow

    settings = settings_from_args(args.config, args.database or None)
    try:
        at = parse_time_arg(args.at, "--at") if args.at else utcnow()
        verdict = ad_hoc_verdict(
            args.zip, args.phone, at, state=args.state, settings=settings.queue
        )
    except OutreachError as exc:
        print(f"outreach: {exc}", file=sys.stderr)
        return BAD_INPUT
    print_verdict(verdict)
    if args.json:
        print(json.dumps(verdict.as_json(), sort_keys=True))
    return CALLABLE if verdict.callable else NOT_CALLABLE
