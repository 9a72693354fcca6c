"""Sign-in alerts on the supervisor's floor (Pilot, SQLite file): an account locked by failed
sign-ins and a place being slowed show on the alerts line and on the Sign-ins tab (5), as they
were audited; a supervisor of another pharmacy does not see the lock. The floor's status line
fits 80 columns whole."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from console.app import OutreachApp
from console.widgets.floor_tables import SignInsTable
from queues.auth import add_user, authenticate, signed_in
from queues.errors import AuthenticationFailed
from queues.store.db import transaction
from queues.store.models import AuditEvent, User
from queues.timeutil import utcnow
from tests.conftest import add_pharmacy
from tests.e2e.helpers import floor_world, login, press
from tests.world import PASSWORD, World, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


def fail_five_times(w: World, username: str, source: str, last: datetime) -> None:
    """Five wrong passwords for `username` from `source`, a minute apart, the last at `last`
    (the real sign-in check: counted, audited, the fifth locks the account)."""
    for k in range(5):
        with contextlib.suppress(AuthenticationFailed), transaction(w.store.sessions) as s:
            authenticate(
                s, username, "wrong-guess", source=source, now=last - timedelta(minutes=4 - k)
            )


async def test_a_locked_account_and_a_slowed_place_show_on_the_floor(tmp_path: Path) -> None:
    w = floor_world(tmp_path, NOW)
    fail_five_times(w, "ana", "cli@host7", utcnow())
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "sue")
        shown = visible_text(app)
        assert "5 failed sign-ins for 'ana' from cli@host7, locked until" in shown
        assert "need a look" in shown
        await press(pilot, "5")
        table = app.screen.query_one(SignInsTable)
        cells = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[:3] for r in cells] == [
            ["'ana' locked", "5", "cli@host7"],
            ["sign-ins slowed", "5", "cli@host7"],
        ]
        assert cells[0][3].startswith("until ")
    with w.store.sessions() as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.user_id.is_not(None)))
        assert list(actions).count("login_failed") == 5
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.action == "account_locked"))


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scope.db'}"
    return str(request.getfixturevalue("pg_url"))


async def test_another_pharmacys_supervisor_sees_the_slowed_place_not_the_lock(
    tmp_path: Path, url: str
) -> None:
    w = make_world(tmp_path, url, NOW, {"Alvarez": 1})
    fail_five_times(w, "ana", "cli@host7", utcnow())
    with transaction(w.store.sessions) as s:
        add_pharmacy(s, "OK1", state="OK")
        add_user(s, "olga", PASSWORD, "supervisor", ["OK1"])
        add_user(s, "adam", PASSWORD, "admin", ["OK1"])
    with w.store.sessions() as s:
        olga, adam = (
            signed_in(s.scalars(select(User).where(User.username == n)).one())
            for n in ("olga", "adam")
        )
    theirs = w.services.accounts.sign_in_alerts(olga)
    assert theirs.locked == () and [p.source for p in theirs.slowed] == ["cli@host7"]
    assert [a.username for a in w.services.accounts.sign_in_alerts(adam).locked] == ["ana"]


async def test_the_status_line_fits_80_columns_whole(tmp_path: Path) -> None:
    w = floor_world(tmp_path, NOW)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "sue")
        status = str(app.screen.query_one("#status-line").render())
        lines = status.splitlines()
        assert len(lines) == 2 and all(len(line) <= 78 for line in lines), lines
        joined = " · ".join(lines)
        for figure in ("FLOOR TX1", "1 need a look", "callbacks 1 due (1 late)", "1 call today"):
            assert figure in joined, figure
        assert "1 calls" not in joined
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "sue")
        status = str(app.screen.query_one("#status-line").render())
        assert "campaigns counted" in status and " ms" in status
