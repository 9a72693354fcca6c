"""The SIP socket and the transaction layer (RFC 3261 §17, RFC 6026) over UDP.

Client transactions retransmit (Timer A/E), time out (Timer B/F) and, for a non-2xx final response
to an INVITE, send the ACK themselves (§17.1.1.3). Requests we answer are remembered for 64·T1 so
that a retransmission gets the same response again. Nothing here blocks: the softphone thread
calls `on_readable()` and `on_time()`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from collections.abc import Callable
from dataclasses import dataclass

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


class TransportError(OSError):
    pass


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
    def __init__(self, local_ip: str, local_port: int, timers: SipTimers) -> None:
        self.timers = timers
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

    def close(self) -> None:
        self.transactions.clear()
        self._answered.clear()
        self.sock.close()

    def via(self, branch: str) -> str:
        return f"SIP/2.0/UDP {self.host}:{self.port};branch={branch};rport"

    # -- sending --------------------------------------------------------------------------
    def send(self, message: SipMessage | bytes, dest: Address) -> None:
        data = message if isinstance(message, bytes) else message.encode()
        try:
            self.sock.sendto(data, dest)
        except BlockingIOError:
            log.warning("SIP socket buffer full; the retransmission timer will resend")
        except OSError as exc:
            raise TransportError(exc.strerror or str(exc)) from exc
        if isinstance(message, SipMessage):
            log.debug("sent %s", message.summary())

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
            if retransmitting and tx.next_retransmit <= now:
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
    def on_readable(self, now: float) -> None:
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
