"""The SIP account a softphone uses (the console builds it from config.toml's [sip] section:
console/services/phone_line.py) and SIP timer values."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from console.softphone.message import SipParseError, SipUri, parse_uri


@dataclass(frozen=True)
class SipTimers:
    """RFC 3261 §17 timers. Tests shorten T1 so that Timer B (64·T1) is seconds, not 32 s."""

    t1: float = 0.5
    t2: float = 4.0

    @property
    def timeout(self) -> float:  # Timer B / F
        return 64 * self.t1


TRANSPORTS = ("udp", "tcp", "tls")
SRTP_MODES = ("off", "optional", "required")
# Where the pharmacy's number goes (RFC 3325 P-Asserted-Identity, draft Remote-Party-ID, or the
# From user for a trunk that takes the presented number there).
CALLER_ID_MODES = ("p-asserted-identity", "remote-party-id", "from-user")


@dataclass(frozen=True)
class SipAccount:
    server: str = ""  # outbound proxy / trunk / PBX; empty: send to the URI's host
    port: int = 5060
    username: str = ""
    password: str = ""
    auth_username: str = ""
    registrar: str = ""  # empty: no registration
    local_ip: str = "127.0.0.1"
    local_port: int = 0
    caller_id: str = ""
    display_name: str = ""
    dial_timeout: float = 45.0
    register_expires: int = 300
    audio: bool = True
    transport: str = "udp"  # udp | tcp | tls (tls: the server's certificate is verified)
    srtp: str = "off"  # off | optional (offer SRTP, take RTP) | required (SRTP or no call)
    caller_id_mode: str = "p-asserted-identity"
    tls_ca_file: str = ""  # a PEM file of CAs to trust for TLS; empty: the system's

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("transport", self.transport, TRANSPORTS),
            ("srtp", self.srtp, SRTP_MODES),
            ("caller_id_mode", self.caller_id_mode, CALLER_ID_MODES),
        ):
            if value not in allowed:
                raise ValueError(f"[sip].{name} = {value!r}: expected one of {', '.join(allowed)}")

    def transport_for(self, target: SipUri) -> str:
        """A sips: URI always goes over TLS (RFC 3261 §26.2.2); else the account's transport,
        or the URI's own ;transport= parameter."""
        if target.scheme == "sips":
            return "tls"
        param = target.param("transport")
        if param in TRANSPORTS:
            return param
        return self.transport

    @property
    def configured(self) -> bool:
        """Without a server the console stays in manual-dial mode."""
        return bool(self.server)

    @property
    def auth_user(self) -> str:
        return self.auth_username or self.username

    def target_uri(self, target: str) -> SipUri:
        """A full SIP URI as given, or a number dialled through the configured server."""
        target = target.strip()
        if target.lower().startswith("tel:"):
            target = target[4:].split(";")[0]
        if target.lower().startswith(("sip:", "sips:")):
            return parse_uri(target)
        number = "".join(ch for ch in target if ch.isdigit() or ch in "+*#")
        if not number or number != target.replace(" ", "").replace("-", ""):
            raise SipParseError(f"not a phone number or SIP URI: {target!r}")
        if not self.server:
            raise SipParseError(
                f"no SIP server in [sip].server to dial {number} through: give a full sip: URI"
            )
        port = f":{self.port}" if self.port != 5060 else ""
        scheme = "sips" if self.transport == "tls" else "sip"
        return parse_uri(f"{scheme}:{number}@{self.server}{port}")

    def local_address(self) -> str:
        """The address to bind and to put in Via/Contact/SDP: the configured one, or, for
        0.0.0.0/empty, the one the kernel would route to the server from."""
        if self.local_ip and self.local_ip != "0.0.0.0":
            return self.local_ip
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((self.server or "192.0.2.1", self.port))  # no packet is sent
            address: str = probe.getsockname()[0]
            return address
        except OSError:
            return "127.0.0.1"
        finally:
            probe.close()
