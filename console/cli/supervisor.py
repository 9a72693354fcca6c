"""Supervisor commands: `outreach serve` (the console, monitor included, in a browser)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from console.config import Settings, settings_from_args, setup_logging
from console.serve import DEFAULT_HOST, DEFAULT_PORT, is_loopback, serve, tls_context
from queues.errors import OutreachError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the console to a browser; sign-in first, HTTPS or a TLS proxy off loopback",
        description="Serve the console to a browser. The browser signs in on a page of its own "
        "first (user name, password, and the one-time code when the account has one; the same "
        "lockout and slowing as the console's, per browser address); only then does a tab "
        "start a console, which opens already signed in (a one-time ticket, never a second "
        "password). Requests from another site's page (their Origin) are refused; consoles are "
        "capped in all and per user ([serve] max_consoles, max_consoles_per_user). Signing out "
        "in the console ends the browser's session. HTTPS/WSS with [serve] tls_cert and tls_key "
        "in the config; without them serve listens on loopback only, unless "
        "--behind-tls-proxy says a TLS proxy in front terminates HTTPS (then give its "
        "https:// address with --public-url).",
    )
    cmd.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    cmd.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    cmd.add_argument(
        "--public-url",
        metavar="URL",
        help="the address browsers use, scheme://host[:port] (a proxy, or --host 0.0.0.0): "
        "every request's Origin must be it (default: [serve] public_url, else the listening "
        "address; on loopback the host the browser asked for)",
    )
    cmd.add_argument(
        "--behind-tls-proxy",
        action="store_true",
        help="a TLS proxy in front terminates HTTPS ([serve] behind_tls_proxy): serve plain "
        "HTTP to it off loopback, cookies marked Secure",
    )
    cmd.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    # Read the settings once here so a bad config stops us before anyone opens a tab.
    settings = settings_from_args(args.config, args.database or None)
    conf = settings.serve
    behind_proxy = bool(args.behind_tls_proxy or conf.behind_tls_proxy)
    public_origin = _public_origin(args.public_url or conf.public_url, args.public_url)
    context = tls_context(conf.tls_cert, conf.tls_key, settings.source) if conf.tls_cert else None
    host = args.host
    if not is_loopback(host) and context is None and not behind_proxy:
        raise OutreachError(
            f"serve: --host {host} reaches beyond this machine and the traffic would be plain "
            "HTTP (passwords and patients in clear): set [serve] tls_cert and tls_key in "
            f"{settings.source}, or, if a TLS proxy in front terminates HTTPS, say so with "
            "--behind-tls-proxy ([serve] behind_tls_proxy = true)"
        )
    if behind_proxy and (public_origin is None or not public_origin.startswith("https://")):
        raise OutreachError(
            "serve: behind a TLS proxy, give the https:// address browsers use with "
            "--public-url (or [serve] public_url): every request's Origin is checked against it"
        )
    if host in ("0.0.0.0", "::") and public_origin is None:
        raise OutreachError(
            f"serve: --host {host} listens on every address: give the one browsers use with "
            "--public-url (every request's Origin is checked against it)"
        )
    setup_logging(settings)
    store = _open_store_with_pharmacies(settings)
    if context is not None:
        print(
            f"outreach serve: HTTPS on {host}:{args.port} (certificate {conf.tls_cert})",
            file=sys.stderr,
        )
    elif behind_proxy:
        print(
            f"outreach serve: plain HTTP on {host}:{args.port}, expecting a TLS proxy in front: "
            f"browsers must come through {public_origin} only, and nothing but the proxy may "
            "reach this port",
            file=sys.stderr,
        )
    else:
        print(
            f"outreach serve: plain HTTP on {host}:{args.port}, loopback only (this machine)",
            file=sys.stderr,
        )
    try:
        serve(
            store,
            conf,
            host=host,
            port=args.port,
            database=settings.database.url,
            config=args.config,
            public_origin=public_origin,
            ssl_context=context,
            behind_tls_proxy=behind_proxy,
        )
    finally:
        store.close()
    return 0


def _public_origin(url: str, from_command_line: str | None) -> str | None:
    if not url:
        return None
    from console.serve.settings import check_public_url

    where = (
        ("command line", "--public-url") if from_command_line else ("config", "serve.public_url")
    )
    return check_public_url(url, *where)


def _open_store_with_pharmacies(settings: Settings) -> Any:
    """A browser sign-in on an empty database fails every log-in: say why before serving."""
    from console.cli.core import require_database
    from console.cli.empty import require_pharmacies
    from console.services.store import open_store

    require_database(settings.database.url)
    store = open_store(settings)
    try:
        require_pharmacies(store)
    except BaseException:
        store.close()
        raise
    return store
