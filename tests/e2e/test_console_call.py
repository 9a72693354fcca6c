"""A whole call from the agent's console through the softphone, against sipp on loopback; and what
the agent's console does when a supervisor acts on it (log-out request, released patient)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from textual.pilot import Pilot
from textual.widgets import Static

from console.app import OutreachApp
from console.config import SipSettings
from console.screens.login import LoginScreen
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from console.services.container import Services
from console.widgets.patient_card import PatientCard
from queues.auth import signed_in
from queues.floor import controls
from queues.store.db import transaction
from queues.store.models import AgentState, Attempt, QueueEntry, User
from tests.e2e.helpers import choose_disposition, sign_in, until, user_id
from tests.softphone.conftest import SippPeer, sipp  # noqa: F401 (the fixture)
from tests.world import World, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


def world(tmp_path: Path, sip: SipSettings | None = None) -> World:
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 'call.db'}", NOW, {"Alvarez": 1, "Brown": 3})
    if sip is None:
        return w
    store = dataclasses.replace(w.store, settings=dataclasses.replace(w.store.settings, sip=sip))
    return dataclasses.replace(w, store=store, services=Services(store))


async def sign_in_and_take_patient(pilot: Pilot[Any], name: str = "ana") -> WorkspaceScreen:
    app = pilot.app
    await sign_in(pilot, name)
    await until(pilot, lambda: isinstance(app.screen, WorkspaceScreen), "the workspace")
    screen = app.screen
    assert isinstance(screen, WorkspaceScreen)
    await app.workers.wait_for_complete()  # the screen's start-up (agent state) is done
    await until(pilot, lambda: screen.check_action("ready", ()) is True, "Ready to be allowed")
    await pilot.press("r")
    await until(pilot, lambda: screen.phase == "preview", "a patient")
    return screen


def workspace(app: OutreachApp) -> WorkspaceScreen:
    """The workspace, under the wrap-up when that is open."""
    return next(s for s in app.screen_stack if isinstance(s, WorkspaceScreen))


def bar(app: OutreachApp) -> str:
    """The softphone bar's state line, as the agent reads it."""
    return str(workspace(app).query_one("#sp-state", Static).render())


def dial_bar(app: OutreachApp) -> str:
    screen = workspace(app)
    return " · ".join(
        str(screen.query_one(f"#dial-{part}", Static).render()) for part in ("mode", "state")
    )


def status_line(app: OutreachApp) -> str:
    return str(workspace(app).query_one("#status-line", Static).render())


@pytest.mark.sip
async def test_a_call_through_the_softphone_connects_hangs_up_and_wraps_up(
    tmp_path: Path,
    sipp: Callable[..., SippPeer],  # noqa: F811
) -> None:
    peer = sipp("uas_answer.xml", "-rtp_echo")
    w = world(tmp_path, SipSettings(server="127.0.0.1", port=peer.port, audio=False))
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await sign_in_and_take_patient(pilot)
        await until(pilot, lambda: screen.softphone is not None, "the softphone")
        assert "MANUAL DIAL" not in visible_text(app)
        assert "Dial it on your phone" not in visible_text(app)
        assert dial_bar(app).startswith("SOFTPHONE")
        await pilot.press("d")
        await until(pilot, lambda: screen.phase == "connected", "the patient to answer")
        assert "ON CALL" in status_line(app)
        assert bar(app).startswith("Connected 00:0")
        # Mute and each key sent show in the softphone bar.
        await pilot.press("m")
        await until(pilot, lambda: "MUTED" in bar(app), "mute on the bar")
        await pilot.press("k", "4", "2")
        await until(pilot, lambda: "keys sent 42" in bar(app), "the digits on the bar")
        await pilot.press("m")
        await until(pilot, lambda: "MUTED" not in bar(app), "mute off on the bar")
        screen.focus_next()  # off the keypad: the workspace's keys again
        await pilot.press("h")
        # The hang-up ends the call on screen and opens the wrap-up by itself.
        await until(pilot, lambda: isinstance(app.screen, WrapUpScreen), "the wrap-up")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        await until(pilot, lambda: "The call: Call completed" in visible_text(app), "how it ended")
        # The script was left at its first step: nothing suggests "call completed".
        assert wrap.suggested is None
        assert screen.phase == "ended"
        assert "ON CALL" not in status_line(app) and "CALL ENDED" in status_line(app)
        await choose_disposition(pilot, "completed")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, WorkspaceScreen), "the save")
    assert peer.wait() == 0, peer.trace()
    invite = peer.received("INVITE")[0]
    assert "+12145550100" in invite  # the pharmacy's caller ID
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.dial_mode, attempt.call_result, attempt.disposition) == (
            "sip",
            "connected",
            "completed",
        )
        assert attempt.connected_at is not None


