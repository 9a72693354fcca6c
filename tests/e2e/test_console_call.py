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

from console.app import OutreachApp
from console.config import SipSettings
from console.screens.login import LoginScreen
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from console.services.container import Services
from queues.auth import signed_in
from queues.floor import controls
from queues.store.db import transaction
from queues.store.models import AgentState, Attempt, User
from tests.e2e.helpers import sign_in, until, user_id
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
        assert screen.softphone is not None
        await pilot.press("d")
        await until(pilot, lambda: screen.phase == "connected", "the patient to answer")
        assert "ON CALL" in visible_text(app)
        await pilot.press("h")
        await until(pilot, lambda: screen.call.ended_at is not None, "the hang-up")
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WrapUpScreen), "the wrap-up")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        assert wrap.suggested == "completed"
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
async def test_a_busy_line_preselects_busy_in_the_wrap_up(
    tmp_path: Path,
    sipp: Callable[..., SippPeer],  # noqa: F811
) -> None:
    peer = sipp("uas_reject_486.xml")
    w = world(tmp_path, SipSettings(server="127.0.0.1", port=peer.port, audio=False))
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await sign_in_and_take_patient(pilot)
        await pilot.press("d")
        await until(pilot, lambda: screen.phase == "busy", "the busy signal")
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WrapUpScreen), "the wrap-up")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen) and wrap.suggested == "busy"
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
