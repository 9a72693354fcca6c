"""Supervisor commands: `outreach serve` (the console, monitor included, in a browser)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from console.config import Settings, settings_from_args
from console.serve import DEFAULT_HOST, DEFAULT_PORT, is_loopback, serve


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the console to a browser (textual-serve); sign-in required",
        description="Serve the console over HTTP for a browser. Every tab opens on the sign-in "
        "screen; supervisors get the monitor. Listens on loopback unless --host says otherwise: "
        "put it behind a TLS proxy before opening it to a network.",
    )
    cmd.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    cmd.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    cmd.add_argument(
        "--public-url",
        metavar="URL",
        help="the address browsers use, when it differs (a proxy, or --host 0.0.0.0)",
    )
    cmd.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    # Read the settings once here so a bad config stops us before anyone opens a tab.
    settings = settings_from_args(args.config, args.database or None)
    _require_pharmacies(settings)
    if not is_loopback(args.host):
        print(
            f"outreach serve: listening on {args.host}, beyond this machine; the traffic is "
            "plain HTTP (use a TLS proxy)",
            file=sys.stderr,
        )
    serve(
        args.host,
        args.port,
        database=settings.database.url,
        config=args.config,
        public_url=args.public_url,
    )
    return 0


def _require_pharmacies(settings: Settings) -> None:
    """A browser sign-in on an empty database fails every log-in: say why before serving."""
    from console.cli.empty import require_pharmacies
    from console.services.store import open_store

    store = open_store(settings)
    try:
        require_pharmacies(store)
    finally:
        store.close()
