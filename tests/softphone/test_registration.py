"""Optional registration with a PBX: digest challenge, registered, unregistered on stop."""

from __future__ import annotations

import queue
from collections.abc import Callable

import pytest

from console.softphone import PhoneEvent, RegistrationEvent, SipAccount, Softphone
from tests.softphone.conftest import SippPeer

pytestmark = pytest.mark.sip


def _registrations(events: queue.SimpleQueue[PhoneEvent]) -> RegistrationEvent:
    while True:
        event = events.get(timeout=20)
        if isinstance(event, RegistrationEvent):
            return event


def test_registers_with_digest_and_unregisters_on_stop(sipp: Callable[..., SippPeer]) -> None:
    peer = sipp("uas_register.xml")
    events: queue.SimpleQueue[PhoneEvent] = queue.SimpleQueue()
    account = SipAccount(
        username="agent7", password="s3cret-pw", registrar=f"127.0.0.1:{peer.port}"
    )
    phone = Softphone(account, events.put)
    phone.start()
    first = _registrations(events)
    assert first.registered and first.detail == "registered for 60 s"
    phone.stop()
    last = _registrations(events)
    assert (last.registered, last.detail) == (False, "unregistered")
    assert peer.wait() == 0, peer.trace()


def test_refused_registration_is_reported_and_does_not_block(
    sipp: Callable[..., SippPeer],
) -> None:
    peer = sipp("uas_register.xml")
    events: queue.SimpleQueue[PhoneEvent] = queue.SimpleQueue()
    account = SipAccount(username="agent7", password="wrong", registrar=f"127.0.0.1:{peer.port}")
    phone = Softphone(account, events.put)
    phone.start()
    try:
        event = _registrations(events)
        assert not event.registered and event.sip_status == 403
    finally:
        phone.stop()
    assert peer.wait() == 0


def test_without_a_registrar_start_returns_at_once_and_sends_nothing() -> None:
    """pyVoIP's start() insisted on a registrar and blocked ~30 s without one."""
    events: queue.SimpleQueue[PhoneEvent] = queue.SimpleQueue()
    phone = Softphone(SipAccount(), events.put)
    phone.start()
    phone.stop(timeout=2)
    assert events.empty()
