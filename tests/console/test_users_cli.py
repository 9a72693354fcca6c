"""Signing in on the command line as a user does: a TOTP enrolment drawn as a QR code, then sign-ins
with the authenticator's codes; five wrong passwords lock the account for 15 minutes, audited.
`outreach` run in this process (tests/cli.py; console/cli/signin.py), on an SQLite file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select, text

from queues.store.db import make_engine, session_factory, upgrade
from queues.store.models import User
from queues.timeutil import as_utc
from tests.cli import cheap_passwords
from tests.console.test_audit_cli import ADMIN_PASSWORD, Site, make_site


@pytest.fixture
def site(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    cheap_passwords(monkeypatch)  # what is tested is TOTP and the lockout, not the hash
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield make_site(sqlite_url, engine, session_factory(engine))
    engine.dispose()


def as_if_the_wait_passed(site: Site) -> None:
    """From the 4th failure in a row from one place each try waits 1, 2, 4 … s (the slowing,
    tested in tests/queues/test_sign_in_guard.py): here the failures' times move back instead."""
    with site.engine.begin() as conn:
        conn.execute(text("UPDATE sign_in_sources SET last_failed_at = '2000-01-01 00:00:00'"))


def test_totp_enrolment_prints_a_qr_code_then_sign_in_needs_a_fresh_code(site: Site) -> None:
    run = site.run("users", "totp", "ada")
    assert run.returncode == 0, run.stderr
    assert "Scan this with ada's authenticator app" in run.stdout
    qr_lines = [
        ln for ln in run.stdout.splitlines() if set(ln.strip()) <= set("█▀▄ \xa0") and ln.strip()
    ]
    assert len(qr_lines) >= 10  # the QR code itself, drawn in block characters
    uri = re.search(r"otpauth://totp/\S+", run.stdout)
    assert uri is not None
    totp = pyotp.parse_uri(uri.group(0))
    assert isinstance(totp, pyotp.TOTP)
    assert [e.detail["username"] for e in site.audit_rows("totp_enrolled")] == ["ada"]

    no_code = site.run("audit", "verify")
    assert no_code.returncode == 1 and "give --code DIGITS" in no_code.stderr
    code = totp.now()
    assert site.run("audit", "verify", "--code", code).returncode == 0
    again = site.run("audit", "verify", "--code", code)  # each code is good once
    assert again.returncode == 1 and "check the code from your authenticator app" in again.stderr
    as_if_the_wait_passed(site)
    wrong = totp.at(datetime.now(UTC) + timedelta(minutes=10))
    run = site.run("audit", "verify", OUTREACH_TOTP=wrong)
    assert run.returncode == 1 and "check the code" in run.stderr
    assert len(site.audit_rows("audit_verified")) == 1

    # The next step's code (one step of drift is allowed) signs in for the removal.
    as_if_the_wait_passed(site)
    following = totp.at(datetime.now(UTC) + timedelta(seconds=30))
    removed = site.run("users", "totp", "ada", "--remove", "--code", following)
    assert removed.returncode == 0, removed.stderr
    assert "ada signs in with a password only now" in removed.stdout
    assert site.run("audit", "verify").returncode == 0


def test_five_wrong_passwords_lock_the_account_for_15_minutes(site: Site) -> None:
    for _ in range(5):
        as_if_the_wait_passed(site)
        run = site.run("audit", "verify", password="not-the-password")
        assert run.returncode == 1 and "Sign-in failed" in run.stderr, run.stderr
    as_if_the_wait_passed(site)
    started = datetime.now(UTC)
    refused = site.run("audit", "verify")  # the right password
    assert refused.returncode == 1
    assert "Sign-in failed: check your user name and password" in refused.stderr
    with site.sessions() as s:
        ada = s.scalars(select(User).where(User.username == "ada")).one()
        assert ada.locked_until is not None
        left = as_utc(ada.locked_until) - started
        assert timedelta(minutes=14) < left <= timedelta(minutes=15)
    [locked] = site.audit_rows("account_locked")
    assert locked.user_id == site.admin_id and locked.detail["source"].startswith("cli@")
    failed = site.audit_rows("login_failed")
    assert len(failed) == 6 and all(e.user_id == site.admin_id for e in failed)
    assert failed[-1].detail.get("locked") is True
    assert site.audit_rows("audit_verified") == []

    with site.engine.begin() as conn:  # 15 minutes later
        conn.execute(text("UPDATE users SET locked_until = '2000-01-01 00:00:00'"))
    as_if_the_wait_passed(site)
    assert site.run("audit", "verify").returncode == 0


def test_a_wrong_user_name_is_not_stored(site: Site) -> None:
    run = site.run("audit", "verify", user=ADMIN_PASSWORD)  # a password typed as the name
    assert run.returncode == 1 and "Sign-in failed" in run.stderr
    [failed] = site.audit_rows("login_failed")
    assert failed.user_id is None and ADMIN_PASSWORD not in str(failed.detail)
