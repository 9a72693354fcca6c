"""What a screen owns to place calls: the softphone thread, built from config.toml's [sip].

The line starts and stops the thread with the screen, forwards the agent's requests as commands,
keeps which call is ours and where it stands, and hands the thread's events to `on_event`
(called on the softphone thread: the screen passes something thread-safe, such as
`SoftphoneBar.post_phone_event`). Events of a call that is not ours (a second dial refused at
once) arrive as a PhoneNotice. Without a SIP account it stays off: manual dialling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from console.config import SipSettings
from console.softphone.errors import SoftphoneError
from console.softphone.events import CallEvent, CallState, PhoneEvent, PhoneNotice
from console.softphone.permit import DialPermit

if TYPE_CHECKING:  # the SIP stack loads with a line's start: never in manual-dial mode
    from console.softphone.account import SipAccount, SipTimers
    from console.softphone.phone import Softphone

log = logging.getLogger(__name__)


def account_from_settings(sip: SipSettings) -> SipAccount:
    from console.softphone.account import SipAccount

    return SipAccount(
        server=sip.server,
        port=sip.port,
        username=sip.username,
        password=sip.password,
        auth_username=sip.auth_username,
        registrar=sip.registrar,
        local_ip=sip.local_ip,
        local_port=sip.local_port,
        caller_id=sip.caller_id,
        display_name=sip.display_name,
        dial_timeout=float(sip.dial_timeout_seconds),
        register_expires=sip.register_expires,
        audio=sip.audio,
        transport=sip.transport,
        tls_ca_file=sip.tls_ca_file,
        srtp=sip.srtp,
        caller_id_mode=sip.caller_id_mode,
    )


class PhoneLine:
    def __init__(
        self,
        settings: SipSettings,
        on_event: Callable[[PhoneEvent], None],
        *,
        timers: SipTimers | None = None,
    ) -> None:
        self.account = account_from_settings(settings)
        self._on_event = on_event
        self._timers = timers
        self.phone: Softphone | None = None
        self.call: str | None = None  # the handle of the call in progress
        self.state: CallState | None = None
        # dial() assigns `call` while the thread may already report on it.
        self._lock = threading.Lock()
        # start() and stop() run in worker threads, possibly at once (a screen closed while its
        # phone was starting): a line once stopped never starts.
        self._life = threading.Lock()
        self._stopped = False

    @property
    def enabled(self) -> bool:
        """A SIP account is configured and the softphone is running."""
        return self.phone is not None

    @property
    def on_call(self) -> bool:
        return self.call is not None and self.state != CallState.ENDED

    def start(self) -> str | None:
        """Start the thread; None when it runs, else why the console stays in manual mode.

        Blocking (binds sockets, may resolve names): call from a worker thread, never on the
        event loop."""
        if not self.account.configured:
            return "no SIP account in [sip]: manual dialling"
        with self._life:
            if self._stopped:
                return "softphone off: the screen closed"
            from console.softphone.phone import Softphone

            phone = Softphone(self.account, self._forward, timers=self._timers)
            try:
                phone.start()
            except SoftphoneError as exc:
                log.warning("softphone not started: %s", exc)
                return f"softphone off: {exc}"
            self.phone = phone
            return None

    def stop(self) -> None:
        """Hang up and end the thread. Blocking (joins the thread, up to a few seconds): call from
        a worker thread, never on the event loop."""
        with self._life:
            self._stopped = True
            phone, self.phone = self.phone, None
        if phone is not None:
            phone.stop()

    def dial(self, permit: DialPermit) -> str:
        """Place a call under `permit` (raises SoftphoneError for bad input or when off)."""
        if self.phone is None:
            raise SoftphoneError("the softphone is off: dial on your desk phone")
        if self.on_call:
            raise SoftphoneError("a call is in progress: hang it up first")
        with self._lock:
            self.call = self.phone.dial(permit)
            self.state = CallState.DIALING
            return self.call

    def hangup(self) -> None:
        if self.phone is not None:
            self.phone.hangup()

    def mute(self, on: bool) -> None:
        if self.phone is not None:
            self.phone.mute(on)

    def dtmf(self, keys: str) -> None:
        if self.phone is not None:
            self.phone.dtmf(keys)

    def hold(self, on: bool) -> None:
        """Hold (True) or resume (False) the connected call; ON_HOLD / CONNECTED events follow
        once the far end agrees."""
        if self.phone is not None:
            self.phone.hold(on)

    # -- from the softphone thread --------------------------------------------------------
    def _forward(self, event: PhoneEvent) -> None:
        if isinstance(event, CallEvent):
            with self._lock:
                ours = event.call == self.call
                if ours:
                    self.state = event.state
            if not ours:
                if event.state == CallState.ENDED and event.call:
                    # A dial refused at once (another call in progress): say so, keep the call.
                    self._on_event(PhoneNotice(event.detail, event.at))
                return
        self._on_event(event)
