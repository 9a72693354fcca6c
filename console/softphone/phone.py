"""The softphone: one thread the app owns, commands in through a queue, events out by callback.

`dial`, `hangup`, `mute` and `dtmf` only queue a command and wake the thread; they never block
the caller (the Textual event loop). `start` (binds, may resolve names) and `stop` (joins the
thread) do block: call them from a worker thread. The thread runs SIP and RTP on non-blocking
sockets with one selector; `on_event` is called from that thread (use `App.call_from_thread` or
`post_message`, which are thread-safe).
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import re
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from console.softphone.account import SipAccount, SipTimers
from console.softphone.audio import open_audio
from console.softphone.call import OutgoingCall
from console.softphone.errors import SoftphoneError
from console.softphone.events import (
    CallEvent,
    CallState,
    EndReason,
    PhoneEvent,
    PhoneNotice,
)
from console.softphone.message import SipMessage, SipParseError
from console.softphone.permit import DialPermit
from console.softphone.register import Registration
from console.softphone.rtp import AudioPort
from console.softphone.transport import Address, SipTransport, TransportError

log = logging.getLogger(__name__)
_CALLER_ID = re.compile(r"^\+?[0-9A-Za-z._-]{1,32}$")
STOP_GRACE = 3.0  # on stop, let a BYE/CANCEL in flight finish for at most this long


@dataclass(frozen=True)
class DialRequest:
    handle: str
    target: str
    caller_id: str
    display_name: str
    ring_timeout: float
    expires_at: float  # the permit's time.monotonic() deadline


AudioOpener = Callable[[bool], tuple[AudioPort | None, str]]


class Softphone:
    def __init__(
        self,
        account: SipAccount,
        on_event: Callable[[PhoneEvent], None],
        *,
        timers: SipTimers | None = None,
        open_audio_device: AudioOpener = open_audio,
    ) -> None:
        self.account = account
        self.timers = timers or SipTimers()
        self._on_event = on_event
        self._open_audio = open_audio_device
        self._commands: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread: threading.Thread | None = None
        self._transport: SipTransport | None = None
        self._call: OutgoingCall | None = None
        self._lingering: list[OutgoingCall] = []
        self._registration: Registration | None = None
        self._stopping = False
        self._stop_deadline = math.inf

    # -- the app's side -------------------------------------------------------------------
    def start(self) -> None:
        """Bind the SIP socket (errors surface here, in the caller) and start the thread."""
        if self._thread is not None:
            raise SoftphoneError("the softphone is already started")
        try:
            self._transport = SipTransport(
                self.account.local_address(),
                self.account.local_port,
                self.timers,
                tls_ca_file=self.account.tls_ca_file,
            )
        except TransportError as exc:
            self._close_wake()
            raise SoftphoneError(str(exc)) from exc
        if self.account.registrar:
            self._registration = Registration(self.account, self._transport, self._emit)
        self._thread = threading.Thread(target=self._run, name="softphone", daemon=True)
        self._thread.start()

    @property
    def native_id(self) -> int | None:
        """The kernel's id of the softphone thread (for CPU accounting in the bench)."""
        return self._thread.native_id if self._thread is not None else None

    @property
    def local_address(self) -> Address | None:
        t = self._transport
        return (t.host, t.port) if t is not None else None

    def dial(self, permit: DialPermit, *, ring_timeout: float | None = None) -> str:
        """Queue a call to the permit's number; returns its handle (events carry it). Bad input
        raises SoftphoneError.

        Just before the INVITE the thread looks at the permit once more: expired, the call ends
        as BLOCKED and nothing is sent (the calling window may have closed while the command
        waited). The permit is all the softphone knows of the calling rules.
        """
        target = permit.number
        try:
            self.account.target_uri(target)
        except SipParseError as exc:
            raise SoftphoneError(str(exc)) from exc
        caller_id, display_name = permit.caller_id, permit.display_name
        cid = self.account.caller_id if caller_id is None else caller_id
        if cid and not _CALLER_ID.match(cid):
            raise SoftphoneError(f"caller ID {cid!r}: use digits, optionally with a leading +")
        timeout = self.account.dial_timeout if ring_timeout is None else ring_timeout
        if not 0 < timeout <= 600:
            raise SoftphoneError(f"ring timeout {timeout!r}: give 0 < seconds ≤ 600")
        name = self.account.display_name if display_name is None else display_name
        handle = uuid.uuid4().hex[:12]
        request = DialRequest(handle, target, cid, name, timeout, permit.expires_at)
        self._command("dial", request)
        return handle

    def hangup(self) -> None:
        self._command("hangup", None)

    def mute(self, on: bool) -> None:
        self._command("mute", on)

    def dtmf(self, digits: str) -> None:
        self._command("dtmf", digits)

    def hold(self, on: bool) -> None:
        """Hold (True) or resume (False) the connected call: a re-INVITE offering sendonly or
        sendrecv. The change shows as ON_HOLD / CONNECTED events once the far end agrees."""
        self._command("hold", on)

    def stop(self, timeout: float = 5.0) -> None:
        """Hang up, unregister, close every socket and end the thread."""
        if self._thread is None:
            self._close_wake()
            return
        self._command("stop", None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the softphone thread did not stop within %.1f s", timeout)
        self._thread = None
        self._close_wake()

    def _command(self, name: str, arg: object) -> None:
        self._commands.put((name, arg))
        # A full or closed pipe means the thread is already awake, or gone.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\x01")

    def _close_wake(self) -> None:
        self._wake_r.close()
        self._wake_w.close()

    # -- the thread -----------------------------------------------------------------------
    def _emit(self, event: PhoneEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # the app's handler must never kill the phone
            log.exception("softphone event handler failed")

    def _run(self) -> None:
        transport = self._transport
        assert transport is not None
        transport.on_request = self._on_request
        transport.on_stray_2xx = self._on_stray_2xx
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        registered: dict[socket.socket, tuple[str, object]] = {}
        try:
            if self._registration is not None:
                self._registration.on_time(time.monotonic())
            while True:
                now = time.monotonic()
                call = self._call
                self._watch(selector, registered, call)
                if self._stopping and self._quiet(now):
                    break
                wait = max(0.0, min(self._next_deadline(), now + 1.0) - now)
                for key, _ in selector.select(wait):
                    now = time.monotonic()
                    what, arg = key.data
                    if what == "wake":
                        self._drain_wake()
                    elif what == "sip":
                        transport.on_readable(now, arg)
                    elif what in ("rtp", "rtcp") and call is not None and call.rtp is not None:
                        if key.fileobj.fileno() < 0:  # type: ignore[union-attr]
                            continue
                        if what == "rtp":
                            call.rtp.on_readable()
                        else:
                            call.rtp.on_rtcp_readable()
                self._run_commands(time.monotonic())
                self._run_timers(time.monotonic())
        except Exception:
            log.exception("the softphone thread failed")
            if self._call is not None and not self._call.ended:
                self._call._end(EndReason.FAILED, None, "the softphone failed (see the log)")
        finally:
            selector.close()
            for c in [self._call, *self._lingering]:
                if c is not None:
                    c.close_media()
            self._call = None
            self._lingering.clear()
            transport.close()

    def _watch(
        self,
        selector: selectors.BaseSelector,
        registered: dict[socket.socket, tuple[str, object]],
        call: OutgoingCall | None,
    ) -> None:
        """Keep the selector on exactly the sockets in use: SIP (UDP and any TCP/TLS
        connection) and the call's RTP and RTCP."""
        assert self._transport is not None
        wanted: dict[socket.socket, tuple[str, object]] = {
            sock: ("sip", peer) for sock, peer in self._transport.sockets()
        }
        if call is not None and call.rtp is not None:
            wanted[call.rtp.sock] = ("rtp", None)
            wanted[call.rtp.rtcp_sock] = ("rtcp", None)
        wanted = {sock: data for sock, data in wanted.items() if sock.fileno() >= 0}
        for sock in list(registered):
            if sock not in wanted or registered[sock] != wanted[sock]:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    selector.unregister(sock)
                del registered[sock]
        for sock, data in wanted.items():
            if sock not in registered:
                selector.register(sock, selectors.EVENT_READ, data)
                registered[sock] = data

    def _quiet(self, now: float) -> bool:
        """Stopping, and nothing in flight any more (or the grace is over)."""
        busy = self._call is not None and not self._call.finished
        busy = busy or any(not c.finished for c in self._lingering)
        busy = busy or (self._registration is not None and self._registration.busy)
        return not busy or now >= self._stop_deadline

    def _next_deadline(self) -> float:
        assert self._transport is not None
        due = self._transport.next_deadline()
        for c in [self._call, *self._lingering]:
            if c is not None:
                due = min(due, c.next_deadline())
        if self._registration is not None:
            due = min(due, self._registration.next_deadline())
        return min(due, self._stop_deadline)

    def _run_timers(self, now: float) -> None:
        assert self._transport is not None
        self._transport.on_time(now)
        if self._call is not None:
            self._call.on_time(now)
        for c in self._lingering:
            c.on_time(now)
        if self._registration is not None:
            self._registration.on_time(now)
        self._retire_calls()

    def _retire_calls(self) -> None:
        if self._call is not None and self._call.ended:
            self._lingering.append(self._call)
            self._call = None
        self._lingering = [c for c in self._lingering if not c.finished]

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except (BlockingIOError, OSError):
            pass

    def _run_commands(self, now: float) -> None:
        while True:
            try:
                name, arg = self._commands.get_nowait()
            except queue.Empty:
                break
            call = self._call
            if name == "dial":
                assert isinstance(arg, DialRequest)
                self._dial(arg, now)
            elif name == "hangup" and call is not None:
                call.hangup(now)
            elif name == "mute" and call is not None and call.rtp is not None:
                call.rtp.muted = bool(arg)
            elif name == "dtmf":
                self._dtmf(str(arg))
            elif name == "hold":
                if call is None:
                    self._emit(PhoneNotice("hold needs a connected call", time.time()))
                else:
                    call.set_hold(bool(arg), now)
            elif name == "stop":
                self._stopping = True
                self._stop_deadline = now + STOP_GRACE
                if call is not None:
                    call.hangup(now)
                if self._registration is not None:
                    self._registration.remove(now)
        self._retire_calls()

    def _dial(self, req: DialRequest, now: float) -> None:
        def ended(reason: EndReason, detail: str) -> None:
            self._emit(CallEvent(req.handle, CallState.ENDED, time.time(), reason, detail=detail))

        if self._stopping:
            ended(EndReason.FAILED, "the softphone is shutting down")
            return
        self._retire_calls()  # the previous call may have ended in this very loop turn
        if self._call is not None:
            ended(EndReason.FAILED, "another call is in progress: hang it up first")
            return
        if time.monotonic() >= req.expires_at:  # the permit ran out while the command waited
            ended(
                EndReason.BLOCKED, "the calling window closed before the call went out: check again"
            )
            return
        assert self._transport is not None
        audio, audio_status = self._open_audio(self.account.audio)
        if audio is None:
            self._emit(PhoneNotice(audio_status, time.time()))
        try:
            target = self.account.target_uri(req.target)
        except SipParseError as exc:  # checked in dial(); kept for a config changed meanwhile
            ended(EndReason.NOT_FOUND, str(exc))
            return
        self._call = OutgoingCall(
            req.handle,
            target,
            self.account,
            self._transport,
            self._emit,
            caller_id=req.caller_id,
            display_name=req.display_name,
            ring_timeout=req.ring_timeout,
            audio=audio,
            audio_status=audio_status,
        )
        self._call.start(now)

    def _dtmf(self, digits: str) -> None:
        call = self._call
        if (
            call is None
            or call.state not in (CallState.CONNECTED, CallState.ON_HOLD)
            or call.rtp is None
        ):
            self._emit(PhoneNotice("DTMF needs a connected call", time.time()))
            return
        refused = call.rtp.queue_dtmf(digits)
        if refused:
            why = (
                "the far end takes no telephone-events"
                if call.rtp.remote is None or call.rtp.remote.event_pt is None
                else "not a DTMF key"
            )
            self._emit(PhoneNotice(f"DTMF {refused!r} not sent: {why}", time.time()))

    def _find(self, call_id: str) -> OutgoingCall | None:
        for c in [self._call, *self._lingering]:
            if c is not None and c.call_id == call_id:
                return c
        return None

    def _on_request(self, req: SipMessage, addr: Address) -> None:
        now = time.monotonic()
        assert self._transport is not None
        call = self._find(req.call_id)
        if call is not None:
            call.on_request(req, addr, now)
            self._retire_calls()
            return
        method = req.method
        if method == "ACK":
            return
        if method == "OPTIONS":  # a PBX's keep-alive ("qualify")
            self._transport.respond(
                req,
                addr,
                200,
                "OK",
                headers=[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")],
                now=now,
            )
        elif method == "INVITE":  # the console places calls; it does not take them
            self._transport.respond(req, addr, 486, "Busy Here", now=now)
        else:
            self._transport.respond(req, addr, 481, "Call/Transaction Does Not Exist", now=now)

    def _on_stray_2xx(self, resp: SipMessage) -> None:
        """A 200 to an INVITE whose transaction is gone: ACK it, and BYE if the call is over."""
        call = self._find(resp.call_id)
        if call is not None:
            call._on_invite_response(resp)
