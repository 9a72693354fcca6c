"""One outgoing call: the INVITE, its answer or refusal, CANCEL, ACK, BYE (RFC 3261 §12-15).

Reports each state change once through `emit`. After the call has ended for the agent it may
linger a little to finish the protocol (a CANCEL for a late 180, ACK+BYE for a late 200, the
answer to a BYE); `finished` says when nothing is left to do.
"""

from __future__ import annotations

import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from console.softphone import digest, sdp
from console.softphone.account import SipAccount
from console.softphone.events import (
    CallEvent,
    CallState,
    DtmfEvent,
    EndReason,
    PhoneEvent,
    PhoneNotice,
    is_technical,
    reason_for_status,
)
from console.softphone.message import (
    SipMessage,
    SipUri,
    new_branch,
    parse_name_addr,
    parse_uri,
    request,
    token,
)
from console.softphone.rtp import AudioPort, RtpStream
from console.softphone.transport import Address, ClientTx, SipTransport, TransportError, resolve

log = logging.getLogger(__name__)
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"
SUPPORTED_AUDIO = "PCMU, PCMA"
USER_AGENT = "OutreachConsole-softphone/1"
HANGUP_GRACE = 2.0  # the agent sees "ended" at most this long after hanging up
CANCEL_GRACE = 4.0  # … and after a CANCEL that the far end does not finish with a 487


def _quote(display: str) -> str:
    clean = "".join(ch for ch in display if ch not in '"\\\r\n').strip()
    return f'"{clean}" ' if clean else ""


@dataclass
class Pending2xx:
    """Our 2xx to a re-INVITE, retransmitted until its ACK comes (RFC 3261 §13.3.1.4, UDP)."""

    data: bytes
    addr: Address
    cseq: int
    interval: float
    next_at: float
    give_up_at: float


