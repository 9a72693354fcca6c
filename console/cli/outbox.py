"""`outreach outbox deliver [--loop] [--json]`: send the follow-up actions to the pharmacies.
An admin's command (it sends every pharmacy's actions), signed in and audited as them."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType
from typing import Any

from console.cli.core import services_for
from console.cli.signin import SIGN_IN_HELP, add_sign_in_arguments, sign_in
from queues.errors import OutreachError

# The outbox's states --json reports beside what this run delivered.
STATES = ("retrying", "dead", "pending")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    outbox = sub.add_parser("outbox", help="the follow-up actions sent to the pharmacies")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    deliver = outbox_sub.add_parser(
        "deliver",
        parents=[common],
        help="send what is due to each pharmacy's endpoint",
        description="Send every follow-up action that is due to its pharmacy's endpoint "
        "(HTTPS; signed with the key in the environment variable [outbox].key_env names, "
        "default OUTREACH_OUTBOX_KEY), once each; a failed one is retried later with "
        "backoff, dead after [outbox].max_tries. Any number of deliverers may run at once "
        "(consoles deliver too): each action is claimed while it is sent. An admin's command "
        "(it sends every pharmacy's actions; a service runs it with an admin account's "
        "OUTREACH_USER and OUTREACH_PASSWORD); the run is audited as that admin. " + SIGN_IN_HELP,
    )
    deliver.add_argument(
        "--loop",
        action="store_true",
        help="keep delivering (new actions and retries as they fall due) until interrupted",
    )
    deliver.add_argument(
        "--json",
        action="store_true",
        help="end with one JSON object: delivered (by this run), and the actions now "
        "retrying, dead and pending",
    )
    add_sign_in_arguments(deliver)
    deliver.set_defaults(func=cmd_deliver)


def cmd_deliver(args: argparse.Namespace) -> int:
    from queues.audit import record
    from queues.outbox.delivery import Deliverer, Tally
    from queues.outbox.settings import signing_key
    from queues.store.db import transaction

    store = services_for(args)
    try:
        user = sign_in(args, store, "admin", doing="deliver the outbox")
        try:
            key = signing_key(store.settings.outbox)
        except OutreachError as missing:
            # Nothing can be signed, so nothing is sent; a script reading --json still gets
            # what waits in the outbox, and the exit status says it was not delivered.
            print(f"outreach: {missing}", file=sys.stderr)
            if args.json:
                from queues.outbox.claims import counts
                from queues.store.db import reading

                with reading(store.sessions) as session:
                    waiting = counts(session)
                print(json.dumps({"delivered": 0, **{k: waiting[k] for k in STATES}}))
            return 1
        deliverer = Deliverer(store.sessions, store.settings.outbox, key)
        told: set[str] = set()

        def tell(done: Tally) -> None:
            for code, why in sorted(done.problems.items()):
                if code not in told:  # once per run, not once per pass
                    told.add(code)
                    print(f"outreach outbox: {why}", file=sys.stderr)
            if args.loop and not args.json and (done.delivered or done.retrying or done.dead):
                print(
                    f"delivered {done.delivered}, to retry {done.retrying}, dead {done.dead}",
                    flush=True,
                )

        try:
            if args.loop:
                stop = threading.Event()

                def stopping(_signum: int, _frame: FrameType | None) -> None:
                    stop.set()

                signal.signal(signal.SIGTERM, stopping)
                signal.signal(signal.SIGINT, stopping)
                total = deliverer.run(stop, on_pass=tell)
            else:
                total = deliverer.deliver_due()
                tell(total)
            now = deliverer.counts()
        finally:
            deliverer.close()
        with transaction(store.sessions) as session:
            record(
                session,
                "outbox_delivered",
                user_id=user.id,
                detail={
                    "delivered": total.delivered,
                    "retrying": total.retrying,
                    "dead": total.dead,
                },
            )
    finally:
        store.close()
    summary = {"delivered": total.delivered, **now}
    summary = {k: summary[k] for k in ("delivered", *STATES)}
    if not args.json:
        print(
            f"delivered {summary['delivered']} · in the outbox now: {summary['pending']} "
            f"pending, {summary['retrying']} retrying, {summary['dead']} dead"
        )
    if args.json:
        print(json.dumps(summary))
    return 0
