"""A whole call from the softphone bar, driven with Pilot against sipp on loopback.

This hosts the real SoftphoneBar and PhoneLine in a minimal app that does what the workspace does
(start the line off the event loop, dial on a key, hang up, take the suggested disposition from
the end reason); tests/e2e/test_console_call.py drives the whole console.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from textual import work
from textual.app import App, ComposeResult
from textual.widgets import Static

from console.config import SipSettings
from console.services.phone_line import PhoneLine
from console.softphone import CallEvent, CallState, DialPermit
from console.widgets.softphone_bar import KeyCap, SoftphoneBar
from tests.softphone.conftest import SippPeer, sipp  # noqa: F401 (the fixture)

pytestmark = pytest.mark.sip


class CallApp(App[None]):
    BINDINGS = [("d", "dial", "Dial"), ("x", "hangup", "Hang up"), ("m", "mute", "Mute")]

    def __init__(self, sip: SipSettings, number: str) -> None:
        super().__init__()
        self.sip = sip
        self.number = number
        self.events: list[CallEvent] = []
        self.suggested: str | None = None
        self.keys_sent = ""
        self.changed = asyncio.Event()
        self.controller: PhoneLine | None = None
        self.started = asyncio.Event()

    def compose(self) -> ComposeResult:
        yield SoftphoneBar(enabled=bool(self.sip.server), id="softphone")

    def on_mount(self) -> None:
        self.controller = PhoneLine(self.sip, self.query_one(SoftphoneBar).post_phone_event)
        self._start(self.controller)

    @work(thread=True, exit_on_error=False)
    def _start(self, line: PhoneLine) -> None:
        line.start()
        self.call_from_thread(self.started.set)

    def on_unmount(self) -> None:
        if self.controller is not None:
            threading.Thread(target=self.controller.stop, daemon=True).start()

    def action_dial(self) -> None:
        assert self.controller is not None
        self.controller.dial(DialPermit.for_seconds(self.number, 60, caller_id="+12145550100"))

    def action_hangup(self) -> None:
        assert self.controller is not None
        self.controller.hangup()

    def on_softphone_bar_call_changed(self, message: SoftphoneBar.CallChanged) -> None:
        self.events.append(message.event)
        if message.event.state == CallState.ENDED:
            self.suggested = message.event.suggested_disposition
        self.changed.set()

    def on_softphone_bar_dtmf_changed(self, message: SoftphoneBar.DtmfChanged) -> None:
        self.keys_sent = message.event.sent
        self.changed.set()

    def on_softphone_bar_dtmf_pressed(self, message: SoftphoneBar.DtmfPressed) -> None:
        assert self.controller is not None
        self.controller.dtmf(message.key)

    async def keys_out(self, keys: str) -> None:
        async def wait() -> None:
            while self.keys_sent != keys:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout=15)

    async def reach(self, state: CallState) -> None:
        async def wait() -> None:
            while not self.events or self.events[-1].state != state:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout=15)


def bar_text(app: App[None]) -> str:
    return str(app.query_one("#sp-state", Static).render())


async def test_dial_connect_hang_up_from_the_bar(sipp: Callable[..., SippPeer]) -> None:  # noqa: F811
    peer = sipp("uas_answer.xml", "-rtp_echo")
    app = CallApp(SipSettings(server="127.0.0.1", port=peer.port), "2145550134")
    async with app.run_test(size=(80, 24)) as pilot:
        assert "SOFTPHONE" in str(app.query_one("#sp-mode", Static).render())
        await asyncio.wait_for(app.started.wait(), timeout=10)
        await pilot.press("d")
        await app.reach(CallState.CONNECTED)
        await pilot.pause()
        assert bar_text(app).startswith("Connected 00:0")
        await pilot.click(KeyCap, offset=(1, 0))  # the keypad's first key: "1"
        await app.keys_out("1")
        await pilot.pause()
        assert "keys sent 1" in bar_text(app)
        await pilot.press("x")
        await app.reach(CallState.ENDED)
        await pilot.pause()
        assert bar_text(app).startswith("Ended — Call completed")
        assert app.events[-1].dtmf_sent == "1"
        assert app.suggested is None  # a conversation: the script decides
    assert peer.wait() == 0, peer.trace()
    assert "+12145550100" in peer.received("INVITE")[0]


async def test_busy_line_suggests_busy_for_wrap_up(sipp: Callable[..., SippPeer]) -> None:  # noqa: F811
    peer = sipp("uas_reject_486.xml")
    app = CallApp(SipSettings(server="127.0.0.1", port=peer.port), "2145550134")
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.started.wait(), timeout=10)
        await pilot.press("d")
        await app.reach(CallState.ENDED)
        await pilot.pause()
        assert bar_text(app) == "Ended — Busy (SIP 486) · wrap-up: Busy"
        assert app.suggested == "busy"
    assert peer.wait() == 0, peer.trace()


async def test_without_a_sip_account_the_bar_says_manual_dial() -> None:
    app = CallApp(SipSettings(), "2145550134")
    async with app.run_test(size=(80, 24)):
        await asyncio.wait_for(app.started.wait(), timeout=10)
        assert app.controller is not None and not app.controller.enabled
        assert "MANUAL DIAL" in str(app.query_one("#sp-mode", Static).render())
        assert "desk phone" in bar_text(app)
