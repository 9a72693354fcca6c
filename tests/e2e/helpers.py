"""What every end-to-end test does with the real app under Pilot: sign in, let the app's workers
settle, wait for what a person would wait for."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from textual import events
from textual.keys import _character_to_key
from textual.pilot import Pilot
from textual.widgets import Input
from textual.worker import WorkerCancelled, WorkerFailed

from queues.store.db import transaction
from queues.store.models import Attempt, Callback, FollowUpAction, User
from tests.world import PASSWORD, World, make_world, visible_text


async def sign_in(pilot: Pilot[Any], username: str, password: str = PASSWORD) -> None:
    """Type a user name and password on the sign-in screen and press Enter in the password field;
    nothing is awaited after the key."""
    screen = pilot.app.screen
    screen.query_one("#username", Input).value = username
    screen.query_one("#password", Input).value = password
    screen.query_one("#password", Input).focus()
    await pilot.press("enter")


async def type_keys(pilot: Pilot[Any], text: str) -> None:
    """Type `text` key by key as a fast typist does: every key's event goes to the app as the
    terminal's driver sends it, in order, and only the last waits for the screen to take them all.
    (Pilot.press waits for the app to fall idle twice after each key: ~70 ms a key here.)"""
    if not text:
        return
    driver = pilot.app._driver
    assert driver is not None
    for char in text[:-1]:
        key = events.Key(_character_to_key(char) if not char.isalnum() else char, char)
        key.set_sender(pilot.app)
        driver.send_message(key)
    await pilot.press(_character_to_key(text[-1]) if not text[-1].isalnum() else text[-1])


async def settle(pilot: Pilot[Any]) -> None:
    """Let workers (a key's, then what its result starts: a recount, a refresh) finish and their
    results reach the screen: until two rounds in a row find nothing running."""
    idle = 0
    for _ in range(50):
        # A worker that raised has been answered by its screen (Worker.StateChanged): the test
        # sees that on screen. A cancelled one is finished too: Textual cancels a screen's
        # workers when it goes, and the wrap-up's save dismisses its own screen as its last act
        # (and an exclusive worker is cancelled by the next of its group).
        with contextlib.suppress(WorkerFailed, WorkerCancelled):
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        idle = 0 if any(w.is_running for w in pilot.app.workers) else idle + 1
        if idle == 2:
            return


async def login(pilot: Pilot[Any], username: str) -> None:
    """Sign in with the world's password and let the first screen load."""
    await sign_in(pilot, username)
    await settle(pilot)


async def until(pilot: Pilot[Any], ready: Callable[[], bool], what: str, rounds: int = 600) -> None:
    """Let the app run until `ready()` holds (each round drains the app's message queue); for what
    comes from outside the app's workers (a SIP peer, another console)."""
    for _ in range(rounds):
        if ready():
            return
        await pilot.pause(0.05)
    notes = "\n".join(f"{n.title}: {n.message}" for n in pilot.app._notifications)
    raise AssertionError(
        f"timed out waiting for {what}; the screen shows:\n{visible_text(pilot.app)}\n"
        f"notifications:\n{notes}"
    )


def user_id(session: Session, username: str) -> int:
    return session.scalars(select(User.id).where(User.username == username)).one()


async def press(pilot: Pilot[Any], *keys: str) -> None:
    """Press the keys, then settle."""
    await pilot.press(*keys)
    await settle(pilot)


async def choose_disposition(pilot: Pilot[Any], disposition: str | None = None) -> None:
    """On the wrap-up, highlight `disposition` (the first one when None) and choose it."""
    wrap = pilot.app.screen
    listed = wrap.query_one("#disposition")
    listed.highlighted = 0 if disposition is None else list(wrap.options).index(disposition)  # type: ignore[attr-defined]
    listed.focus()
    await pilot.press("enter")


def floor_world(tmp_path: Path, now: datetime, name: str = "floor.db") -> World:
    """The test world (Alvarez, Brown, Chen falling due in 1, 3, 5 days) with what a floor shows
    at `now`: Ana's finished call 40 minutes ago with its refill request, and Brown's callback an
    hour overdue."""
    w = make_world(
        tmp_path, f"sqlite:///{tmp_path / name}", now, {"Alvarez": 1, "Brown": 3, "Chen": 5}
    )
    with transaction(w.store.sessions) as s:
        ana = user_id(s, "ana")
        started = now - timedelta(minutes=40)
        attempt = Attempt(
            uid=str(uuid.UUID(int=1)),
            patient_id=w.patients["Chen"],
            user_id=ana,
            started_at=started,
            ended_at=started + timedelta(minutes=3),
            recorded_at=started + timedelta(minutes=4),
            disposition="completed",
        )
        s.add(attempt)
        s.flush()
        s.add(
            FollowUpAction(
                idempotency_key=f"{attempt.uid}:0",
                attempt_id=attempt.id,
                patient_id=w.patients["Chen"],
                pharmacy_id=1,
                kind="refill_request",
                detail={},
                created_at=started + timedelta(minutes=4),
            )
        )
        s.add(
            Callback(
                patient_id=w.patients["Brown"],
                attempt_id=attempt.id,
                due_at=now - timedelta(hours=1),
                owner_id=ana,
            )
        )
    return w
