"""What a person sees, as SVG snapshots (pytest-textual-snapshot): the sign-in, an agent's patient,
the wrap-up, the floor's four tabs and its sign-in alerts, each at 80×24 and 120×40.

A change that alters the screen on purpose regenerates them; look at the new SVGs before committing:

    .venv/bin/pytest tests/e2e/test_snapshots.py --snapshot-update

They are stored in tests/e2e/__snapshots__/test_snapshots/. Nothing on them may vary from run to
run: the practice clock stands still at NOW, and the on-screen timers (the agent's phase timer,
the floor's refresh time in ms) read a stopped stopwatch; cursors do not blink.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import pkgutil
import sys
import time
import types
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

import console.screens
import console.widgets
from console.app import OutreachApp
from console.services.container import Services
from queues.clock import FixedClock
from tests.e2e.helpers import floor_world, login, press, settle

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas
SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
Snap = Callable[..., bool]


@pytest.fixture(autouse=True)
def stopped_stopwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Screens and widgets measure on-screen durations with `time.monotonic()`/`perf_counter()`:
    in their modules (only there, not in Textual's) both read 0, so each shows 0:00 / 0 ms."""
    stopped = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if k[0] != "_"})
    stopped.monotonic = stopped.perf_counter = lambda: 0.0
    for package in (console.screens, console.widgets):
        for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            with contextlib.suppress(ImportError):  # one the app cannot import shows no timer
                importlib.import_module(info.name)
    for name, module in list(sys.modules.items()):
        if name.startswith(("console.screens.", "console.widgets.")) and (
            getattr(module, "time", None) is time
        ):
            monkeypatch.setattr(module, "time", stopped)
    yield


def app_at_now(tmp_path: Path) -> OutreachApp:
    """The test world (Alvarez, Brown, Chen falling due in 1, 3, 5 days) on a practice clock that
    stands still, with a finished call, a refill request and an overdue callback for the floor."""
    w = floor_world(tmp_path, NOW, "snap.db")
    services = Services(dataclasses.replace(w.store, clock=FixedClock(NOW, is_practice=True)))
    return OutreachApp(services)


def steady(
    drive: Callable[[Pilot[Any]], Awaitable[None]],
) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Run `drive`, let the workers settle, and stop the text cursors blinking."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await drive(pilot)
        await settle(pilot)
        for field in pilot.app.screen.query("Input, TextArea"):
            assert isinstance(field, Input | TextArea)
            field.cursor_blink = False
        # Under load a DataTable can keep the lines it painted before its columns were sized to
        # its rows (header-wide columns, cells cut: seen at 80x24 on the medications): repaint
        # every widget from its current state, then wait until two paints agree.
        for widget in pilot.app.screen.query("*"):
            widget.refresh()
        previous = ""
        for _ in range(50):
            await pilot.pause()
            shown = pilot.app.export_screenshot()
            if shown == previous:
                return
            previous = shown

    return run_before


@SIZES
def test_sign_in_screen(snap_compare: Snap, tmp_path: Path, size: tuple[int, int]) -> None:
    async def drive(pilot: Pilot[Any]) -> None:
        pass

    assert snap_compare(app_at_now(tmp_path), terminal_size=size, run_before=steady(drive))


@SIZES
def test_workspace_with_a_patient(
    snap_compare: Snap, tmp_path: Path, size: tuple[int, int]
) -> None:
    """Pat Alvarez (earliest run-out) on screen after r: the card, the medicines, the script."""

    async def drive(pilot: Pilot[Any]) -> None:
        await login(pilot, "ana")
        await press(pilot, "r")

    assert snap_compare(app_at_now(tmp_path), terminal_size=size, run_before=steady(drive))


@SIZES
def test_wrap_up_after_a_connected_call(
    snap_compare: Snap, tmp_path: Path, size: tuple[int, int]
) -> None:
    async def drive(pilot: Pilot[Any]) -> None:
        await login(pilot, "ana")
        await press(pilot, "r")
        await press(pilot, "d")
        await press(pilot, "c")
        await press(pilot, "w")

    assert snap_compare(app_at_now(tmp_path), terminal_size=size, run_before=steady(drive))


@SIZES
@pytest.mark.parametrize(
    "tab", ["1", "2", "3", "4"], ids=["queues", "agents", "callbacks", "today"]
)
def test_floor_tab(snap_compare: Snap, tmp_path: Path, size: tuple[int, int], tab: str) -> None:
    async def drive(pilot: Pilot[Any]) -> None:
        await login(pilot, "sue")
        await press(pilot, tab)

    assert snap_compare(app_at_now(tmp_path), terminal_size=size, run_before=steady(drive))


@SIZES
def test_floor_sign_in_alerts(
    snap_compare: Snap, tmp_path: Path, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ana's account locked by five wrong passwords from one place (slowed too), on the alerts
    line and the Sign-ins tab (5). Lockouts run on the wall clock: here it stands at NOW too."""
    from console.services import accounts
    from queues.auth import authenticate
    from queues.errors import AuthenticationFailed
    from queues.store.db import transaction

    monkeypatch.setattr(accounts, "utcnow", lambda: NOW)
    w = floor_world(tmp_path, NOW, "snap.db")
    for k in range(5):  # a minute apart, the last a minute ago: locked until 10:14
        with contextlib.suppress(AuthenticationFailed), transaction(w.store.sessions) as s:
            authenticate(
                s, "ana", "wrong-guess", source="cli@host7", now=NOW - timedelta(minutes=5 - k)
            )
    app = OutreachApp(
        Services(dataclasses.replace(w.store, clock=FixedClock(NOW, is_practice=True)))
    )

    async def drive(pilot: Pilot[Any]) -> None:
        await login(pilot, "sue")
        await press(pilot, "5")

    assert snap_compare(app, terminal_size=size, run_before=steady(drive))
