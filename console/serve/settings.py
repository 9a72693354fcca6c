"""`[serve]` in config.toml: how many consoles a served browser may open, how long a browser's
session lasts idle, and TLS (a certificate and key, or a proxy in front that terminates it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from queues.errors import ConfigError


@dataclass(frozen=True)
class ServeSettings:
    # Console processes running at once (each is a whole `outreach console`, ~150 MB): in all,
    # and per signed-in user. Over either, the browser is told so and nothing is started.
    max_consoles: int = 10
    max_consoles_per_user: int = 2
    # A browser session with no console open ends after this long without a request.
    session_idle_minutes: int = 15
    # HTTPS/WSS: a PEM certificate (chain) and its private key. Both or neither.
    tls_cert: str = ""
    tls_key: str = ""
    # true: a TLS proxy in front terminates HTTPS (then `public_url` must be its https:// URL).
    # Without TLS here or a proxy, `outreach serve` listens on loopback only.
    behind_tls_proxy: bool = False
    # The address browsers use, scheme://host[:port]; the Origin every request must carry.
    # Empty: the listening address (on loopback, the Host the browser asked for).
    public_url: str = ""


RANGES: dict[str, tuple[int, int]] = {
    "serve.max_consoles": (1, 500),
    "serve.max_consoles_per_user": (1, 20),
    "serve.session_idle_minutes": (1, 480),
}


def check_serve(serve: ServeSettings, source: str) -> None:
    """Errors a person can act on, naming the file and the key."""
    if bool(serve.tls_cert) != bool(serve.tls_key):
        missing = "serve.tls_key" if serve.tls_cert else "serve.tls_cert"
        raise ConfigError(
            source, missing, "give both serve.tls_cert and serve.tls_key (or neither)"
        )
    for key, value in (("serve.tls_cert", serve.tls_cert), ("serve.tls_key", serve.tls_key)):
        if value and not Path(value).is_file():
            raise ConfigError(source, key, f"no such file: {value}")
    if serve.public_url:
        check_public_url(serve.public_url, source, "serve.public_url")


def check_public_url(url: str, source: str, key: str) -> str:
    """The URL's origin (scheme://host[:port], lower case, default port dropped)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            source, key, f"expected http(s)://HOST[:PORT] with no path, got {url[:80]!r}"
        )
    return origin_of(parts.scheme, parts.hostname, port)


def origin_of(scheme: str, host: str, port: int | None) -> str:
    """An origin as browsers send it in the Origin header (RFC 6454 §6.1)."""
    host = host.lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"
