"""Sign-in: one generic refusal, and every attempt on record in the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues import auth
from queues.auth import add_user, authenticate
from queues.errors import AuthenticationFailed
from queues.store.db import transaction
from queues.store.models import AuditEvent
from tests.conftest import add_pharmacy

pytestmark = pytest.mark.product_password_cost  # the product's argon2 parameters are checked here


def test_failed_sign_ins_stay_in_the_audit_log_with_one_generic_message(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        add_pharmacy(s, "TX1")
        add_user(s, "ana", "right-password-1", "agent", ["TX1"], None)
    messages = []
    for name, password in (("ana", "wrong"), ("nobody", "wrong")):
        with pytest.raises(AuthenticationFailed) as refused, transaction(sessions) as s:
            authenticate(s, name, password)
        messages.append(str(refused.value))
    assert messages[0] == messages[1]  # no hint whether the user exists
    with transaction(sessions) as s:
        assert authenticate(s, "ana", "right-password-1").username == "ana"
    with sessions() as s:
        events = [
            (e.action, e.detail.get("username"))
            for e in s.scalars(
                select(AuditEvent).where(AuditEvent.action.like("login%")).order_by(AuditEvent.id)
            )
        ]
    # A name that is no user's is not kept: what was typed there may be a password.
    assert events == [("login_failed", "ana"), ("login_failed", None), ("login", None)]


def test_the_hash_a_missing_user_is_checked_against_costs_what_a_real_one_costs() -> None:
    assert not auth._hasher.check_needs_rehash(auth._DUMMY_HASH)
    auth._hasher.verify(auth._DUMMY_HASH, "not-a-real-password")