class OutgoingCall:
    def __init__(
        self,
        handle: str,
        target: SipUri,
        account: SipAccount,
        transport: SipTransport,
        emit: Callable[[PhoneEvent], None],
        *,
        caller_id: str,
        display_name: str,
        ring_timeout: float,
        audio: AudioPort | None,
        audio_status: str,
    ) -> None:
        self.handle = handle
        self.target = target
        self.account = account
        self.transport = transport
        self._emit = emit
        self.caller_id = caller_id
        self.display_name = display_name
        self.ring_timeout = ring_timeout
        self.audio = audio
        self.audio_status = audio_status
        # A fresh random Call-ID per call: pyVoIP counted from 1 and repeated after restarts.
        self.call_id = f"{uuid.uuid4().hex}@{transport.host}"
        self.local_tag = token()
        self.cseq = random.randint(1, 2**15)
        self.remote_tag = ""
        self.remote_target = str(target)
        self.route_set: list[str] = []
        self.state = CallState.DIALING
        self.ended = False
        self.end_reason: EndReason | None = None
        self.cancel_reason: EndReason | None = None
        self.provisional = False
        self.invite: SipMessage | None = None
        self.invite_tx: ClientTx | None = None
        self.cancel_tx: ClientTx | None = None
        self.bye_tx: ClientTx | None = None
        self.ack: bytes = b""
        self.auth_tries = 0
        self.dest: Address = ("", 0)
        self.started = 0.0
        self.connected_at: float | None = None
        self.setup_ms: float | None = None
        self.hangup_ms: float | None = None
        self.bye_sent_at = 0.0
        self.ring_deadline = math.inf
        self.grace_deadline = math.inf
        self.pending_end: tuple[EndReason, int | None, str] | None = None
        self.rtp: RtpStream | None = None
        self.sip_status: int | None = None
        self.technical = False
        self.technical_override = False
        self.proto = "udp"
        self.local: sdp.LocalSession | None = None
        self.remote_sdp: sdp.RemoteMedia | None = None
        self.early_media = False
        self.hold = ""  # "remote", "local" or ""
        self.want_hold: bool | None = None  # a hold/resume the agent asked for, not yet sent
        self.reinvite_tx: ClientTx | None = None
        self.reinvite: SipMessage | None = None
        self.pending_2xx: Pending2xx | None = None
        self.challenged_at: float | None = None
        self.auth_ms: float | None = None

    # -- what the softphone loop asks -----------------------------------------------------
    @property
    def finished(self) -> bool:
        """Ended, and no transaction of ours still waits for an answer."""
        txs = (self.invite_tx, self.cancel_tx, self.bye_tx)
        return self.ended and not any(tx is not None and tx.pending for tx in txs)

    def next_deadline(self) -> float:
        due = min(self.ring_deadline, self.grace_deadline)
        if self.rtp is not None and self.rtp.remote is not None:
            due = min(due, self.rtp.next_due, self.rtp.next_rtcp)
        if self.pending_2xx is not None:
            due = min(due, self.pending_2xx.next_at)
        return due

    def on_time(self, now: float) -> None:
        rtp = self.rtp
        if rtp is not None and rtp.remote is not None and min(rtp.next_due, rtp.next_rtcp) <= now:
            rtp.tick(now)
        if self.pending_2xx is not None and self.pending_2xx.next_at <= now:
            self._retransmit_2xx(now)
        if self.ring_deadline <= now:
            self.ring_deadline = math.inf
            if not self.ended and self.state in (CallState.DIALING, CallState.RINGING):
                self.cancel(EndReason.NO_ANSWER if self.provisional else EndReason.TIMEOUT, now)
        if self.grace_deadline <= now:
            self.grace_deadline = math.inf
            if self.pending_end is not None:
                self._end(*self.pending_end)

    # -- starting -------------------------------------------------------------------------
    def start(self, now: float) -> None:
        self.started = now
        try:
            self.rtp = RtpStream(self.transport.host, self.audio, self._dtmf_changed)
            self.dest = self._next_hop()
            self.transport.local_for(self.dest)  # TCP/TLS: connect (and verify) now
        except (TransportError, OSError) as exc:
            self._end(EndReason.NETWORK_ERROR, None, f"network error: {exc}")
            return
        srtp = self.account.srtp
        self.local = sdp.LocalSession(
            self.transport.host,
            self.rtp.port,
            secure=srtp == "required",
            crypto_offer=srtp != "off",
        )
        self.ring_deadline = now + self.ring_timeout
        self._send_invite(now, auth=None)
        if not self.ended:
            self._event(CallState.DIALING)

    def _next_hop(self) -> Address:
        """Where our requests go: the configured server (outbound proxy), else the target; over
        the account's transport, or TLS for a sips: target (RFC 3261 §26.2.2)."""
        self.proto = self.account.transport_for(self.target)
        if self.account.server:
            host, port = self.account.server, self.account.port
        else:
            host, port = self.target.hostport
        dest = resolve(host, port)
        self.transport.use(dest, self.proto, host)
        return dest

    def _identity(self) -> tuple[str, list[tuple[str, str]]]:
        """From, and the header that carries the pharmacy's number when From does not.

        A stock proxy authenticates the From user (Kamailio's `auth_check(..., 1)` compares it
        with the digest user), so From stays the account's user and the caller ID goes in
        P-Asserted-Identity (RFC 3325) or Remote-Party-ID; `caller_id_mode = "from-user"` is for
        a trunk that takes the presented number in From."""
        domain = self.account.server or self.target.host
        scheme = "sips" if self.proto == "tls" else "sip"
        name = _quote(self.display_name)
        mode = self.account.caller_id_mode
        # No account user (a trunk that takes calls by IP): nothing is authenticated, From may
        # carry the number.
        account_user = self.account.username or self.caller_id or "outreach"
        if mode == "from-user":
            return f"{name}<{scheme}:{self.caller_id or account_user}@{domain}>", []
        from_ = f"{name}<{scheme}:{account_user}@{domain}>"
        if not self.caller_id:
            return from_, []
        presented = f"{name}<{scheme}:{self.caller_id}@{domain}>"
        if mode == "remote-party-id":
            return from_, [("Remote-Party-ID", f"{presented};party=calling;screen=yes")]
        return from_, [("P-Asserted-Identity", presented)]

    def _send_invite(self, now: float, auth: tuple[str, str] | None) -> None:
        assert self.rtp is not None and self.local is not None
        from_uri, identity = self._identity()
        self.cseq += 1
        try:
            via = self.transport.via(new_branch(), self.dest)
            contact = self._contact()
        except TransportError as exc:
            self._end(EndReason.NETWORK_ERROR, None, f"network error: {exc}")
            return
        headers = [
            ("Via", via),
            ("Max-Forwards", "70"),
            ("From", f"{from_uri};tag={self.local_tag}"),
            ("To", f"<{self.target}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} INVITE"),
            ("Contact", contact),
        ]
        server_hop = (self.account.server, self.account.port)
        if self.account.server and server_hop != self.target.hostport:
            headers.append(("Route", self._server_route()))
        headers += identity
        headers += [("Allow", ALLOW), ("User-Agent", USER_AGENT)]
        headers.append(("Content-Type", "application/sdp"))
        if auth is not None:
            headers.append(auth)
        body = self.local.offer("sendrecv")
        self.invite = request("INVITE", str(self.target), headers, body)
        if auth is None:  # set-up is timed from the first INVITE on the wire (CallEvent.setup_ms)
            self.started = time.monotonic()
        self.invite_tx = self.transport.start_transaction(
            self.invite, self.dest, now, self._on_invite_response, self._on_invite_failure
        )
        if auth is not None and self.challenged_at is not None:
            self.auth_ms = (time.monotonic() - self.challenged_at) * 1000

    def _server_route(self) -> str:
        hostport = f"{self.account.server}:{self.account.port}"
        if self.proto == "tls":
            return f"<sips:{hostport};lr>"
        if self.proto == "tcp":
            return f"<sip:{hostport};transport=tcp;lr>"
        return f"<sip:{hostport};lr>"

    def _contact(self) -> str:
        return self.transport.contact(self.account.username or "outreach", self.dest)

    # -- the INVITE's answers -------------------------------------------------------------
    def _on_invite_response(self, resp: SipMessage) -> None:
        now = time.monotonic()
        status = resp.status
        if status < 200:
            if status > 100 or not self.provisional:
                self._on_provisional(resp, now)
            return
        if status < 300:
            self._on_answer(resp, now)
            return
        self.sip_status = status
        if status in (401, 407):
            self.challenged_at = now
            if self._retry_with_credentials(resp, now):
                return
        if self.cancel_reason is not None and status == 487:
            self._end(self.cancel_reason, status, resp.reason)
            return
        if 300 <= status < 400:
            contact = resp.get("Contact") or ""
            self._end(EndReason.FAILED, status, f"redirected ({status}) to {contact}: not followed")
            return
        reason = reason_for_status(status)
        self._end(reason, status, f"{status} {resp.reason}".strip())

    def _on_provisional(self, resp: SipMessage, now: float) -> None:
        first = not self.provisional
        self.provisional = True
        if self.cancel_reason is not None and first:
            self._send_cancel(now)  # §9.1: a CANCEL waits for the first provisional response
            return
        if self.ended:
            return
        early = resp.status == 183 and bool(resp.body) and self._start_early_media(resp, now)
        if resp.status in (180, 183) and self.state == CallState.DIALING:
            self.state = CallState.RINGING
            self._event(CallState.RINGING, sip_status=resp.status)
        elif early:  # ringing already; the far end now plays something: say so
            self._event(CallState.RINGING, sip_status=resp.status)

    def _start_early_media(self, resp: SipMessage, now: float) -> bool:
        """183 with SDP (RFC 3960): play what the far end sends while it rings (a network
        announcement, a ringback tone); we send nothing until the answer."""
        if self.early_media or self.rtp is None:
            return False
        try:
            remote = self._accept_answer(resp.body)
        except sdp.SdpError as exc:
            log.info("early media not played: %s", exc)
            return False
        self.rtp.start(remote, now, sending=False)
        self.early_media = True
        return True

    def _accept_answer(self, body: bytes) -> sdp.RemoteMedia:
        """The far end's answer to our offer: its media, and SRTP keyed as the account says."""
        assert self.rtp is not None and self.local is not None
        remote = sdp.parse(body)
        chosen = sdp.choose_crypto(remote)
        if self.account.srtp == "required" and (chosen is None or not remote.secure):
            raise sdp.SdpError("the far end did not take SRTP, and the account requires it")
        if chosen is not None and (remote.secure or self.account.srtp != "off"):
            ours = self.local.key_for(chosen.suite, chosen.tag)
            self.rtp.key(ours, chosen)
        else:
            self.rtp.key(None, None)
        self.remote_sdp = remote
        return remote

    def _retry_with_credentials(self, resp: SipMessage, now: float) -> bool:
        if self.auth_tries >= 2 or not self.account.password or self.cancel_reason is not None:
            return False
        challenges = digest.challenges_in(resp)
        if not challenges:
            return False
        challenge = challenges[0]
        if self.auth_tries == 1 and not challenge.stale:
            return False  # the credentials were refused
        self.auth_tries += 1
        value = digest.answer(
            challenge,
            method="INVITE",
            uri=str(self.target),
            username=self.account.auth_user,
            password=self.account.password,
        )
        self._send_invite(now, auth=(challenge.header, value))
        return True

    def _on_answer(self, resp: SipMessage, now: float) -> None:
        if self.ack:  # a retransmitted 2xx: our ACK was lost, send it again (§13.2.2.4)
            self._send_raw(self.ack)
            return
        self.sip_status = resp.status
        self.remote_tag = resp.to.tag
        contact = resp.get_all("Contact")
        if contact:
            self.remote_target = parse_name_addr(contact[0]).uri
        self.route_set = list(reversed(resp.get_all("Record-Route")))
        self._send_ack(resp)
        if self.ended or self.cancel_reason is not None:
            # Answered while we were giving up (the CANCEL crossed the 200): end it properly.
            self._send_bye(now)
            return
        self.setup_ms = (now - self.started) * 1000
        try:
            remote = self._accept_answer(resp.body)
        except sdp.SdpError as exc:
            self._send_bye(now)
            self.technical_override = True  # no common media: the line's set-up, not the patient
            self._end(EndReason.FAILED, resp.status, f"answered without usable audio: {exc}")
            return
        assert self.rtp is not None
        self.rtp.start(remote, now, sending=remote.we_may_send)
        self.ring_deadline = math.inf
        self.state = CallState.CONNECTED
        self.connected_at = time.time()
        self._event(CallState.CONNECTED, sip_status=resp.status)

    def _send_ack(self, resp: SipMessage) -> None:
        assert self.invite is not None
        headers = [("Via", self._via()), ("Max-Forwards", "70")]
        headers += [("From", self.invite.get("From") or ""), ("To", resp.get("To") or "")]
        headers += [("Call-ID", self.call_id), ("CSeq", f"{self.invite.cseq[0]} ACK")]
        headers += [("Route", r) for r in self._dialog_routes()]
        for name in ("Authorization", "Proxy-Authorization"):  # §13.2.2.4: same credentials
            value = self.invite.get(name)
            if value:
                headers.append((name, value))
        self.ack = request("ACK", self.remote_target, headers).encode()
        self._send_raw(self.ack)

    def _on_invite_failure(self, what: str, network: bool) -> None:
        if self.cancel_reason is not None:
            self._end(self.cancel_reason, None, what)
        elif network:
            self._end(EndReason.NETWORK_ERROR, None, what)
        else:
            self._end(EndReason.TIMEOUT, None, "the far end never answered the INVITE")

    # -- ending ---------------------------------------------------------------------------
    def hangup(self, now: float) -> None:
        """The agent hangs up: CANCEL before an answer, BYE after."""
        if self.ended or self.pending_end is not None:
            return
        if self.state == CallState.CONNECTED:
            self._send_bye(now)
            self.pending_end = (EndReason.COMPLETED, self.sip_status, "")
            self.grace_deadline = now + HANGUP_GRACE
            self._stop_media()
        elif self.cancel_reason is None:
            self.cancel(EndReason.CANCELLED, now)

    def cancel(self, reason: EndReason, now: float) -> None:
        self.cancel_reason = reason
        self.ring_deadline = math.inf
        if self.provisional:
            self._send_cancel(now)
            self.pending_end = (reason, None, "")
            self.grace_deadline = now + CANCEL_GRACE
        else:
            # Nothing heard yet: the agent is told now; a CANCEL follows the first 1xx, an ACK
            # and BYE a late 200 (`finished` keeps us alive until the INVITE is done).
            detail = "" if reason == EndReason.CANCELLED else "no response to the INVITE"
            self._end(reason, None, detail)

    def _send_cancel(self, now: float) -> None:
        if self.invite is None or self.invite_tx is None or not self.invite_tx.pending:
            return
        inv = self.invite
        headers = [("Via", inv.get_all("Via")[0]), ("Max-Forwards", "70")]
        headers += [("From", inv.get("From") or ""), ("To", inv.get("To") or "")]
        headers += [("Call-ID", inv.call_id), ("CSeq", f"{inv.cseq[0]} CANCEL")]
        headers += [("Route", r) for r in inv.get_all("Route")]
        headers.append(("User-Agent", USER_AGENT))
        cancel = request("CANCEL", inv.request_uri, headers)
        self.cancel_tx = self.transport.start_transaction(
            cancel, self.dest, now, lambda r: None, lambda what, net: None
        )

    def _send_bye(self, now: float, auth: tuple[str, str] | None = None) -> None:
        assert self.invite is not None
        self.cseq += 1
        headers = [("Via", self._via()), ("Max-Forwards", "70")]
        headers += [("From", self.invite.get("From") or "")]
        to = self.invite.get("To") or ""
        headers += [("To", f"{to};tag={self.remote_tag}" if self.remote_tag else to)]
        headers += [("Call-ID", self.call_id), ("CSeq", f"{self.cseq} BYE")]
        headers += [("Route", r) for r in self._dialog_routes()]
        headers.append(("User-Agent", USER_AGENT))
        if auth is not None:
            headers.append(auth)
        bye = request("BYE", self.remote_target, headers)
        self.bye_sent_at = now
        self.bye_tx = self.transport.start_transaction(
            bye, self._dialog_hop(), now, self._on_bye_response, self._on_bye_failure
        )

    def _dialog_routes(self) -> list[str]:
        """The dialog's route set; through an outbound proxy that did not record-route (the far
        end echoed no Record-Route), the proxy's own Route first, so that it forwards the
        request to the remote target instead of refusing it (RFC 3261 §8.1.2, §12.2.1.1)."""
        if not self.account.server:
            return self.route_set
        if self.route_set:
            try:
                first = parse_uri(parse_name_addr(self.route_set[0]).uri)
                if resolve(first.host, first.port or self.account.port) == self.dest:
                    return self.route_set
            except (ValueError, TransportError):
                return self.route_set
        return [self._server_route(), *self.route_set]

    def _via(self) -> str:
        try:
            return self.transport.via(new_branch(), self._dialog_hop())
        except TransportError:  # the stream is gone: the send that follows says so
            return self.transport.via(new_branch())

    def _dialog_hop(self) -> Address:
        """Requests inside the dialog go to the first route, else to the remote target; over a
        stream, on the connection the dialog was made on."""
        if self.account.server or self.proto != "udp":
            return self.dest
        try:
            uri = parse_name_addr(self.route_set[0]).uri if self.route_set else self.remote_target
            return resolve(*parse_uri(uri).hostport)
        except (ValueError, TransportError):
            return self.dest

    def _on_bye_response(self, resp: SipMessage) -> None:
        now = time.monotonic()
        if resp.status in (401, 407) and self.auth_tries < 3 and self.account.password:
            challenges = digest.challenges_in(resp)
            if challenges:
                self.auth_tries += 1
                value = digest.answer(
                    challenges[0],
                    method="BYE",
                    uri=self.remote_target,
                    username=self.account.auth_user,
                    password=self.account.password,
                )
                self._send_bye(now, auth=(challenges[0].header, value))
                return
        self.hangup_ms = (now - self.bye_sent_at) * 1000
        if self.pending_end is not None:
            self._end(*self.pending_end)

    def _on_bye_failure(self, what: str, network: bool) -> None:
        if self.pending_end is not None:
            reason, status, _ = self.pending_end
            self._end(reason, status, f"the far end did not confirm the hang-up ({what})")

    # -- requests from the far end --------------------------------------------------------
    def on_request(self, req: SipMessage, addr: Address, now: float) -> None:
        method = req.method
        if method == "ACK":
            if self.pending_2xx is not None and req.cseq[0] == self.pending_2xx.cseq:
                self.pending_2xx = None
                if req.body:  # we offered in the 2xx (a re-INVITE without SDP): the answer
                    self._take_remote_answer(req.body, now)
            return
        if method == "BYE":
            self.transport.respond(req, addr, 200, "OK", to_tag=self.local_tag, now=now)
            if not self.ended and self.pending_end is None:
                self._stop_media()
                self._end(EndReason.REMOTE_HANGUP, self.sip_status, "")
            elif self.pending_end is not None:  # both hung up at once
                self._end(*self.pending_end)
            return
        if method in ("INVITE", "UPDATE") and self._in_session:
            self._on_offer(req, addr, now)
            return
        if method in ("OPTIONS", "UPDATE", "INFO", "NOTIFY"):
            self.transport.respond(req, addr, 200, "OK", to_tag=self.local_tag, now=now)
            return
        self.transport.respond(
            req, addr, 481, "Call/Transaction Does Not Exist", to_tag=self.local_tag, now=now
        )

    # -- offers inside the dialog (RFC 3264 §8, RFC 3311): hold, resume, refresh --------------
    @property
    def _in_session(self) -> bool:
        return (
            self.state in (CallState.CONNECTED, CallState.ON_HOLD)
            and not self.ended
            and self.pending_end is None
        )

    def _on_offer(self, req: SipMessage, addr: Address, now: float) -> None:
        """A re-INVITE or UPDATE: answer its offer with the same `o=` session id (the version
        raised only when our side changes), the direction RFC 3264 §6.1 gives (a sendonly offer
        gets recvonly), and report a hold or a resume."""
        assert self.rtp is not None and self.local is not None
        if self.reinvite_tx is not None and self.reinvite_tx.pending and req.method == "INVITE":
            # §14.2: our own re-INVITE is in progress: the far end retries later.
            self._respond(req, addr, 491, "Request Pending", now=now)
            return
        if not req.body:  # §14.2: no offer: we offer in the 2xx, the answer comes in the ACK
            direction = "sendonly" if self.hold == "local" else "sendrecv"
            self._respond_2xx(req, addr, self.local.offer(direction), now)
            return
        try:
            remote = sdp.parse(req.body)
            crypto = sdp.choose_crypto(remote)
            if self.account.srtp == "required" and (crypto is None or not remote.secure):
                raise sdp.SdpError("the offer has no SRTP, and the account requires it")
            if remote.secure and crypto is None:
                raise sdp.SdpError("RTP/SAVP offered with no crypto suite we take")
        except sdp.SdpError as exc:
            # §5.1 RFC 3264: an offer we cannot take is refused; the call stays as it was.
            headers = [("Warning", f'304 outreach "{exc}"'), ("Accept", "application/sdp")]
            self._respond(req, addr, 488, "Not Acceptable Here", headers=headers, now=now)
            return
        ours = sdp.ANSWER_DIRECTION[remote.direction]
        if remote.address == "0.0.0.0":
            ours = "inactive" if ours == "sendrecv" else ours
        if self.hold == "local":  # we keep holding: never more than sendonly
            ours = {"sendrecv": "sendonly", "recvonly": "inactive"}.get(ours, ours)
        use_crypto = crypto if (remote.secure or (crypto and self.account.srtp != "off")) else None
        body = self.local.answer(remote, use_crypto, ours)
        if use_crypto is not None:
            self.rtp.key(self.local.key_for(use_crypto.suite, use_crypto.tag), use_crypto)
        else:
            self.rtp.key(None, None)
        self.remote_sdp = remote
        self.rtp.start(remote, now, sending=ours in ("sendrecv", "sendonly"))
        if req.method == "INVITE":
            self._respond_2xx(req, addr, body, now)
        else:
            self._respond(req, addr, 200, "OK", body=body, now=now, sdp_body=True)
        self._hold_changed(remote_holds=remote.holding)

    def _take_remote_answer(self, body: bytes, now: float) -> None:
        assert self.rtp is not None
        try:
            remote = self._accept_answer(body)
        except sdp.SdpError as exc:
            log.info("an answer we cannot use: %s", exc)
            return
        local_dir = self.local.direction if self.local is not None else "sendrecv"
        self.rtp.start(remote, now, sending=local_dir in ("sendrecv", "sendonly"))
        self._hold_changed(remote_holds=remote.holding and self.hold != "local")

    def _hold_changed(self, *, remote_holds: bool) -> None:
        before = self.hold
        if self.hold != "local":
            self.hold = "remote" if remote_holds else ""
        if self.hold == before:
            return
        if self.hold:
            self.state = CallState.ON_HOLD
            self._event(CallState.ON_HOLD, sip_status=self.sip_status)
        else:
            self.state = CallState.CONNECTED
            self._event(CallState.CONNECTED, sip_status=self.sip_status, detail="resumed")

    def set_hold(self, on: bool, now: float) -> None:
        """The agent holds (a sendonly re-INVITE, RFC 3264 §8.4) or resumes the call."""
        if not self._in_session or self.local is None:
            self._emit(PhoneNotice("hold needs a connected call", time.time()))
            return
        if on == (self.hold == "local"):
            return
        if self.reinvite_tx is not None and self.reinvite_tx.pending:
            self.want_hold = on  # sent once the re-INVITE in flight is done
            return
        self._send_reinvite("sendonly" if on else "sendrecv", now)
        self.want_hold = None

    def _send_reinvite(self, direction: str, now: float) -> None:
        assert self.invite is not None and self.local is not None
        self.cseq += 1
        headers = [("Via", self._via()), ("Max-Forwards", "70")]
        headers += [("From", self.invite.get("From") or "")]
        headers += [("To", self._remote_to()), ("Call-ID", self.call_id)]
        headers += [("CSeq", f"{self.cseq} INVITE"), ("Contact", self._contact())]
        headers += [("Route", r) for r in self._dialog_routes()]
        headers += [("Allow", ALLOW), ("User-Agent", USER_AGENT)]
        headers.append(("Content-Type", "application/sdp"))
        self.reinvite = request("INVITE", self.remote_target, headers, self.local.offer(direction))
        self.reinvite_tx = self.transport.start_transaction(
            self.reinvite,
            self._dialog_hop(),
            now,
            self._on_reinvite_response,
            lambda what, network: self._emit(
                PhoneNotice(f"hold/resume not confirmed: {what}", time.time())
            ),
        )

    def _on_reinvite_response(self, resp: SipMessage) -> None:
        now = time.monotonic()
        if resp.status < 200:
            return
        assert self.reinvite is not None and self.local is not None
        if 200 <= resp.status < 300:
            headers = [("Via", self._via()), ("Max-Forwards", "70")]
            headers += [("From", self.reinvite.get("From") or ""), ("To", resp.get("To") or "")]
            headers += [("Call-ID", self.call_id), ("CSeq", f"{self.reinvite.cseq[0]} ACK")]
            headers += [("Route", r) for r in self._dialog_routes()]
            self._send_raw(request("ACK", self.remote_target, headers).encode())
            self.hold = "local" if self.local.direction in ("sendonly", "inactive") else ""
            if resp.body:
                self._take_remote_answer(resp.body, now)
            if self.hold == "local":
                if self.state != CallState.ON_HOLD:
                    self.state = CallState.ON_HOLD
                    self._event(CallState.ON_HOLD, sip_status=resp.status)
            elif self.state == CallState.ON_HOLD and not (
                self.remote_sdp is not None and self.remote_sdp.holding
            ):
                self.state = CallState.CONNECTED
                self._event(CallState.CONNECTED, sip_status=resp.status, detail="resumed")
        else:
            # 491 glare or a refusal: the call goes on as it was (RFC 3261 §14.1).
            what = "held" if self.local.direction != "sendrecv" else "resumed"
            self.local.direction = "sendonly" if self.hold == "local" else "sendrecv"
            self._emit(
                PhoneNotice(f"the call was not {what}: {resp.status} {resp.reason}", time.time())
            )
        if self.want_hold is not None:
            want, self.want_hold = self.want_hold, None
            self.set_hold(want, now)

    def _remote_to(self) -> str:
        assert self.invite is not None
        to = self.invite.get("To") or ""
        return f"{to};tag={self.remote_tag}" if self.remote_tag else to

    def _respond(
        self,
        req: SipMessage,
        addr: Address,
        status: int,
        reason: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        now: float,
        sdp_body: bool = False,
    ) -> None:
        extra = list(headers or [])
        if sdp_body:
            extra += [("Contact", self._contact()), ("Content-Type", "application/sdp")]
        self.transport.respond(
            req, addr, status, reason, to_tag=self.local_tag, headers=extra, body=body, now=now
        )

    def _respond_2xx(self, req: SipMessage, addr: Address, body: bytes, now: float) -> None:
        self._respond(req, addr, 200, "OK", body=body, now=now, sdp_body=True)
        if self.transport.proto(addr) == "udp":
            cached = self.transport.answered(req)
            if cached is not None:
                t1 = self.transport.timers.t1
                self.pending_2xx = Pending2xx(
                    cached, addr, req.cseq[0], t1, now + t1, now + self.transport.timers.timeout
                )

    def _retransmit_2xx(self, now: float) -> None:
        p = self.pending_2xx
        assert p is not None
        if now >= p.give_up_at:  # §13.3.1.4: no ACK in 64·T1: the far end is gone
            self.pending_2xx = None
            log.warning("no ACK for our 2xx to a re-INVITE")
            return
        try:
            self.transport.send(p.data, p.addr)
        except TransportError as exc:
            log.warning("could not resend a 2xx: %s", exc)
        p.interval = min(p.interval * 2, self.transport.timers.t2)
        p.next_at = now + p.interval

    # -- helpers --------------------------------------------------------------------------
    def _send_raw(self, data: bytes) -> None:
        try:
            self.transport.send(data, self._dialog_hop())
        except TransportError as exc:
            log.warning("could not send ACK: %s", exc)

    def _stop_media(self) -> None:
        if self.rtp is not None:
            self.rtp.stop()

    def _end(self, reason: EndReason, status: int | None, detail: str) -> None:
        self.pending_end = None
        self.grace_deadline = math.inf
        if self.ended:
            return
        self.ended = True
        self.end_reason = reason
        self.ring_deadline = math.inf
        self.pending_2xx = None
        self.sip_status = status if status is not None else self.sip_status
        # Never connected, and the line's fault (no route, 5xx, 408, no answer at all, refused
        # credentials): a technical failure, not the patient's outcome.
        self.technical = self.connected_at is None and (
            self.technical_override or is_technical(reason, status)
        )
        # Media first: whoever hears "ended" (the agent about to dial again) finds the socket and
        # the audio device already given back.
        self.close_media()
        self._event(CallState.ENDED, reason=reason, sip_status=status, detail=detail)

    def _dtmf_changed(self) -> None:
        if self.rtp is not None:
            self._emit(
                DtmfEvent(self.handle, self.rtp.dtmf_sent, self.rtp.dtmf_received, time.time())
            )

    def close_media(self) -> None:
        if self.rtp is not None:
            self.rtp.close()
        if self.audio is not None and hasattr(self.audio, "close"):
            self.audio.close()
            self.audio = None

    def _event(
        self,
        state: CallState,
        *,
        reason: EndReason | None = None,
        sip_status: int | None = None,
        detail: str = "",
    ) -> None:
        rtp = self.rtp
        stats = rtp.stats if rtp else None
        self._emit(
            CallEvent(
                call=self.handle,
                state=state,
                at=time.time(),
                reason=reason,
                sip_status=sip_status,
                detail=detail,
                setup_ms=self.setup_ms,
                hangup_ms=self.hangup_ms,
                connected_at=self.connected_at,
                dtmf_sent=rtp.dtmf_sent if rtp else "",
                dtmf_received=rtp.dtmf_received if rtp else "",
                audio=self.audio_status,
                technical=state == CallState.ENDED and self.technical,
                hold=self.hold,
                early_media=self.early_media and state == CallState.RINGING,
                rtp_sent=rtp.sent if rtp else 0,
                rtp_received=rtp.received if rtp else 0,
                rtp_lost=stats.lost if stats else 0,
                rtcp_sent=rtp.rtcp_sent if rtp else 0,
                rtcp_received=rtp.rtcp_received if rtp else 0,
                transport=self.proto,
                srtp=rtp.secure if rtp else False,
                auth_ms=self.auth_ms,
            )
        )
