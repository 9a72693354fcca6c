"""The console in a browser (`outreach serve`), for people away from a terminal.

A browser signs in on our own page first (console.serve.server); only then does its websocket
start an `outreach console` process, which opens already signed in as that user through a
one-time ticket (console.serve.ticket). Origin checked, consoles capped in all and per user,
HTTPS from `[serve] tls_cert`/`tls_key` or a TLS proxy in front said so. The database URL and
config travel in the environment, never on a command line that `ps` shows.

This module stays light (no aiohttp): `outreach serve --help` imports it.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import ssl
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from queues.errors import OutreachError

if TYPE_CHECKING:
    from console.serve.settings import ServeSettings
    from console.services.store import Store

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def console_command(python: str = sys.executable) -> str:
    """The command each signed-in socket runs (textual-serve hands it to a shell, which `exec`
    replaces: one process per console)."""
    return f"exec {shlex.quote(python)} -m console console"


def console_environment(database: str | None, config: str | None) -> Mapping[str, str]:
    env: dict[str, str] = {}
    if database:
        env["OUTREACH_DATABASE_URL"] = database
    if config:
        env["OUTREACH_CONFIG"] = os.path.abspath(config)
    return env


def tls_context(cert: str, key: str, source: str) -> ssl.SSLContext:
    """A server context for HTTPS/WSS from PEM files (TLS 1.2 at the least)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        why = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise OutreachError(
            f"{source}: serve.tls_cert / serve.tls_key: cannot load {cert} with {key}: {why}"
        ) from None
    return context


def serve(
    store: Store,
    settings: ServeSettings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    database: str | None = None,
    config: str | None = None,
    public_origin: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    behind_tls_proxy: bool = False,
) -> None:
    """Serve until interrupted (Ctrl+C or SIGTERM)."""
    try:
        from console.serve.server import GuardedServer
    except ImportError:
        raise OutreachError(
            "serving to a browser needs textual-serve: pip install textual-serve"
        ) from None
    if not 0 < port < 65536:
        raise OutreachError(f"--port: {port} is not a TCP port (1-65535)")
    os.environ.update(console_environment(database, config))
    GuardedServer(
        console_command(),
        store=store,
        settings=settings,
        host=host,
        port=port,
        public_origin=public_origin,
        ssl_context=ssl_context,
        behind_tls_proxy=behind_tls_proxy,
    ).serve()
