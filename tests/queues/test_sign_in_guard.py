"""Sign-in under attack: 5 failures lock an account for 15 minutes; a place that keeps failing is
slowed; TOTP as a second factor, each code good once; a failed user name is stored only if that
user exists; supervisors see it all. And a console's presence: silent for a lease, offline; locked
past the grace, its patient goes back. (SQLite and PostgreSQL.)"""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.auth import (
    LOCK_AFTER,
    add_user,
    authenticate,
    enroll_totp,
    sign_in_alerts,
)
from queues.errors import (
    AuthenticationFailed,
    NotAllowed,
    SecondFactorRequired,
    SignInSlowed,
)
from queues.floor import agents
from queues.store.db import transaction
from queues.store.models import AgentState, AuditEvent, QueueEntry, User
from tests.conftest import NOW, add_pharmacy, add_queue

RIGHT = "right-password-1"


@pytest.fixture
def ana(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as s:
        add_pharmacy(s, "TX1")
        return add_user(s, "ana", RIGHT, "agent", ["TX1"]).id


def attempt(
    sessions: sessionmaker[Session],
    name: str,
    password: str,
    *,
    source: str = "console@a",
    minutes: float = 0,
    code: str | None = None,
    totp_roles: tuple[str, ...] = (),
) -> str:
    try:
        with transaction(sessions) as s:
            authenticate(
                s,
                name,
                password,
                source=source,
                now=NOW + timedelta(minutes=minutes),
                code=code,
                totp_roles=totp_roles,
            )
    except (AuthenticationFailed, SignInSlowed, SecondFactorRequired, NotAllowed) as exc:
        return type(exc).__name__
    return "ok"


def events(sessions: sessionmaker[Session]) -> list[tuple[str, int | None, dict[str, object]]]:
    with sessions() as s:
        return [
            (e.action, e.user_id, e.detail)
            for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        ]


def test_five_failures_lock_the_account_for_fifteen_minutes(
    sessions: sessionmaker[Session], ana: int
) -> None:
    # From five places, so the slowing per place does not come first.
    for k in range(LOCK_AFTER):
        assert attempt(sessions, "ana", "wrong", source=f"place-{k}") == "AuthenticationFailed"
    # Locked: the right password is refused too, with the very same words.
    assert attempt(sessions, "ana", RIGHT, source="place-9", minutes=1) == "AuthenticationFailed"
    assert attempt(sessions, "ana", RIGHT, source="place-9", minutes=14.9) == "AuthenticationFailed"
    with sessions() as s:
        alerts = sign_in_alerts(s, NOW + timedelta(minutes=5))
    assert [(a.username, a.until) for a in alerts.locked] == [("ana", NOW + timedelta(minutes=15))]
    assert attempt(sessions, "ana", RIGHT, source="place-9", minutes=15.1) == "ok"
    actions = [a for a, _, _ in events(sessions)]
    assert actions.count("account_locked") == 1
    assert actions[-1] == "login"
    locked = next(d for a, _, d in events(sessions) if a == "account_locked")
    assert locked["username"] == "ana"


def test_a_place_that_keeps_failing_waits_longer_each_time(
    sessions: sessionmaker[Session], ana: int
) -> None:
    for _ in range(3):
        assert attempt(sessions, "nobody", "guess") == "AuthenticationFailed"
    # The 4th try from there within a second is not even checked.
    assert attempt(sessions, "ana", RIGHT, minutes=0.01) == "SignInSlowed"
    assert attempt(sessions, "ana", RIGHT, source="console@b", minutes=0.01) == "ok"
    assert attempt(sessions, "nobody", "guess", minutes=1 / 60 + 0.001) == "AuthenticationFailed"
    assert attempt(sessions, "nobody", "guess", minutes=0.04) == "SignInSlowed"  # now 2 s
    with sessions() as s:
        slowed = sign_in_alerts(s, NOW).slowed
    assert [(p.source, p.failures) for p in slowed] == [("console@a", 4)]
    # A success from the place clears it.
    assert attempt(sessions, "ana", RIGHT, minutes=1) == "ok"
    with sessions() as s:
        assert sign_in_alerts(s, NOW).slowed == ()


def test_a_failed_user_name_is_kept_only_when_that_user_exists(
    sessions: sessionmaker[Session], ana: int
) -> None:
    attempt(sessions, "ana", "wrong")
    attempt(sessions, "hunter2-typed-as-a-name", "x", source="console@b")
    failed = [(u, d) for a, u, d in events(sessions) if a == "login_failed"]
    assert failed[0] == (ana, {"source": "console@a", "username": "ana"})
    assert failed[1] == (None, {"source": "console@b"})
    assert "hunter2" not in repr(events(sessions))


def test_totp_is_asked_after_the_password_and_each_code_is_good_once(
    sessions: sessionmaker[Session], ana: int
) -> None:
    assert attempt(sessions, "ana", RIGHT, totp_roles=("agent",)) == "NotAllowed"
    with transaction(sessions) as s:
        uri = enroll_totp(s, "ana")
    secret = pyotp.parse_uri(uri).secret
    code = pyotp.TOTP(secret).at(NOW)
    assert attempt(sessions, "ana", RIGHT) == "SecondFactorRequired"
    assert attempt(sessions, "ana", "wrong", code=code) == "AuthenticationFailed"
    assert attempt(sessions, "ana", RIGHT, code="000000" if code != "000000" else "111111") == (
        "AuthenticationFailed"
    )
    assert attempt(sessions, "ana", RIGHT, code=code, source="console@b") == "ok"
    assert attempt(sessions, "ana", RIGHT, code=code, source="console@c") == "AuthenticationFailed"
    later = pyotp.TOTP(secret).at(NOW + timedelta(seconds=60))
    assert attempt(sessions, "ana", RIGHT, code=later, minutes=1, source="console@c") == "ok"
    failures = [d for a, _, d in events(sessions) if a == "login_failed"]
    assert sum(1 for d in failures if d.get("second_factor")) == 2


def test_a_silent_console_shows_its_agent_offline_within_a_lease(
    sessions: sessionmaker[Session], ana: int
) -> None:
    with transaction(sessions) as s:
        ben = add_user(s, "ben", RIGHT, "agent", ["TX1"]).id
        agents.set_state(s, ana, "ready", NOW)
        agents.set_state(s, ben, "on_call", NOW)
        agents.present(s, ana, NOW, 300)
        agents.present(s, ben, NOW, 300)
    # Ben's console is killed; Ana's keeps beating.
    with transaction(sessions) as s:
        assert agents.present(s, ana, NOW + timedelta(seconds=200), 300) == 0
    with transaction(sessions) as s:
        assert agents.present(s, ana, NOW + timedelta(seconds=301), 300) == 1
    with sessions() as s:
        states = {u: st for u, st in s.execute(select(AgentState.user_id, AgentState.state))}
    assert states == {ana: "ready", ben: "offline"}
    assert ("agent_offline_silent", ben, {}) in events(sessions)


def test_locked_past_the_grace_the_patient_goes_back(
    sessions: sessionmaker[Session], ana: int
) -> None:
    from queues.claims.claiming import claim_next

    with transaction(sessions) as s:
        pharmacy = s.scalar(select(User).where(User.id == ana)).pharmacies[0].id  # type: ignore[union-attr]
        add_queue(s, pharmacy, 2)
    with transaction(sessions) as s:
        claim = claim_next(s, user_id=ana, pharmacy_ids=[pharmacy], now=NOW, lease_seconds=300)
    assert claim is not None
    with transaction(sessions) as s:
        assert agents.release_on_lock(s, ana, NOW + timedelta(minutes=4)) == claim.patient_id
    with sessions() as s:
        entry = s.get(QueueEntry, claim.patient_id)
        assert entry is not None and entry.holder_id is None and entry.claimed_at is None
    with transaction(sessions) as s:
        assert agents.release_on_lock(s, ana, NOW + timedelta(minutes=6)) is None
    assert ("release_on_lock", ana, {}) in [(a, u, d) for a, u, d in events(sessions)]
