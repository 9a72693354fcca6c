"""The SIP sockets and the transaction layer (RFC 3261 §17, RFC 6026) over UDP, TCP and TLS.

UDP is one socket. TCP and TLS (RFC 3261 §18, §26.2: the standard `ssl` module, the server's
certificate and name verified) are one connection per next hop, opened when the first request goes
there and kept for the requests the far end sends back on it; messages on a stream are framed by
Content-Length (§18.3). Over a stream nothing is retransmitted (§17.1.1.2: Timers A and E are for
unreliable transports); Timers B and F still apply.

Client transactions retransmit (Timer A/E), time out (Timer B/F) and, for a non-2xx final response
to an INVITE, send the ACK themselves (§17.1.1.3). Requests we answer are remembered for 64·T1 so
that a retransmission gets the same response again. Nothing here blocks: the softphone thread
calls `on_readable()` and `on_time()`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import selectors
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from console.softphone.account import SipTimers
from console.softphone.message import (
    SipMessage,
    SipParseError,
    parse,
    request,
    response_to,
    token,
)

log = logging.getLogger(__name__)
Address = tuple[str, int]
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # Linux: report ICMP errors on this socket
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)


CONNECT_TIMEOUT = 4.0  # seconds to open a TCP connection and finish a TLS handshake
SEND_TIMEOUT = 2.0  # a stream that takes no bytes for this long is given up


class TransportError(OSError):
    pass


@dataclass
class StreamConn:
    """One TCP or TLS connection to a next hop."""

    proto: str  # "tcp" or "tls"
    sock: socket.socket
    peer: Address
    local: Address
    buf: bytearray = field(default_factory=bytearray)

    def fileno(self) -> int:
        return self.sock.fileno()


def resolve(host: str, port: int) -> Address:
    try:
        info = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as exc:
        raise TransportError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    address = info[0][4]
    return str(address[0]), int(address[1])


@dataclass
class ClientTx:
    request: SipMessage
    dest: Address
    on_response: Callable[[SipMessage], None]
    on_failure: Callable[[str, bool], None]  # (what, is_network_error)
    interval: float
    next_retransmit: float
    deadline: float
    state: str = "trying"  # trying, proceeding, completed, accepted, terminated
    ack: bytes = b""
    reliable: bool = False  # over TCP/TLS: never retransmitted (§17.1.1.2)

    @property
    def key(self) -> tuple[str, str]:
        return self.request.branch, self.request.method

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    @property
    def pending(self) -> bool:
        """Still waiting for a final response."""
        return self.state in ("trying", "proceeding")


class SipTransport:
    def __init__(
        self, local_ip: str, local_port: int, timers: SipTimers, *, tls_ca_file: str = ""
    ) -> None:
        self.timers = timers
        self.tls_ca_file = tls_ca_file
        self._tls: ssl.SSLContext | None = None
        # Next hops reached over TCP/TLS (proto, the name its certificate must carry), and the
        # connections open to them.
        self.routes: dict[Address, tuple[str, str]] = {}
        self.streams: dict[Address, StreamConn] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((local_ip, local_port))
        except OSError as exc:
            self.sock.close()
            raise TransportError(
                f"cannot use {local_ip}:{local_port} for SIP ([sip].local_ip/local_port): "
                f"{exc.strerror or exc}"
            ) from exc
        self.sock.setblocking(False)
        # Not on Linux: an unreachable peer then shows as Timer B instead of an ICMP error.
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        self.host: str = self.sock.getsockname()[0]
        self.port: int = self.sock.getsockname()[1]
        self.transactions: dict[tuple[str, str], ClientTx] = {}
        self._answered: dict[tuple[str, str, str], tuple[bytes, float]] = {}
        self.local_tag = token()  # To tag for requests we answer outside any dialog
        # Set by the softphone: requests and unmatched 2xx responses go to it.
        self.on_request: Callable[[SipMessage, Address], None] = lambda m, a: None
        self.on_stray_2xx: Callable[[SipMessage], None] = lambda m: None

    def fileno(self) -> int:
        return self.sock.fileno()

    def sockets(self) -> list[tuple[socket.socket, Address | None]]:
        """Every socket to watch for reading, with what to pass to `on_readable`."""
        found: list[tuple[socket.socket, Address | None]] = [(self.sock, None)]
        found += [(c.sock, c.peer) for c in self.streams.values()]
        return found

    def close(self) -> None:
        self.transactions.clear()
        self._answered.clear()
        for conn in list(self.streams.values()):
            self._drop(conn, "closing")
        self.sock.close()

    # -- where requests go ----------------------------------------------------------------
    def use(self, dest: Address, proto: str, server_name: str) -> None:
        """Requests to `dest` go over `proto` (udp, tcp, tls); TLS checks `server_name`."""
        if proto == "udp":
            self.routes.pop(dest, None)
        else:
            self.routes[dest] = (proto, server_name)

    def proto(self, dest: Address) -> str:
        return self.routes.get(dest, ("udp", ""))[0]

    def local_for(self, dest: Address) -> tuple[str, str, int]:
        """(proto, host, port) we are at for `dest`: what Via and Contact say. Opens the TCP/TLS
        connection when there is none (raises TransportError when it cannot)."""
        proto = self.proto(dest)
        if proto == "udp":
            return "udp", self.host, self.port
        conn = self._connection(dest)
        return proto, conn.local[0], conn.local[1]

    def via(self, branch: str, dest: Address | None = None) -> str:
        proto, host, port = (
            self.local_for(dest) if dest is not None else ("udp", self.host, self.port)
        )
        return f"SIP/2.0/{proto.upper()} {host}:{port};branch={branch};rport"

    def contact(self, user: str, dest: Address) -> str:
        """Our Contact for requests sent to `dest`: the address the far end can reach us on (for
        a stream, this connection's own end, so a proxy sends the dialog's requests back on it)."""
        proto, host, port = self.local_for(dest)
        if proto == "tls":
            return f"<sips:{user}@{host}:{port}>"
        if proto == "tcp":
            return f"<sip:{user}@{host}:{port};transport=tcp>"
        return f"<sip:{user}@{host}:{port}>"

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            try:
                ctx = ssl.create_default_context(cafile=self.tls_ca_file or None)
            except (OSError, ssl.SSLError) as exc:
                raise TransportError(
                    f"cannot read the TLS CA file {self.tls_ca_file} ([sip].tls_ca_file): {exc}"
                ) from exc
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self._tls = ctx
        return self._tls

    def _connection(self, dest: Address) -> StreamConn:
        conn = self.streams.get(dest)
        if conn is not None:
            return conn
        proto, server_name = self.routes[dest]
        try:
            raw = socket.create_connection(dest, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise TransportError(
                f"cannot connect to {dest[0]}:{dest[1]} over {proto.upper()}: {exc.strerror or exc}"
            ) from exc
        sock: socket.socket = raw
        if proto == "tls":
            try:
                sock = self._tls_context().wrap_socket(raw, server_hostname=server_name)
            except ssl.SSLCertVerificationError as exc:
                raw.close()
                raise TransportError(
                    f"TLS to {server_name}: the server's certificate is not trusted "
                    f"({exc.verify_message})"
                ) from exc
            except (OSError, ssl.SSLError) as exc:
                raw.close()
                raise TransportError(f"TLS to {server_name} failed: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        local = sock.getsockname()
        conn = StreamConn(proto, sock, dest, (str(local[0]), int(local[1])))
        self.streams[dest] = conn
        log.debug("opened a %s connection to a SIP hop", proto.upper())
        return conn

    def _drop(self, conn: StreamConn, why: str) -> None:
        self.streams.pop(conn.peer, None)
        with contextlib.suppress(OSError):
            conn.sock.close()
        for tx in list(self.transactions.values()):
            if tx.dest == conn.peer and tx.pending:
                self._fail(tx, f"network error: {why}", network=True)

    # -- sending --------------------------------------------------------------------------
    def send(self, message: SipMessage | bytes, dest: Address) -> None:
        data = message if isinstance(message, bytes) else message.encode()
        if self.proto(dest) != "udp":
            self._send_stream(self._connection(dest), data)
        else:
            try:
                self.sock.sendto(data, dest)
            except BlockingIOError:
                log.warning("SIP socket buffer full; the retransmission timer will resend")
            except OSError as exc:
                raise TransportError(exc.strerror or str(exc)) from exc
        if isinstance(message, SipMessage):
            log.debug("sent %s", message.summary())

    def _send_stream(self, conn: StreamConn, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + SEND_TIMEOUT
        with selectors.DefaultSelector() as waiter:
            waiter.register(conn.sock, selectors.EVENT_WRITE)
            while view:
                try:
                    sent = conn.sock.send(view)
                    view = view[sent:]
                    continue
                except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
                except OSError as exc:
                    self._drop(conn, f"the connection failed: {exc.strerror or exc}")
                    raise TransportError(exc.strerror or str(exc)) from exc
                left = deadline - time.monotonic()
                if left <= 0 or not waiter.select(left):
                    self._drop(conn, "the connection takes no data")
                    raise TransportError("the SIP connection takes no data")

    def start_transaction(
        self,
        req: SipMessage,
        dest: Address,
        now: float,
        on_response: Callable[[SipMessage], None],
        on_failure: Callable[[str, bool], None],
    ) -> ClientTx:
        t1 = self.timers.t1
        tx = ClientTx(req, dest, on_response, on_failure, t1, now + t1, now + self.timers.timeout)
        tx.reliable = self.proto(dest) != "udp"
        if tx.reliable:
            tx.next_retransmit = math.inf
        self.transactions[tx.key] = tx
        try:
            self.send(req, dest)
        except TransportError as exc:
            self._fail(tx, f"network error: {exc}", network=True)
        return tx

    def _fail(self, tx: ClientTx, what: str, *, network: bool) -> None:
        tx.state = "terminated"
        self.transactions.pop(tx.key, None)
        tx.on_failure(what, network)

    def respond(
        self,
        req: SipMessage,
        addr: Address,
        status: int,
        reason: str,
        *,
        to_tag: str = "",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        now: float,
    ) -> None:
        resp = response_to(req, status, reason, to_tag=to_tag or self.local_tag)
        for name, value in headers or []:
            resp.add(name, value)
        resp.body = body
        data = resp.encode()
        self._answered[(req.call_id, req.get("CSeq") or "", req.branch)] = (
            data,
            now + self.timers.timeout,
        )
        try:
            self.send(data, addr)
        except TransportError as exc:
            log.warning("could not answer %s: %s", req.summary(), exc)

    def answered(self, req: SipMessage) -> bytes | None:
        """The response we last sent to `req` (for a 2xx that must be retransmitted)."""
        found = self._answered.get((req.call_id, req.get("CSeq") or "", req.branch))
        return found[0] if found else None

    # -- timers ---------------------------------------------------------------------------
    def next_deadline(self) -> float:
        due = math.inf
        for tx in self.transactions.values():
            due = min(due, tx.deadline)
            if tx.state == "trying" or (tx.state == "proceeding" and not tx.is_invite):
                due = min(due, tx.next_retransmit)
        return due

    def on_time(self, now: float) -> None:
        for key, (_, expires) in list(self._answered.items()):
            if expires <= now:
                del self._answered[key]
        for tx in list(self.transactions.values()):
            if tx.deadline <= now:
                if tx.pending and (tx.state == "trying" or not tx.is_invite):
                    self._fail(tx, "no response", network=False)
                else:
                    tx.state = "terminated"
                    self.transactions.pop(tx.key, None)
                continue
            retransmitting = tx.state == "trying" or (tx.state == "proceeding" and not tx.is_invite)
            if retransmitting and not tx.reliable and tx.next_retransmit <= now:
                if tx.is_invite:
                    tx.interval *= 2  # Timer A doubles without a cap
                else:  # Timer E: doubles up to T2; T2 once a provisional arrived
                    tx.interval = (
                        self.timers.t2
                        if tx.state == "proceeding"
                        else min(tx.interval * 2, self.timers.t2)
                    )
                tx.next_retransmit = now + tx.interval
                try:
                    self.send(tx.request, tx.dest)
                except TransportError as exc:
                    self._fail(tx, f"network error: {exc}", network=True)

    # -- receiving ------------------------------------------------------------------------
    def on_readable(self, now: float, peer: Address | None = None) -> None:
        if peer is not None:
            conn = self.streams.get(peer)
            if conn is not None:
                self._on_stream_readable(conn, now)
            return
        for _ in range(64):
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionRefusedError:
                continue  # the ICMP error itself is read from the error queue below
            except OSError as exc:
                log.warning("SIP receive failed: %s", exc)
                break
            self._on_datagram(data, (str(addr[0]), int(addr[1])), now)
        self._drain_errors()

    def _drain_errors(self) -> None:
        """ICMP errors (port or host unreachable) for packets we sent: fail their transaction."""
        for _ in range(64):
            try:
                data, _, _, _ = self.sock.recvmsg(65535, 512, MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                bounced = parse(data)
            except SipParseError:
                continue
            tx = self.transactions.get((bounced.branch, bounced.method))
            if tx is not None and tx.pending:
                self._fail(tx, "network error: the server is unreachable", network=True)

    def _on_stream_readable(self, conn: StreamConn, now: float) -> None:
        while True:
            try:
                chunk = conn.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError as exc:
                self._drop(conn, f"the connection failed: {exc.strerror or exc}")
                return
            if not chunk:
                self._drop(conn, "the server closed the connection")
                return
            conn.buf += chunk
            if not isinstance(conn.sock, ssl.SSLSocket) or not conn.sock.pending():
                break
        for message in self._frames(conn):
            self._on_datagram(message, conn.peer, now)

    @staticmethod
    def _frames(conn: StreamConn) -> list[bytes]:
        """Whole messages off the stream's buffer, framed by Content-Length (§18.3); CRLF
        keep-alives (RFC 5626 §3.5.1) are dropped."""
        found: list[bytes] = []
        while True:
            while conn.buf[:2] == b"\r\n":
                del conn.buf[:2]
            end = conn.buf.find(b"\r\n\r\n")
            if end < 0:
                return found
            head = bytes(conn.buf[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() in (b"content-length", b"l"):
                    length = int(value.strip()) if value.strip().isdigit() else 0
            total = end + 4 + length
            if len(conn.buf) < total:
                return found
            found.append(bytes(conn.buf[:total]))
            del conn.buf[:total]

    def _on_datagram(self, data: bytes, addr: Address, now: float) -> None:
        if not data.strip():
            return  # CRLF keep-alive (RFC 5626)
        try:
            msg = parse(data)
        except SipParseError as exc:
            log.info("dropped a malformed SIP message from %s: %s", addr[0], exc)
            return
        log.debug("received %s", msg.summary())
        if msg.is_request:
            self._on_request(msg, addr, now)
        else:
            self._on_response(msg, now)

    def _on_request(self, msg: SipMessage, addr: Address, now: float) -> None:
        if msg.method != "ACK":
            cached = self._answered.get((msg.call_id, msg.get("CSeq") or "", msg.branch))
            if cached is not None:  # a retransmission: same answer again
                with contextlib.suppress(TransportError):
                    self.send(cached[0], addr)
                return
        self.on_request(msg, addr)

    def _on_response(self, msg: SipMessage, now: float) -> None:
        tx = self.transactions.get((msg.branch, msg.method))
        status = msg.status
        if tx is None:
            if msg.method == "INVITE" and 200 <= status < 300:
                self.on_stray_2xx(msg)
            return
        if status < 200:
            if tx.state == "trying":
                tx.state = "proceeding"
                if not tx.is_invite:
                    tx.next_retransmit = now + self.timers.t2
            if tx.state == "proceeding":
                tx.on_response(msg)
            return
        if tx.is_invite:
            if 200 <= status < 300:
                # RFC 6026 "Accepted": every 2xx (retransmissions too) goes to the dialog.
                if tx.state != "accepted":
                    tx.state = "accepted"
                    tx.deadline = now + self.timers.timeout
                tx.on_response(msg)
                return
            if tx.state == "completed":  # retransmitted final: ACK again, tell no one
                self._resend_ack(tx)
                return
            tx.ack = self._non2xx_ack(tx.request, msg).encode()
            tx.state = "completed"
            tx.deadline = now + self.timers.timeout  # Timer D
            self._resend_ack(tx)
            tx.on_response(msg)
            return
        if tx.pending:
            tx.state = "terminated"
            self.transactions.pop(tx.key, None)
            tx.on_response(msg)

    def _resend_ack(self, tx: ClientTx) -> None:
        try:
            self.send(tx.ack, tx.dest)
        except TransportError as exc:
            log.warning("could not send ACK: %s", exc)

    @staticmethod
    def _non2xx_ack(invite: SipMessage, resp: SipMessage) -> SipMessage:
        """§17.1.1.3: same Request-URI, top Via, From, Call-ID and Route as the INVITE; the
        response's To (with its tag); CSeq number of the INVITE with method ACK."""
        headers = [("Via", invite.get_all("Via")[0]), ("Max-Forwards", "70")]
        headers += [("From", invite.get("From") or ""), ("To", resp.get("To") or "")]
        headers += [("Call-ID", invite.call_id), ("CSeq", f"{invite.cseq[0]} ACK")]
        headers += [("Route", r) for r in invite.get_all("Route")]
        return request("ACK", invite.request_uri, headers)
