"""Signing a user in on the command line: `--user NAME` or OUTREACH_USER; the password from
OUTREACH_PASSWORD or a prompt; the one-time code from `--code`, OUTREACH_TOTP or a prompt.

The same check as the console's (queues.auth: lockout per account, slowing per place, TOTP), with
the place "cli@HOST". A command that reads or changes patient data or users calls `sign_in` first
and acts, and is audited, as that user.
"""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys
from typing import TYPE_CHECKING

from queues.errors import NotAllowed, OutreachError, SecondFactorRequired
from queues.views.user import SignedInUser

if TYPE_CHECKING:
    from console.services.store import Store


def add_sign_in_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", metavar="NAME", help="sign in as NAME (default: OUTREACH_USER)")
    parser.add_argument(
        "--code", metavar="DIGITS", help="one-time code, if your account has one (or OUTREACH_TOTP)"
    )


def cli_source() -> str:
    return f"cli@{socket.gethostname()}"[:128]


def _ask(prompt: str, env: str, secret: bool) -> str:
    value = os.environ.get(env, "")
    if value:
        return value
    if not sys.stdin.isatty():
        raise OutreachError(f"{prompt.rstrip(': ').lower()} needed: set {env} or run on a terminal")
    return getpass.getpass(prompt) if secret else input(prompt)


def sign_in(args: argparse.Namespace, store: Store, *roles: str) -> SignedInUser:
    """The signed-in user, with one of `roles` (any role when none are named)."""
    from queues.auth import authenticate
    from queues.store.db import transaction
    from queues.timeutil import utcnow

    username = getattr(args, "user", None) or os.environ.get("OUTREACH_USER", "")
    if not username:
        raise OutreachError("sign in first: give --user NAME (or set OUTREACH_USER)")
    password = _ask("Password: ", "OUTREACH_PASSWORD", secret=True)
    code = getattr(args, "code", None) or os.environ.get("OUTREACH_TOTP") or None
    totp_roles = tuple(store.settings.auth.totp_required_roles)
    for _ in range(2):
        try:
            with transaction(store.sessions) as session:
                user = authenticate(
                    session,
                    username,
                    password,
                    source=cli_source(),
                    now=utcnow(),
                    code=code,
                    totp_roles=totp_roles,
                )
            break
        except SecondFactorRequired:
            if code is not None or not sys.stdin.isatty():
                raise OutreachError(
                    "this account signs in with a one-time code too: give --code DIGITS "
                    "(or set OUTREACH_TOTP)"
                ) from None
            code = input("One-time code: ")
    else:  # pragma: no cover - the loop breaks or raises
        raise OutreachError("sign-in did not complete")
    if roles and user.role not in roles:
        needed = " or ".join(_a(r) for r in roles)
        raise NotAllowed(f"{user.username} is {_a(user.role)}; this needs {needed}")
    return user


def _a(role: str) -> str:
    return f"an {role}" if role[:1] in "aeiou" else f"a {role}"
