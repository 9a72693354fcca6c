"""The console in a browser (textual-serve), for supervisors away from a terminal.

Each browser tab starts its own `outreach console` process through a websocket; that process opens
on the login screen, so nobody sees anything before signing in, and only supervisors reach the
monitor. The database URL and config travel in the environment, never on a command line that
`ps` shows.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import sys
from collections.abc import Mapping

from queues.errors import OutreachError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def console_command(python: str = sys.executable) -> str:
    """The command each browser tab runs (textual-serve hands it to a shell)."""
    return f"{shlex.quote(python)} -m console console"


def console_environment(database: str | None, config: str | None) -> Mapping[str, str]:
    env: dict[str, str] = {}
    if database:
        env["OUTREACH_DATABASE_URL"] = database
    if config:
        env["OUTREACH_CONFIG"] = os.path.abspath(config)
    return env


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    database: str | None = None,
    config: str | None = None,
    public_url: str | None = None,
) -> None:
    """Serve until interrupted (Ctrl+C or SIGTERM)."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise OutreachError(
            "serving to a browser needs textual-serve: pip install textual-serve"
        ) from None
    if not 0 < port < 65536:
        raise OutreachError(f"--port: {port} is not a TCP port (1-65535)")
    os.environ.update(console_environment(database, config))
    server = Server(
        console_command(),
        host=host,
        port=port,
        title="Outreach Console",
        public_url=public_url,
    )
    server.serve()
