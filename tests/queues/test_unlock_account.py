"""Unlocking an account locked after failed sign-ins (queues.floor.sign_ins.unlock_account), on
SQLite and PostgreSQL, through the floor's service and `outreach users unlock` (in this process):
a supervisor unlocks an agent of their pharmacies, an admin any account; the failures are
forgotten, the place they came from no longer slowed, and it is audited as who unlocked whom.
Another pharmacy's supervisor, an agent, and a supervisor trying a supervisor's account are
refused in words, the lock kept. And the floor (monitor and report) follows queues.access for an
admin as the CLI does: every pharmacy, assigned or not."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from console.cli import main
from queues.auth import add_user, signed_in
from queues.errors import NotAllowed, OutreachError
from queues.floor.sign_ins import unlock_account
from queues.store.db import transaction
from queues.store.models import AuditEvent, SignInSource, User
from queues.timeutil import as_utc, utcnow
from queues.views.user import SignedInUser
from tests.conftest import add_pharmacy
from tests.e2e.test_floor_sign_ins import fail_five_times
from tests.world import PASSWORD, World, make_world

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas
PLACE = "cli@host7"


@dataclass
class Site:
    world: World
    url: str

    def user(self, name: str) -> SignedInUser:
        with self.world.store.sessions() as s:
            return signed_in(s.scalars(select(User).where(User.username == name)).one())

    def locked(self, name: str) -> bool:
        with self.world.store.sessions() as s:
            user = s.scalars(select(User).where(User.username == name)).one()
            return user.locked_until is not None and as_utc(user.locked_until) > utcnow()

    def unlocked_rows(self) -> list[AuditEvent]:
        with self.world.store.sessions() as s:
            query = select(AuditEvent).where(AuditEvent.action == "account_unlocked")
            return list(s.scalars(query.order_by(AuditEvent.id)))


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Site]:
    """TX1 (agents ana, ben; supervisor sue) and OK1 (supervisor olga, admin adam assigned to
    OK1 only); Ana locked by five wrong passwords from PLACE."""
    w = make_world(tmp_path, db_url, NOW, {"Alvarez": 1})
    with transaction(w.store.sessions) as s:
        add_pharmacy(s, "OK1", state="OK")
        add_user(s, "olga", PASSWORD, "supervisor", ["OK1"])
        add_user(s, "adam", PASSWORD, "admin", ["OK1"])
        add_user(s, "sam", PASSWORD, "supervisor", ["TX1"])
    fail_five_times(w, "ana", PLACE, utcnow())
    yield Site(w, db_url)
    w.services.close()


def test_a_supervisor_unlocks_their_agent_audited(site: Site) -> None:
    assert site.locked("ana")
    floor = site.world.services.floor(site.user("sue"))
    done = floor.unlock_account("ana")
    assert (
        done == f"ana is unlocked and can sign in now; sign-ins from {PLACE} are no longer slowed"
    )
    assert not site.locked("ana")
    with site.world.store.sessions() as s:
        ana = s.scalars(select(User).where(User.username == "ana")).one()
        assert ana.failed_sign_ins == 0 and ana.locked_until is None
        assert s.get(SignInSource, PLACE) is None
    [row] = site.unlocked_rows()
    assert row.user_id == site.user("sue").id
    assert row.detail["username"] == "ana" and row.detail["unlocked_user_id"] == site.user("ana").id
    # Ana signs in at once, from the place the failures came from.
    assert site.world.services.accounts.sign_in("ana", PASSWORD).username == "ana"
    with pytest.raises(OutreachError, match=r"^ana's account is not locked$"):
        floor.unlock_account("ana")
    assert len(site.unlocked_rows()) == 1


def test_other_pharmacies_agents_are_refused_in_words(site: Site) -> None:
    olga = site.world.services.floor(site.user("olga"))
    with pytest.raises(NotAllowed) as refused:
        olga.unlock_account("ana")
    assert str(refused.value) == (
        "'ana' is not an agent of your pharmacies (OK1): a supervisor unlocks their own "
        "pharmacies' agents; ask an admin"
    )
    with pytest.raises(NotAllowed) as nobody:  # a name that is no one's reads the same
        olga.unlock_account("nobody")
    assert "'nobody' is not an agent of your pharmacies (OK1)" in str(nobody.value)
    with pytest.raises(NotAllowed, match=r"^sam is a supervisor: only an admin unlocks"):
        site.world.services.floor(site.user("sue")).unlock_account("sam")
    with (
        pytest.raises(NotAllowed, match=r"^ben is an agent; to unlock an account you must be"),
        transaction(site.world.store.sessions) as s,
    ):
        unlock_account(s, site.user("ben"), "ana", utcnow())
    assert site.locked("ana") and site.unlocked_rows() == []


def test_an_admin_unlocks_any_account(site: Site) -> None:
    adam = site.user("adam")  # assigned to OK1 only; Ana works at TX1
    assert site.world.services.floor(adam).unlock_account("ana").startswith("ana is unlocked")
    assert not site.locked("ana")
    assert [r.user_id for r in site.unlocked_rows()] == [adam.id]
    with pytest.raises(OutreachError, match=r"^no user 'nobody'$"):
        site.world.services.floor(adam).unlock_account("nobody")


def test_an_admins_floor_and_report_cover_every_pharmacy(site: Site) -> None:
    """One rule for every door (queues.access.acting_scope): an admin assigned to OK1 only sees
    and reports TX1 too, as `outreach report` lets them; a supervisor stays in their own."""
    adam = site.world.services.floor(site.user("adam"))
    assert adam.user.pharmacy_codes == ("OK1", "TX1")
    assert [p.code for p in adam.snapshot().pharmacies] == ["OK1", "TX1"]
    made = adam.report("TX1", date(2026, 11, 1), date(2026, 12, 1), "csv")
    assert made.filename == "report-TX1-2026-11-01-2026-12-01.csv"
    every = adam.report("all", date(2026, 11, 1), date(2026, 12, 1), "csv")
    with site.world.store.sessions() as s:
        exports = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "export")))
    assert [e.detail["pharmacies"] for e in exports] == [["TX1"], ["OK1", "TX1"]]
    assert every.content
    olga = site.world.services.floor(site.user("olga"))
    assert [p.code for p in olga.snapshot().pharmacies] == ["OK1"]
    with pytest.raises(NotAllowed, match="olga is not assigned to pharmacy TX1"):
        olga.report("TX1", date(2026, 11, 1), date(2026, 12, 1), "csv")


def run_cli(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    user: str | None, *args: str,
) -> tuple[int, str, str]:  # fmt: skip
    if user is None:
        monkeypatch.delenv("OUTREACH_USER", raising=False)
    else:
        monkeypatch.setenv("OUTREACH_USER", user)
    monkeypatch.setenv("OUTREACH_PASSWORD", PASSWORD)
    monkeypatch.delenv("OUTREACH_DATABASE_URL", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    capsys.readouterr()
    rc = main([*args, "--database", site.url])
    out, err = capsys.readouterr()
    return rc, out, err


def test_users_unlock_on_the_command_line(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # var/outreach.log lands in the test's folder
    rc, out, err = run_cli(site, monkeypatch, capsys, None, "users", "unlock", "ana")
    assert (rc, out, err) == (
        1,
        "",
        "outreach: sign in first: give --user NAME (or set OUTREACH_USER)\n",
    )
    rc, out, err = run_cli(site, monkeypatch, capsys, "olga", "users", "unlock", "ana")
    assert (rc, out) == (1, "")
    assert err == (
        "outreach: 'ana' is not an agent of your pharmacies (OK1): a supervisor unlocks their "
        "own pharmacies' agents; ask an admin\n"
    )
    rc, out, err = run_cli(site, monkeypatch, capsys, "ben", "users", "unlock", "ana")
    assert (rc, out) == (1, "")
    assert err == (
        "outreach: ben is an agent; to unlock an account you must be a supervisor or an admin\n"
    )
    assert site.locked("ana")
    rc, out, err = run_cli(site, monkeypatch, capsys, "sue", "users", "unlock", "ana")
    assert (rc, err) == (0, "")
    assert (
        out == f"ana is unlocked and can sign in now; sign-ins from {PLACE} are no longer slowed\n"
    )
    assert not site.locked("ana")
    rc, out, err = run_cli(site, monkeypatch, capsys, "sue", "users", "unlock", "ana")
    assert (rc, out, err) == (1, "", "outreach: ana's account is not locked\n")
    assert [r.user_id for r in site.unlocked_rows()] == [site.user("sue").id]
