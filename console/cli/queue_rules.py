"""`outreach queue explain PATIENT`: why a patient is or is not callable, with their work and caps."""

from __future__ import annotations

import argparse
import json
from typing import Any

from console.cli.signin import SIGN_IN_HELP, add_sign_in_arguments, sign_in


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    # `queue` belongs to console.cli.core, which leaves its action list on the parser for us.
    queue_sub = sub.choices["queue"].queue_sub
    explain = queue_sub.add_parser(
        "explain",
        parents=[common],
        help="why a patient is or is not callable now: the rules, their tasks, scores and caps",
        description="The compliance verdict for one patient in the database (by id or MRN), with "
        "their open tasks and priority parts, their attempts against the caps and their queue "
        "entry. Any signed-in user, for a patient of their own pharmacies (an admin: any "
        "pharmacy); a patient elsewhere is refused as if unknown. The view is audited as the "
        "signed-in user. " + SIGN_IN_HELP,
    )
    explain.add_argument("patient", metavar="PATIENT", help="patient id or MRN")
    explain.add_argument("--now", metavar="TIME", help="as of this ISO time (default: now)")
    explain.add_argument("--json", action="store_true", help="one JSON object on the last line")
    add_sign_in_arguments(explain)
    explain.set_defaults(func=cmd_queue_explain)


def cmd_queue_explain(args: argparse.Namespace) -> int:
    from console.cli.compliance import print_verdict
    from console.cli.core import parse_time_arg, services_for
    from queues.access import acting_scope
    from queues.compliance.explain import explain_patient
    from queues.store.db import transaction

    now = parse_time_arg(args.now, "--now") if args.now else None
    services = services_for(args)
    try:
        user = sign_in(args, services)
        with transaction(services.sessions) as session:
            found = explain_patient(
                session,
                args.patient,
                now or services.clock.now(),
                services.settings.queue,
                viewer=acting_scope(session, user),
            )
    finally:
        services.close()
    print(f"patient {found.patient_id} (MRN {found.mrn}) at {found.pharmacy}")
    print_verdict(found.verdict)
    if found.verdict.numbers:
        print(f"{'dial':<10}{', '.join(found.verdict.numbers)}")
    for cap in found.caps:
        print(f"{'cap':<10}{cap.name}: {cap.used} of {cap.limit}")
    if found.queue is not None:
        q = found.queue
        state = "with an agent" if q.held else q.status
        print(
            f"{'queue':<10}{state}, available {q.available_at:%Y-%m-%d %H:%M} UTC"
            + (f", passed over: {q.blocked_reason}" if q.blocked_reason else "")
        )
    print(f"tasks     {len(found.tasks)} open")
    for t in found.tasks:
        parts = ", ".join(f"{k}={v}" for k, v in sorted(t.parts.items()))
        print(f"  {t.score:7.1f}  {t.program}: {t.reason}  [{parts}]")
    if args.json:
        print(json.dumps(found.as_json(), sort_keys=True, default=str))
    return 0
