"""`outreach pharmacy add|set|list`: a BPO takes on a client without touching the database.
`add` and `set` are an admin's (audited as them); `list` a supervisor's (their pharmacies) or an
admin's (every one), signed in."""

from __future__ import annotations

import argparse
import json
from typing import Any

from console.cli.core import services_for
from console.cli.signin import SIGN_IN_HELP, add_sign_in_arguments, sign_in


def _options(parser: argparse.ArgumentParser, *, adding: bool) -> None:
    parser.add_argument("code", metavar="CODE")
    parser.add_argument("--name", required=adding)
    parser.add_argument("--timezone", metavar="TZ", required=adding, help="e.g. America/Chicago")
    parser.add_argument("--caller-id", metavar="E164", required=adding, help="e.g. +12145550100")
    parser.add_argument(
        "--callback-number", metavar="E164", help="what a voicemail gives out (default: caller ID)"
    )
    parser.add_argument("--state", metavar="XX", help="default: the caller ID's area code's")
    parser.add_argument("--opens", metavar="HH:MM", help="opening time (default 09:00)")
    parser.add_argument("--closes", metavar="HH:MM", help="closing time (default 18:00)")
    parser.add_argument("--priority", type=int, help="higher is called first (default 0)")
    parser.add_argument(
        "--endpoint", metavar="URL", help="where follow-up actions are delivered ('' clears it)"
    )
    if adding:
        parser.add_argument(
            "--no-campaigns",
            action="store_true",
            help="add none of the standard campaigns (default: every kind the site does not run "
            "for all pharmacies already; see `outreach campaigns`)",
        )


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("pharmacy", help="add, change and list pharmacies (the BPO's clients)")
    actions = group.add_subparsers(dest="pharmacy_command", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        parents=[common],
        help="add a pharmacy (admins)",
        description="Add a pharmacy: an admin's command, audited as them. " + SIGN_IN_HELP,
    )
    _options(add, adding=True)
    add_sign_in_arguments(add)
    add.set_defaults(func=cmd_pharmacy_add)
    change = actions.add_parser(
        "set",
        parents=[common],
        help="change a pharmacy's settings (admins)",
        description="Change a pharmacy's settings: an admin's command, audited as them. "
        + SIGN_IN_HELP,
    )
    _options(change, adding=False)
    add_sign_in_arguments(change)
    change.set_defaults(func=cmd_pharmacy_set)
    listing = actions.add_parser(
        "list",
        parents=[common],
        help="the pharmacies (supervisors: theirs; admins: all)",
        description="The pharmacies the signed-in user works for: a supervisor's own, every "
        "pharmacy for an admin. " + SIGN_IN_HELP,
    )
    listing.add_argument("--json", action="store_true", help="one JSON object on the last line")
    add_sign_in_arguments(listing)
    listing.set_defaults(func=cmd_pharmacy_list)


def _changes(args: argparse.Namespace) -> Any:
    from queues.pharmacies import PharmacyChanges

    return PharmacyChanges(
        name=args.name,
        timezone=args.timezone,
        caller_id=args.caller_id,
        callback_number=args.callback_number,
        state=args.state,
        opens_at=args.opens,
        closes_at=args.closes,
        priority=args.priority,
        endpoint_url=args.endpoint,
    )


def cmd_pharmacy_add(args: argparse.Namespace) -> int:
    from queues.campaigns import add_standard_campaigns
    from queues.pharmacies import add_pharmacy
    from queues.store.db import transaction

    store = services_for(args)
    try:
        user = sign_in(args, store, "admin", doing="add pharmacies")
        with transaction(store.sessions) as session:
            view = add_pharmacy(session, args.code, _changes(args), by=user)
            # Its programs in the same transaction: a pharmacy without campaigns gets no tasks.
            campaigns = (
                [] if args.no_campaigns else add_standard_campaigns(session, view.code, by=user)
            )
    finally:
        store.close()
    print(f"added pharmacy {view.code} ({view.name}), {view.timezone}, caller ID {view.caller_id}")
    if campaigns:
        kinds = ", ".join(c.kind for c in campaigns)
        print(f"with {len(campaigns)} standard campaigns ({kinds}); see `outreach campaigns list`")
    elif args.no_campaigns:
        print("with no campaigns of its own: add them with `outreach campaigns add`")
    else:
        print("its work comes from the campaigns every pharmacy shares (`outreach campaigns list`)")
    return 0


def cmd_pharmacy_set(args: argparse.Namespace) -> int:
    from queues.pharmacies import set_pharmacy
    from queues.store.db import transaction

    store = services_for(args)
    try:
        user = sign_in(args, store, "admin", doing="change pharmacies")
        with transaction(store.sessions) as session:
            view = set_pharmacy(session, args.code, _changes(args), by=user)
    finally:
        store.close()
    print(
        f"changed pharmacy {view.code}: " + ", ".join(f"{k}={v}" for k, v in view.as_json().items())
    )
    return 0


def cmd_pharmacy_list(args: argparse.Namespace) -> int:
    from queues.pharmacies import list_pharmacies
    from queues.store.db import reading

    store = services_for(args)
    try:
        user = sign_in(args, store, "supervisor", "admin", doing="list pharmacies")
        with reading(store.sessions) as session:
            views = list_pharmacies(session, user)
    finally:
        store.close()
    print(f"{'code':<10}{'name':<32}{'time zone':<22}{'caller ID':<15}{'hours':<13}endpoint")
    for v in views:
        hours = f"{v.opens_at}-{v.closes_at}"
        print(
            f"{v.code:<10}{v.name[:31]:<32}{v.timezone:<22}{v.caller_id:<15}{hours:<13}"
            f"{v.endpoint_url or '-'}"
        )
    if args.json:
        print(json.dumps({"pharmacies": [v.as_json() for v in views]}, sort_keys=True))
    return 0