@pytest.mark.sip
async def test_the_agent_puts_the_patient_on_hold_and_back_and_the_screen_says_so(
    tmp_path: Path,
    sipp: Callable[..., SippPeer],  # noqa: F811
) -> None:
    """o (Hold/resume) is offered only during a connected call; the status line and the softphone
    bar say ON HOLD once the peer has agreed (sipp checks sendonly, then sendrecv), and ON CALL
    again after the second o."""
    from textual.widgets import Footer
    from textual.widgets._footer import FooterKey

    def footer_keys() -> set[str]:
        return {k.action for k in workspace(app).query_one(Footer).query(FooterKey)}

    peer = sipp("uas_answer_hold.xml", "-rtp_echo")
    w = world(tmp_path, SipSettings(server="127.0.0.1", port=peer.port, audio=False))
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await sign_in_and_take_patient(pilot)
        await until(pilot, lambda: screen.softphone is not None, "the softphone")
        assert "hold" not in footer_keys()  # no call: nothing to hold
        await pilot.press("d")
        await until(pilot, lambda: screen.phase == "connected", "the patient to answer")
        await until(pilot, lambda: "hold" in footer_keys(), "Hold in the footer")
        await pilot.press("o")
        await until(pilot, lambda: screen.phase == "on_hold", "the hold")
        assert "ON HOLD" in status_line(app) and "ON HOLD" in bar(app)
        await pilot.press("o")
        await until(pilot, lambda: screen.phase == "connected", "the resume")
        assert "ON CALL" in status_line(app) and "ON HOLD" not in bar(app)
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, WrapUpScreen), "the wrap-up")
        assert "hold" not in footer_keys()
    assert peer.wait() == 0, peer.trace()
    assert len(peer.received("INVITE")) == 3  # the call, the hold, the resume


@pytest.mark.sip
async def test_the_patient_hanging_up_ends_the_call_on_screen_and_opens_the_wrap_up(
    tmp_path: Path,
    sipp: Callable[..., SippPeer],  # noqa: F811
) -> None:
    peer = sipp("uas_remote_bye.xml", "-rtp_echo", "-d", "1500")
    w = world(tmp_path, SipSettings(server="127.0.0.1", port=peer.port, audio=False))
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await sign_in_and_take_patient(pilot)
        await until(pilot, lambda: screen.softphone is not None, "the softphone")
        await pilot.press("d")
        await until(pilot, lambda: screen.phase == "connected", "the patient to answer")
        await until(pilot, lambda: isinstance(app.screen, WrapUpScreen), "the wrap-up")
        await until(
            pilot, lambda: "The call: The patient hung up" in visible_text(app), "how it ended"
        )
        assert screen.phase == "ended" and "ON CALL" not in status_line(app)
        await pilot.press("escape")  # back to the call: it shows as ended, not on call
        await until(pilot, lambda: app.screen is screen, "the workspace")
        assert "Ended — The patient hung up" in bar(app)
        assert "CALL ENDED" in status_line(app)
    assert peer.wait() == 0, peer.trace()


@pytest.mark.sip
async def test_hanging_up_while_it_rings_shows_ringing_then_preselects_no_answer(
    tmp_path: Path,
    sipp: Callable[..., SippPeer],  # noqa: F811
) -> None:
    peer = sipp("uas_ring_no_answer.xml")
    w = world(tmp_path, SipSettings(server="127.0.0.1", port=peer.port, audio=False))
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await sign_in_and_take_patient(pilot)
        await until(pilot, lambda: screen.softphone is not None, "the softphone")
        await pilot.press("d")
        await until(pilot, lambda: screen.phase == "ringing", "the phone to ring")
        assert "RINGING" in status_line(app)
        assert bar(app).startswith("Ringing… (SIP 180)")
        assert "Ringing (SIP 180)" in dial_bar(app)
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, WrapUpScreen), "the wrap-up")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen) and wrap.suggested == "no_answer"
        await until(
            pilot, lambda: "The call: Hung up before an answer" in visible_text(app), "how it ended"
        )
    assert peer.wait() == 0, peer.trace()


