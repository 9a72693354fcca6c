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

from console.softphone import digest, sdp
from console.softphone.account import SipAccount
from console.softphone.events import (
    CallEvent,
    CallState,
    DtmfEvent,
    EndReason,
    PhoneEvent,
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
USER_AGENT = "OutreachConsole-softphone/1"
HANGUP_GRACE = 2.0  # the agent sees "ended" at most this long after hanging up
CANCEL_GRACE = 4.0  # … and after a CANCEL that the far end does not finish with a 487


def _quote(display: str) -> str:
    clean = "".join(ch for ch in display if ch not in '"\\\r\n').strip()
    return f'"{clean}" ' if clean else ""


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

    # -- what the softphone loop asks -----------------------------------------------------
    @property
    def finished(self) -> bool:
        """Ended, and no transaction of ours still waits for an answer."""
        txs = (self.invite_tx, self.cancel_tx, self.bye_tx)
        return self.ended and not any(tx is not None and tx.pending for tx in txs)

    def next_deadline(self) -> float:
        due = min(self.ring_deadline, self.grace_deadline)
        if self.rtp is not None and self.rtp.remote is not None:
            due = min(due, self.rtp.next_due)
        return due

    def on_time(self, now: float) -> None:
        if self.rtp is not None and self.rtp.remote is not None and self.rtp.next_due <= now:
            self.rtp.tick(now)
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
        except (TransportError, OSError) as exc:
            self._end(EndReason.NETWORK_ERROR, None, f"network error: {exc}")
            return
        self.ring_deadline = now + self.ring_timeout
        self._send_invite(now, auth=None)
        if not self.ended:
            self._event(CallState.DIALING)

    def _next_hop(self) -> Address:
        if self.account.server:
            return resolve(self.account.server, self.account.port)
        return resolve(*self.target.hostport)

    def _identity(self) -> tuple[str, str]:
        domain = self.account.server or self.target.host
        user = self.caller_id or self.account.username or "outreach"
        return f"{_quote(self.display_name)}<sip:{user}@{domain}>", domain

    def _send_invite(self, now: float, auth: tuple[str, str] | None) -> None:
        assert self.rtp is not None
        from_uri, domain = self._identity()
        self.cseq += 1
        branch = new_branch()
        headers = [
            ("Via", self.transport.via(branch)),
            ("Max-Forwards", "70"),
            ("From", f"{from_uri};tag={self.local_tag}"),
            ("To", f"<{self.target}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} INVITE"),
            ("Contact", self._contact()),
        ]
        server_hop = (self.account.server, self.account.port)
        if self.account.server and server_hop != self.target.hostport:
            headers.append(("Route", f"<sip:{self.account.server}:{self.account.port};lr>"))
        if self.caller_id:  # RFC 3325: the identity a trusted trunk presents to the patient
            headers.append(
                (
                    "P-Asserted-Identity",
                    f"{_quote(self.display_name)}<sip:{self.caller_id}@{domain}>",
                )
            )
        headers += [("Allow", ALLOW), ("User-Agent", USER_AGENT)]
        headers.append(("Content-Type", "application/sdp"))
        if auth is not None:
            headers.append(auth)
        session = random.randint(10**6, 10**9)
        body = sdp.offer(self.transport.host, self.rtp.port, session, session)
        self.invite = request("INVITE", str(self.target), headers, body)
        self.invite_tx = self.transport.start_transaction(
            self.invite, self.dest, now, self._on_invite_response, self._on_invite_failure
        )

    def _contact(self) -> str:
        user = self.account.username or "outreach"
        return f"<sip:{user}@{self.transport.host}:{self.transport.port}>"

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
        if status in (401, 407) and self._retry_with_credentials(resp, now):
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
        if resp.status in (180, 183) and self.state == CallState.DIALING:
            self.state = CallState.RINGING
            self._event(CallState.RINGING, sip_status=resp.status)

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
            remote = sdp.parse_answer(resp.body)
        except sdp.SdpError as exc:
            self._send_bye(now)
            self._end(EndReason.FAILED, resp.status, f"answered without usable audio: {exc}")
            return
        assert self.rtp is not None
        self.rtp.start(remote, now)
        self.ring_deadline = math.inf
        self.state = CallState.CONNECTED
        self.connected_at = time.time()
        self._event(CallState.CONNECTED, sip_status=resp.status)

    def _send_ack(self, resp: SipMessage) -> None:
        assert self.invite is not None
        headers = [("Via", self.transport.via(new_branch())), ("Max-Forwards", "70")]
        headers += [("From", self.invite.get("From") or ""), ("To", resp.get("To") or "")]
        headers += [("Call-ID", self.call_id), ("CSeq", f"{self.invite.cseq[0]} ACK")]
        headers += [("Route", r) for r in self.route_set]
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
        headers = [("Via", self.transport.via(new_branch())), ("Max-Forwards", "70")]
        headers += [("From", self.invite.get("From") or "")]
        to = self.invite.get("To") or ""
        headers += [("To", f"{to};tag={self.remote_tag}" if self.remote_tag else to)]
        headers += [("Call-ID", self.call_id), ("CSeq", f"{self.cseq} BYE")]
        headers += [("Route", r) for r in self.route_set]
        headers.append(("User-Agent", USER_AGENT))
        if auth is not None:
            headers.append(auth)
        bye = request("BYE", self.remote_target, headers)
        self.bye_sent_at = now
        self.bye_tx = self.transport.start_transaction(
            bye, self._dialog_hop(), now, self._on_bye_response, self._on_bye_failure
        )

    def _dialog_hop(self) -> Address:
        """Requests inside the dialog go to the first route, else to the remote target."""
        if self.account.server:
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
            return
        if method == "BYE":
            self.transport.respond(req, addr, 200, "OK", to_tag=self.local_tag, now=now)
            if not self.ended and self.pending_end is None:
                self._stop_media()
                self._end(EndReason.REMOTE_HANGUP, self.sip_status, "")
            elif self.pending_end is not None:  # both hung up at once
                self._end(*self.pending_end)
            return
        if method == "INVITE" and self.state == CallState.CONNECTED and not self.ended:
            # A re-INVITE (session refresh, hold): keep our media as it is (RFC 3264 §8).
            try:
                assert self.rtp is not None and self.rtp.remote is not None
                remote = sdp.parse_answer(req.body) if req.body else self.rtp.remote
                self.rtp.remote = remote
            except sdp.SdpError:
                pass
            assert self.rtp is not None
            body = sdp.offer(self.transport.host, self.rtp.port, 1, 1)
            headers = [("Contact", self._contact()), ("Content-Type", "application/sdp")]
            self.transport.respond(
                req, addr, 200, "OK", to_tag=self.local_tag, headers=headers, body=body, now=now
            )
            return
        if method in ("OPTIONS", "UPDATE", "INFO", "NOTIFY"):
            self.transport.respond(req, addr, 200, "OK", to_tag=self.local_tag, now=now)
            return
        self.transport.respond(
            req, addr, 481, "Call/Transaction Does Not Exist", to_tag=self.local_tag, now=now
        )

    # -- helpers --------------------------------------------------------------------------
    def _send_raw(self, data: bytes) -> None:
        try:
            self.transport.send(data, self._dialog_hop())
        except TransportError as exc:
            log.warning("could not send ACK: %s", exc)

    def _stop_media(self) -> None:
        if self.rtp is not None:
            self.rtp.remote = None

    def _end(self, reason: EndReason, status: int | None, detail: str) -> None:
        self.pending_end = None
        self.grace_deadline = math.inf
        if self.ended:
            return
        self.ended = True
        self.end_reason = reason
        self.ring_deadline = math.inf
        self.sip_status = status if status is not None else self.sip_status
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
            )
        )
