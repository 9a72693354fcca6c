"""Free UDP ports on loopback and waiting for sipp to hold one: for the softphone tests and for
bench/call_setup.py (no pytest here)."""

from __future__ import annotations

import os
import random
import socket
import time

# Ports are picked below Linux's ephemeral range (32768-60999), where the kernel hands out the
# client ports of every database and HTTP connection the suite makes, and each pytest-xdist worker
# draws from its own 2,000 ports: a port checked free here is not taken by another worker's peer or
# by an outgoing connection before our peer binds it.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_LOW = 20000 + (_WORKER % 6) * 2000
_HIGH = _LOW + 2000


def _free(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_udp_port(pair: bool = False) -> int:
    """A free UDP port, free on TCP too (kamailio listens on both); with port+2 as well when
    `pair` (sipp's RTP echo uses both)."""
    for _ in range(200):
        port = random.randrange(_LOW, _HIGH - 2, 2 if pair else 1)
        wanted = [port, port + 2] if pair else [port]
        if all(_free(p, socket.SOCK_DGRAM) and _free(p, socket.SOCK_STREAM) for p in wanted):
            return port
    raise RuntimeError(f"no free UDP port in {_LOW}-{_HIGH} on 127.0.0.1")


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
    for _ in range(200):
        port = random.randrange(_LOW, _HIGH)
        if _free(port, socket.SOCK_STREAM):
            return port
    raise RuntimeError(f"no free TCP port in {_LOW}-{_HIGH} on 127.0.0.1")


def wait_listening(port: int, what: str = "sipp") -> None:
    """Return once something accepts TCP connections on the port."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)  # polling for another process to listen; there is no event to wait on
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} (TCP)")
