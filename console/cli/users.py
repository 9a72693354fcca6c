"""`outreach users totp NAME`: enrol a user in the TOTP second factor (a QR code in the terminal
for their authenticator app), or `--remove` it. An admin's command, signed in.

`outreach users unlock NAME`: unlock an account locked after failed sign-ins before its 15
minutes run out (a supervisor: an agent of their pharmacies; an admin: anyone), signed in."""

from __future__ import annotations

import argparse
import io
import sys
from typing import Any

from console.cli.signin import SIGN_IN_HELP, add_sign_in_arguments, sign_in


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    users_sub = sub.choices["users"].users_sub
    totp = users_sub.add_parser(
        "totp",
        parents=[common],
        help="set up (or --remove) a user's one-time codes (TOTP), with a QR code to scan",
        description="Give NAME a new TOTP secret (replacing any) and draw it as a QR code for an "
        "authenticator app; from then on NAME signs in with a code too. Roles that must have "
        "one are listed in [auth].totp_required_roles. An admin's command, audited as them. "
        + SIGN_IN_HELP,
    )
    totp.add_argument("name")
    totp.add_argument("--remove", action="store_true", help="switch the second factor off")
    add_sign_in_arguments(totp)
    totp.set_defaults(func=cmd_totp)

    unlock = users_sub.add_parser(
        "unlock",
        parents=[common],
        help="unlock an account locked after failed sign-ins (supervisors and admins)",
        description="Unlock NAME's account before its lockout runs out: their failed sign-ins "
        "are forgotten, and the place the failures that locked it came from is no longer "
        "slowed. A supervisor unlocks an agent of their own pharmacies, an admin any account; "
        "audited (account_unlocked) as the user signed in. " + SIGN_IN_HELP,
    )
    unlock.add_argument("name")
    add_sign_in_arguments(unlock)
    unlock.set_defaults(func=cmd_unlock)


def cmd_totp(args: argparse.Namespace) -> int:
    from console.cli.core import services_for
    from queues.auth import enroll_totp, remove_totp
    from queues.store.db import transaction

    store = services_for(args)
    try:
        sign_in(args, store, "admin", doing="set up one-time codes")
        with transaction(store.sessions) as session:
            if args.remove:
                remove_totp(session, args.name)
                uri = None
            else:
                uri = enroll_totp(session, args.name)
    finally:
        store.close()
    if uri is None:
        print(f"{args.name} signs in with a password only now")
        return 0
    print(f"Scan this with {args.name}'s authenticator app:\n")
    print(qr_text(uri))
    print(f"Or enter this by hand: {uri}")
    print(f"From now on {args.name} signs in with a one-time code too.", file=sys.stderr)
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    from console.cli.core import services_for
    from queues.floor.sign_ins import unlock_account
    from queues.store.db import transaction
    from queues.timeutil import utcnow

    store = services_for(args)
    try:
        user = sign_in(args, store, "supervisor", "admin", doing="unlock an account")
        with transaction(store.sessions) as session:
            done = unlock_account(session, user, args.name, utcnow())
    finally:
        store.close()
    print(done)
    return 0


def qr_text(data: str) -> str:
    """The QR code in text (two rows per character line), for any terminal."""
    import qrcode  # type: ignore[import-untyped]

    qr = qrcode.QRCode(border=2)
    qr.add_data(data)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()
