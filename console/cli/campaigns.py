"""`outreach campaigns list|add|set`: a pharmacy's outreach programs, without touching the database.

`list` is a supervisor's (their pharmacies' and the shared ones) or an admin's (every one); `add`
and `set` are an admin's, audited as them. Signed in as every command that changes data is.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from console.cli.core import services_for
from console.cli.signin import SIGN_IN_HELP as SIGN_IN
from console.cli.signin import add_sign_in_arguments, sign_in


def _weight(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number like 0.8") from None


def _values(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="what supervisors and reports call it")
    parser.add_argument("--script", metavar="FLOW", help="the call flow's id (default: the kind)")
    parser.add_argument("--weight", type=_weight, help="0 to 10: how much its tasks count")
    parser.add_argument("--attempts", type=int, metavar="N", help="dials per task, 1 to 20")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from queues.campaigns import KINDS

    group = sub.add_parser("campaigns", help="list, add and change campaigns (outreach programs)")
    actions = group.add_subparsers(dest="campaigns_command", metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list",
        parents=[common],
        help="the campaigns (supervisors: their pharmacies'; admins: all)",
        description="Each campaign with its id, pharmacy ('all': shared by every pharmacy), "
        "kind, weight, attempts and state. " + SIGN_IN,
    )
    listing.add_argument(
        "--pharmacy", metavar="CODE", help="one pharmacy's (and the shared), or all"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object on the last line")
    add_sign_in_arguments(listing)
    listing.set_defaults(func=cmd_campaigns_list)

    add = actions.add_parser(
        "add",
        parents=[common],
        help="add the standard campaigns to a pharmacy, or one campaign (admins)",
        description="--standard: every standard program the pharmacy does not run yet "
        f"({', '.join(KINDS)}). --kind: one campaign, the standard values where not given. "
        "An admin's command, audited. " + SIGN_IN,
    )
    add.add_argument("--pharmacy", metavar="CODE", required=True, help="a pharmacy, or all")
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("--standard", action="store_true", help="the standard set")
    what.add_argument("--kind", choices=KINDS, help="one campaign of this kind")
    _values(add)
    add.add_argument("--paused", action="store_true", help="added paused (no tasks until resumed)")
    add_sign_in_arguments(add)
    add.set_defaults(func=cmd_campaigns_add)

    change = actions.add_parser(
        "set",
        parents=[common],
        help="change a campaign (admins)",
        description="Change campaign ID (see `outreach campaigns list`). A new weight, --pause "
        "and --resume rebuild the queues of the patients it reaches at once, as the supervisor's "
        "keys on the floor do. An admin's command, audited. " + SIGN_IN,
    )
    change.add_argument("id", type=int, metavar="ID")
    _values(change)
    state = change.add_mutually_exclusive_group()
    state.add_argument("--pause", action="store_true", help="no new work; open work set aside")
    state.add_argument("--resume", action="store_true", help="back to work")
    add_sign_in_arguments(change)
    change.set_defaults(func=cmd_campaigns_set)


def _changes(args: argparse.Namespace, active: bool | None) -> Any:
    from queues.campaigns import CampaignChanges

    return CampaignChanges(
        name=args.name,
        script_id=args.script,
        weight=args.weight,
        attempt_limit=args.attempts,
        active=active,
    )


def _print(views: list[Any]) -> None:
    print(f"{'id':>5}  {'pharmacy':<10}{'kind':<21}{'name':<24}{'weight':>6}{'tries':>6}  state")
    for v in views:
        state = "active" if v.active else "paused"
        print(
            f"{v.id:>5}  {v.pharmacy:<10}{v.kind:<21}{v.name[:23]:<24}{v.weight:>6.2f}"
            f"{v.attempt_limit:>6}  {state}"
        )


def cmd_campaigns_list(args: argparse.Namespace) -> int:
    from queues.campaigns import list_campaigns
    from queues.store.db import reading

    store = services_for(args)
    try:
        user = sign_in(args, store, "supervisor", "admin", doing="list campaigns")
        with reading(store.sessions) as session:
            views = list_campaigns(session, user, args.pharmacy)
    finally:
        store.close()
    _print(views)
    if not views:
        print("no campaigns: add them with `outreach campaigns add --pharmacy CODE --standard`")
    if args.json:
        print(json.dumps({"campaigns": [v.as_json() for v in views]}, sort_keys=True))
    return 0


def cmd_campaigns_add(args: argparse.Namespace) -> int:
    from queues.campaigns import add_campaign, add_standard_campaigns
    from queues.errors import OutreachError
    from queues.store.db import transaction

    given = [f for f in ("name", "script", "weight", "attempts", "paused") if getattr(args, f)]
    if args.standard and given:
        raise OutreachError(
            f"--{given[0]}: the standard set takes the standard values; change one after with "
            "`outreach campaigns set ID`"
        )
    store = services_for(args)
    try:
        user = sign_in(args, store, "admin", doing="add campaigns")
        with transaction(store.sessions) as session:
            if args.standard:
                views = add_standard_campaigns(session, args.pharmacy, by=user)
            else:
                active = False if args.paused else None
                views = [
                    add_campaign(session, args.pharmacy, args.kind, _changes(args, active), by=user)
                ]
    finally:
        store.close()
    if not views:
        print(f"{args.pharmacy} runs every standard campaign already; nothing added")
        return 0
    print(f"added {len(views)} campaign(s) for {args.pharmacy}:")
    _print(views)
    print("run `outreach queue build` for their tasks")
    return 0


def cmd_campaigns_set(args: argparse.Namespace) -> int:
    from queues.campaigns import set_campaign
    from queues.store.db import transaction

    active = True if args.resume else False if args.pause else None
    store = services_for(args)
    try:
        user = sign_in(args, store, "admin", doing="change campaigns")
        with transaction(store.sessions) as session:
            view = set_campaign(
                session,
                args.id,
                _changes(args, active),
                by=user,
                now=store.clock.now(),
                settings=store.settings.queue,
            )
    finally:
        store.close()
    print(f"changed campaign {view.id}:")
    _print([view])
    return 0