@pytest.mark.sip
async def test_a_dead_trunk_is_a_line_failure_not_a_patient_outcome(
    tmp_path: Path,
    sipp: Callable[..., SippPeer],  # noqa: F811
) -> None:
    peer = sipp("uas_reject_503.xml")
    w = world(tmp_path, SipSettings(server="127.0.0.1", port=peer.port, audio=False))
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await sign_in_and_take_patient(pilot)
        await until(pilot, lambda: screen.softphone is not None, "the softphone")
        assert screen.offer is not None
        patient_id = screen.offer.claim.patient_id
        await pilot.press("d")
        # Recorded by the console itself: no wrap-up, no disposition asked of the agent.
        await until(pilot, lambda: screen.offer is None, "the line failure to be recorded")
        assert not isinstance(app.screen, WrapUpScreen)
        text = screen.query_one(PatientCard).message
        assert "the line failed: 503 Service Unavailable — nothing was said to the patient" in text
        assert "No answer" not in text
        assert screen.check_action("ready", ()) is True
    assert peer.wait() == 0, peer.trace()
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.patient_id, attempt.dial_mode) == (patient_id, "sip")
        assert (attempt.call_result, attempt.sip_status, attempt.disposition) == (
            "failed",
            503,
            "line_failed",
        )
        entry = s.get_one(QueueEntry, patient_id)
        assert entry.status != "done" and entry.holder_id is None


@pytest.mark.sip
async def test_a_busy_line_opens_the_wrap_up_with_busy_preselected(
    tmp_path: Path,
    sipp: Callable[..., SippPeer],  # noqa: F811
) -> None:
    peer = sipp("uas_reject_486.xml")
    w = world(tmp_path, SipSettings(server="127.0.0.1", port=peer.port, audio=False))
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await sign_in_and_take_patient(pilot)
        await until(pilot, lambda: screen.softphone is not None, "the softphone")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, WrapUpScreen), "the wrap-up")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen) and wrap.suggested == "busy"
        await until(pilot, lambda: "The call: Busy (SIP 486)" in visible_text(app), "how it ended")
        await until(pilot, lambda: bool(wrap.options), "the dispositions")
        assert "line_failed" not in wrap.options  # the console's own, never the agent's choice
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, WorkspaceScreen), "the save")
    assert peer.wait() == 0, peer.trace()
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.sip_status, attempt.disposition) == (486, "busy")


def _supervisor(w: World) -> object:
    with w.store.sessions() as s:
        return signed_in(s.scalars(select(User).where(User.username == "sue")).one())


async def test_a_supervisor_log_out_request_signs_an_idle_agent_out(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, "ana")
        await until(pilot, lambda: isinstance(app.screen, WorkspaceScreen), "the workspace")
        await app.workers.wait_for_complete()
        sue = _supervisor(w)
        with transaction(w.store.sessions) as s:
            ana = user_id(s, "ana")
            controls.request_logout(s, sue, ana, NOW)  # type: ignore[arg-type]
        await until(pilot, lambda: isinstance(app.screen, LoginScreen), "the log-out")
        await pilot.pause()
        assert "Sign in" in visible_text(app)
    with w.store.sessions() as s:
        state = s.get_one(AgentState, ana)
        assert (state.state, state.logout_requested_at) == ("offline", None)


async def test_a_released_patient_leaves_the_agents_console_and_nothing_is_saved(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await sign_in_and_take_patient(pilot)
        assert screen.offer is not None
        patient_id = screen.offer.claim.patient_id
        sue = _supervisor(w)
        with transaction(w.store.sessions) as s:
            controls.release_lease(s, sue, patient_id, NOW)  # type: ignore[arg-type]
        await until(pilot, lambda: screen.offer is None, "the console to let the patient go")
        assert "released from you" in visible_text(app)
        # The agent can go on: the next patient may be the same one, now unclaimed.
        await pilot.press("r")
        await until(pilot, lambda: screen.phase == "preview", "the next patient")
    with w.store.sessions() as s:
        assert s.scalars(select(Attempt)).all() == []
