"""The supervisor's outbox, through the real app under Pilot on an SQLite file: opened from the
floor with O, counts per pharmacy, retry and discard (audited, their pharmacies only), and the
console's own deliverer thread, started with the app and stopped when it exits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from console.app import OutreachApp
from console.screens.floor import FloorScreen
from console.screens.outbox import OutboxActionsTable, OutboxCountsTable, OutboxScreen
from console.screens.prompt import ConfirmScreen
from console.services.outbox import Outbox
from queues.errors import NotAllowed
from queues.store.db import reading, transaction
from queues.store.models import Attempt, AuditEvent, FollowUpAction
from queues.views.user import SignedInUser
from tests.e2e.helpers import login, press, until, user_id
from tests.outbox_receiver import KEY, running_receiver
from tests.world import World, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def world(tmp_path: Path) -> tuple[World, dict[str, int]]:
    """Three actions at TX1: one dead (refused), one waiting for a retry, one never tried."""
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 'outbox.db'}", NOW, {"Alvarez": 1})
    ids: dict[str, int] = {}
    with transaction(w.store.sessions) as s:
        attempt = Attempt(
            uid=str(uuid.uuid4()),
            patient_id=w.patients["Alvarez"],
            user_id=user_id(s, "ana"),
            started_at=NOW - timedelta(hours=1),
            ended_at=NOW - timedelta(hours=1),
            recorded_at=NOW - timedelta(hours=1),
            disposition="completed",
        )
        s.add(attempt)
        s.flush()
        for n, (status, error) in enumerate(
            (
                ("dead", "HTTP 422 Unprocessable Entity: refused by the pharmacy"),
                ("retrying", "HTTP 503 Service Unavailable"),
                ("pending", None),
            )
        ):
            action = FollowUpAction(
                idempotency_key=f"{attempt.uid}:{n}",
                attempt_id=attempt.id,
                patient_id=w.patients["Alvarez"],
                pharmacy_id=1,
                kind="refill_request",
                detail={},
                created_at=NOW - timedelta(hours=1),
                status=status,
                tries=1 if error else 0,
                last_error=error,
                next_attempt_at=NOW + timedelta(minutes=5) if status == "retrying" else None,
            )
            s.add(action)
            s.flush()
            ids[status] = action.id
    return w, ids


def cells(table: OutboxCountsTable | OutboxActionsTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_supervisor_opens_the_outbox_retries_a_dead_action_and_discards_another(
    tmp_path: Path,
) -> None:
    w, ids = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "sue")
        assert isinstance(app.screen, FloorScreen)
        assert "Outbox" in visible_text(app)  # in the floor's footer
        await press(pilot, "O")
        assert isinstance(app.screen, OutboxScreen)
        screen = app.screen
        assert cells(screen.query_one(OutboxCountsTable)) == [
            ["TX1", "none: actions wait", "1", "1", "1", "0"]
        ]
        actions = cells(screen.query_one(OutboxActionsTable))
        assert [r[0] for r in actions] == [
            str(ids["dead"]),
            str(ids["retrying"]),
            str(ids["pending"]),
        ]
        assert actions[0][3:] == [
            "dead",
            "1",
            "",
            "HTTP 422 Unprocessable Entity: refused by the pharmacy",
        ]
        assert "Alvarez" not in visible_text(app)  # no patient on this screen
        assert "2 waiting to be delivered · 1 dead" in visible_text(app)

        await press(pilot, "r")  # the cursor is on the dead one
        assert cells(screen.query_one(OutboxCountsTable))[0][2:5] == ["1", "2", "0"]

        table = screen.query_one(OutboxActionsTable)
        table.move_cursor(row=[r[0] for r in cells(table)].index(str(ids["pending"])))
        await press(pilot, "d")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "y")
        assert app.screen is screen
        assert cells(screen.query_one(OutboxCountsTable))[0][2:5] == ["0", "2", "0"]

        await press(pilot, "escape")
        assert isinstance(app.screen, FloorScreen)

    with reading(w.store.sessions) as s:
        states = dict(s.execute(select(FollowUpAction.id, FollowUpAction.status)).all())
        audit = s.execute(
            select(AuditEvent.action, AuditEvent.user_id, AuditEvent.detail).where(
                AuditEvent.action.like("outbox_%")
            )
        ).all()
        sue = user_id(s, "sue")
    assert states[ids["dead"]] == "retrying" and states[ids["pending"]] == "discarded"
    assert [(a, u, d["action_id"]) for a, u, d in audit] == [
        ("outbox_retry", sue, ids["dead"]),
        ("outbox_discard", sue, ids["pending"]),
    ]


def test_only_supervisors_of_the_pharmacy_touch_its_outbox(tmp_path: Path) -> None:
    w, ids = world(tmp_path)
    agent = SignedInUser(2, "ana", "Ana", "agent", (1,), ("TX1",))
    with pytest.raises(NotAllowed):
        Outbox(w.store, agent)
    elsewhere = SignedInUser(9, "zoe", "Zoe", "supervisor", (2,), ("TX2",))
    outbox = Outbox(w.store, elsewhere)
    assert outbox.view().items == ()
    with pytest.raises(NotAllowed, match="not one of your pharmacies"):
        outbox.retry(ids["dead"])
    with pytest.raises(NotAllowed):
        outbox.discard(ids["pending"])


async def test_the_running_console_delivers_in_a_thread_and_stops_it_on_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTREACH_OUTBOX_KEY", KEY)
    w, ids = world(tmp_path)
    with running_receiver() as receiver:
        with transaction(w.store.sessions) as s:
            from queues.store.models import Pharmacy

            s.get_one(Pharmacy, 1).endpoint_url = receiver.url
            s.get_one(FollowUpAction, ids["retrying"]).next_attempt_at = None  # due now
        app = OutreachApp(w.services)
        async with app.run_test(size=(120, 40)) as pilot:
            courier = app._courier
            assert courier is not None and courier.running

            def delivered() -> bool:
                with reading(w.store.sessions) as s:
                    return s.get_one(FollowUpAction, ids["pending"]).status == "delivered"

            await until(pilot, delivered, "the console's courier to deliver the actions")
        assert not courier.running
    with reading(w.store.sessions) as s:
        assert s.get_one(FollowUpAction, ids["retrying"]).status == "delivered"
        assert s.get_one(FollowUpAction, ids["dead"]).status == "dead"  # a person decides
    assert receiver.bad_signatures == []


async def test_at_80_columns_the_selected_actions_why_is_shown_in_full(tmp_path: Path) -> None:
    """The Why column gets a few cells at 80x24; the line under the table says it unabridged."""
    w, ids = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "sue")
        await press(pilot, "O")
        assert isinstance(app.screen, OutboxScreen)
        screen = app.screen
        refused = "HTTP 422 Unprocessable Entity: refused by the pharmacy"
        assert f"#{ids['dead']} dead: {refused}" in visible_text(app)  # the cursor's row
        table = screen.query_one(OutboxActionsTable)
        table.move_cursor(row=[r[0] for r in cells(table)].index(str(ids["retrying"])))
        await pilot.pause()
        shown = visible_text(app)
        assert f"#{ids['retrying']} retrying: HTTP 503 Service Unavailable" in shown
        assert refused not in shown
        table.move_cursor(row=[r[0] for r in cells(table)].index(str(ids["pending"])))
        await pilot.pause()
        assert f"#{ids['pending']} pending: not tried yet" in visible_text(app)
        assert "Alvarez" not in visible_text(app)
