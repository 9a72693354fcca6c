"""What a screen owns to place calls: the softphone thread and the bar that shows it.

The controller starts and stops the thread with the screen, forwards the agent's requests as
commands, and turns the thread's events into messages on the bar (thread-safe `post_message`),
from where they bubble up to the screen. Without a SIP account it stays off: manual dialling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from console.config import SipSettings
from console.softphone.account import SipTimers, account_from_settings
from console.softphone.events import (
    CallEvent,
    CallState,
    DtmfEvent,
    PhoneEvent,
    PhoneNotice,
    RegistrationEvent,
)
from console.softphone.phone import Softphone, SoftphoneError
from console.widgets.softphone_bar import SoftphoneBar

log = logging.getLogger(__name__)


class SoftphoneController:
    def __init__(
        self, settings: SipSettings, bar: SoftphoneBar, *, timers: SipTimers | None = None
    ) -> None:
        self.account = account_from_settings(settings)
        self.bar = bar
        self._timers = timers
        self.phone: Softphone | None = None
        self.call: str | None = None  # the handle of the call in progress
        self.state: CallState | None = None
        # dial() assigns `call` while the thread may already report on it.
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """A SIP account is configured and the softphone is running."""
        return self.phone is not None

    @property
    def on_call(self) -> bool:
        return self.call is not None and self.state != CallState.ENDED

    def start(self) -> str | None:
        """Start the thread; None when it runs, else why the console stays in manual mode."""
        if not self.account.configured:
            return "no SIP account in [sip]: manual dialling"
        phone = Softphone(self.account, self._on_event, timers=self._timers)
        try:
            phone.start()
        except SoftphoneError as exc:
            log.warning("softphone not started: %s", exc)
            return f"softphone off: {exc}"
        self.phone = phone
        return None

    def stop(self) -> None:
        if self.phone is not None:
            self.phone.stop()
            self.phone = None

    def dial(
        self,
        number: str,
        *,
        caller_id: str | None = None,
        display_name: str | None = None,
        pre_dial_check: Callable[[], None] | None = None,
    ) -> str:
        """Place a call (raises SoftphoneError for bad input or when off)."""
        if self.phone is None:
            raise SoftphoneError("the softphone is off: dial on your desk phone")
        if self.on_call:
            raise SoftphoneError("a call is in progress: hang it up first")
        with self._lock:
            self.call = self.phone.dial(
                number,
                caller_id=caller_id,
                display_name=display_name,
                pre_dial_check=pre_dial_check,
            )
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

    # -- from the softphone thread --------------------------------------------------------
    def _on_event(self, event: PhoneEvent) -> None:
        if isinstance(event, CallEvent):
            with self._lock:
                ours = event.call == self.call
                if ours:
                    self.state = event.state
            if not ours:
                if event.state == CallState.ENDED and event.call:
                    # A dial refused at once (another call in progress): say so, keep the call.
                    self.bar.post_message(SoftphoneBar.PhoneNote(event.detail))
                return
            self.bar.post_message(SoftphoneBar.CallChanged(event))
        elif isinstance(event, DtmfEvent):
            self.bar.post_message(SoftphoneBar.DtmfChanged(event))
        elif isinstance(event, PhoneNotice):
            self.bar.post_message(SoftphoneBar.PhoneNote(event.text))
        elif isinstance(event, RegistrationEvent):
            # A failure the agent should know about; being registered is the normal case.
            failed = not event.registered and event.detail != "unregistered"
            if failed:
                self.bar.post_message(SoftphoneBar.PhoneNote(event.detail))
