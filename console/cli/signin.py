"""Signing a user in on the command line: `--user NAME` or OUTREACH_USER; the password from
OUTREACH_PASSWORD or a prompt; the one-time code from `--code`, OUTREACH_TOTP or a prompt.

The same check as the console's (queues.auth: lockout per account, slowing per place, TOTP), with
the place "cli@HOST". A command that reads or changes patient data, users or pharmacies calls
`sign_in` first and acts, and is audited, as that user; what each role may do, and on which
pharmacies, is queues.access's rule (the CLI asks it, the domain enforces it).
"""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys
from typing import TYPE_CHECKING

from queues.errors import AuthenticationFailed, OutreachError, SecondFactorRequired
from queues.views.user import SignedInUser

if TYPE_CHECKING:
    from console.services.store import Store


# Said in the --help of every command that signs a user in.
SIGN_IN_HELP = (
    "Sign-in: --user NAME (or OUTREACH_USER); the password from OUTREACH_PASSWORD or a prompt "
    "on a terminal; --code DIGITS (or OUTREACH_TOTP) if the account has one-time codes."
)


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


def _refuse_a_database_without_users(store: Store) -> None:
    """A sign-in refused by a database that holds no user at all says so (one made and never
    given its first admin): the generic refusal would send the user after their password. It
    tells nothing of any account."""
    from queues.access import no_users_yet
    from queues.store.db import reading

    with reading(store.sessions) as session:
        empty = no_users_yet(session)
    if empty:
        url = store.engine.url.render_as_string(hide_password=True)
        raise OutreachError(
            f"the database {url} holds no users: point --database (or OUTREACH_DATABASE_URL) at "
            "the database that holds them, or make its first admin with `outreach users add NAME "
            "--role admin`"
        )


def wants_sign_in(args: argparse.Namespace) -> bool:
    """A user was named (--user or OUTREACH_USER), for a command a sign-in is optional to."""
    return bool(getattr(args, "user", None) or os.environ.get("OUTREACH_USER"))


def sign_in(
    args: argparse.Namespace, store: Store, *roles: str, doing: str = "do that"
) -> SignedInUser:
    """The signed-in user, with one of `roles` (any role when none are named); `doing` words
    the action for a refusal ("import data")."""
    from queues.access import require_role
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
        except AuthenticationFailed:
            _refuse_a_database_without_users(store)
            raise
        except SecondFactorRequired:
            if code is not None or not sys.stdin.isatty():
                raise OutreachError(
                    "this account signs in with a one-time code too: give --code DIGITS "
                    "(or set OUTREACH_TOTP)"
                ) from None
            code = input("One-time code: ")
    else:  # pragma: no cover - the loop breaks or raises
        raise OutreachError("sign-in did not complete")
    if roles:
        require_role(user, roles, doing)
    return user
