"""Free UDP ports on loopback and waiting for sipp to hold one: for the softphone tests and for
bench/call_setup.py (no pytest here)."""

from __future__ import annotations

import socket
import time


def free_udp_port(pair: bool = False) -> int:
    """A port the OS says is free (with port+2 free too when `pair`: sipp's RTP echo uses both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if not pair:
            return port
        if port % 2 or port > 65000:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s2:
                s2.bind(("127.0.0.1", port + 2))
            return port
        except OSError:
            continue
    raise RuntimeError("no free UDP port pair on 127.0.0.1")


def wait_bound(port: int) -> None:
    """Return once something listens on the UDP port (sipp starting up), by trying to bind it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.02)  # polling for another process to bind; there is no event to wait on
    raise RuntimeError(f"sipp did not bind 127.0.0.1:{port}")


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def wait_listening(port: int, what: str = "sipp") -> None:
    """Return once something accepts TCP connections on the port."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)  # polling for another process to listen; there is no event to wait on
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} (TCP)")
