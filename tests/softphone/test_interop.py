"""Interop: the softphone against Kamailio 5.6 (registrar and proxy: digest with qop=auth, 423 for
a short expiry, a TLS listener, the From user checked against the digest user) and baresip 1.0
(registered with Kamailio as bob, answering at once, SRTP mandatory), all on loopback.

The table in console/softphone/README.md says what each test showed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.softphone import CallState, DtmfEvent, EndReason, RegistrationEvent, SipAccount
from tests.conftest import require_service
from tests.softphone.conftest import Certs, Phone, SippPeer, permit
from tests.softphone.peers import (
    PASSWORD,
    Baresip,
    Kamailio,
    baresip_available,
    kamailio_available,
    start_baresip,
    start_kamailio,
)

pytestmark = pytest.mark.sip

MakePhone = Callable[..., Phone]
StartPeer = Callable[..., SippPeer]


@pytest.fixture
def kamailio(tmp_path: Path, certs: Certs) -> Iterator[Callable[..., Kamailio]]:
    require_service(
        "kamailio", kamailio_available(), "apt-get install -y kamailio kamailio-tls-modules"
    )
    started: list[Kamailio] = []

    def start(min_expires: int = 60) -> Kamailio:
        peer = start_kamailio(
            tmp_path / f"kamailio{len(started)}", certs.cert, certs.key, min_expires=min_expires
        )
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[Callable[..., Baresip]]:
    require_service("baresip", baresip_available(), "apt-get install -y baresip")
    started: list[Baresip] = []

    def start(registrar_port: int, srtp: str = "srtp-mand") -> Baresip:
        peer = start_baresip(tmp_path / f"baresip{len(started)}", registrar_port, srtp=srtp)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


def agent(k: Kamailio, **kw: object) -> SipAccount:
    """agent7's account on Kamailio: outbound proxy and registrar."""
    values: dict[str, object] = {
        "server": "127.0.0.1",
        "port": k.udp_port,
        "username": "agent7",
        "password": PASSWORD,
        "caller_id": "+12145550100",
        "display_name": "Main St Pharmacy",
    }
    values.update(kw)
    return SipAccount(**values)  # type: ignore[arg-type]


def registration(p: Phone) -> RegistrationEvent:
    while True:
        event = p.events.get(timeout=20)
        p.seen.append(event)
        if isinstance(event, RegistrationEvent):
            return event


def wait_registered(b: Baresip) -> None:
    """baresip prints "200 OK … [1 binding]" once Kamailio took its REGISTER."""
    import time

    deadline = time.monotonic() + 15
    while "binding]" not in b.output():
        if time.monotonic() > deadline or b.proc.poll() is not None:
            raise AssertionError(f"baresip did not register:\n{b.output()[-2000:]}")
        time.sleep(0.05)  # polling another process's log: there is no event to wait on


def test_registers_with_kamailio_digest_and_qop(
    kamailio: Callable[..., Kamailio], make_phone: MakePhone
) -> None:
    k = kamailio()
    p = make_phone(agent(k, registrar=f"127.0.0.1:{k.udp_port}"))
    event = registration(p)
    assert event.registered, (event.detail, k.output()[-2000:])


def test_kamailio_min_expires_423_is_answered_with_min_expires(
    kamailio: Callable[..., Kamailio], make_phone: MakePhone
) -> None:
    k = kamailio(min_expires=900)
    p = make_phone(agent(k, registrar=f"127.0.0.1:{k.udp_port}", register_expires=300))
    event = registration(p)
    assert event.registered, event.detail
    assert "900" in event.detail


def test_call_to_baresip_through_kamailio_with_srtp_dtmf_and_hold(
    kamailio: Callable[..., Kamailio],
    baresip: Callable[..., Baresip],
    make_phone: MakePhone,
) -> None:
    k = kamailio()
    b = baresip(k.udp_port)
    wait_registered(b)
    p = make_phone(agent(k, srtp="required"))
    p.phone.dial(permit(f"sip:bob@127.0.0.1:{k.udp_port}"))
    connected = p.wait_for(CallState.CONNECTED)
    assert connected.srtp, b.output()[-2000:]
    p.phone.dtmf("12#")
    while True:
        event = p.events.get(timeout=20)
        if isinstance(event, DtmfEvent) and event.sent == "12#":
            break
    p.phone.hold(True)
    assert p.wait_for(CallState.ON_HOLD).hold == "local"
    p.phone.hold(False)
    assert p.wait_for(CallState.CONNECTED).detail == "resumed"
    p.phone.hangup()
    ended = p.wait_for(CallState.ENDED)
    assert ended.reason == EndReason.COMPLETED
    # baresip's SRTP audio (a 440 Hz sine) authenticated and decrypted with its SDES key.
    assert ended.rtp_received > 20, b.output()[-2000:]
    assert ended.rtp_sent > 20
    assert ended.rtcp_received >= 1 or ended.rtcp_sent >= 1


def test_call_over_tls_to_kamailio_with_the_certificate_verified(
    kamailio: Callable[..., Kamailio],
    baresip: Callable[..., Baresip],
    make_phone: MakePhone,
    certs: Certs,
) -> None:
    k = kamailio()
    b = baresip(k.udp_port)
    wait_registered(b)
    account = agent(k, port=k.tls_port, transport="tls", tls_ca_file=str(certs.ca), srtp="required")
    p = make_phone(account)
    p.phone.dial(permit(f"sips:bob@127.0.0.1:{k.tls_port}"))
    connected = p.wait_for(CallState.CONNECTED)
    assert (connected.transport, connected.srtp) == ("tls", True)
    p.phone.hangup()
    assert p.wait_for(CallState.ENDED).reason == EndReason.COMPLETED


def test_tls_to_kamailio_with_an_untrusted_certificate_is_a_line_failure(
    kamailio: Callable[..., Kamailio], make_phone: MakePhone, certs: Certs
) -> None:
    k = kamailio()
    account = agent(k, port=k.tls_port, transport="tls", tls_ca_file=str(certs.other_ca))
    p = make_phone(account)
    p.phone.dial(permit(f"sips:bob@127.0.0.1:{k.tls_port}"))
    ended = p.wait_for(CallState.ENDED)
    assert ended.reason == EndReason.NETWORK_ERROR and ended.technical
    assert "not trusted" in ended.detail


def test_call_over_tcp_to_kamailio(
    kamailio: Callable[..., Kamailio], baresip: Callable[..., Baresip], make_phone: MakePhone
) -> None:
    k = kamailio()
    b = baresip(k.udp_port, srtp="")
    wait_registered(b)
    p = make_phone(agent(k, transport="tcp"))
    p.phone.dial(permit(f"sip:bob@127.0.0.1:{k.udp_port}"))
    connected = p.wait_for(CallState.CONNECTED)
    assert (connected.transport, connected.srtp) == ("tcp", False)
    p.phone.hangup()
    assert p.wait_for(CallState.ENDED).reason == EndReason.COMPLETED


def test_caller_id_in_from_is_challenged_again_by_a_stock_proxy(
    kamailio: Callable[..., Kamailio], make_phone: MakePhone
) -> None:
    """Why From stays the account's user: Kamailio refuses a From user that is not the digest
    user, so presenting the pharmacy's number there fails the call (a line failure)."""
    k = kamailio()
    p = make_phone(agent(k, caller_id_mode="from-user"))
    p.phone.dial(permit(f"sip:bob@127.0.0.1:{k.udp_port}"))
    ended = p.wait_for(CallState.ENDED)
    assert ended.sip_status == 407 and ended.technical


@pytest.mark.parametrize(
    ("scenario", "reason", "technical"),
    [
        ("uas_reject_486.xml", EndReason.BUSY, False),
        ("uas_reject_603.xml", EndReason.DECLINED, False),
        ("uas_reject_480.xml", EndReason.UNAVAILABLE, False),
        ("uas_reject_404.xml", EndReason.NOT_FOUND, False),
        ("uas_reject_503.xml", EndReason.FAILED, True),
        ("uas_silent.xml", EndReason.UNAVAILABLE, True),  # Kamailio's own 408 after fr_timer
        ("uas_remote_bye_proxied.xml", EndReason.REMOTE_HANGUP, False),
    ],
)
def test_every_end_reason_through_kamailio(
    kamailio: Callable[..., Kamailio],
    sipp: StartPeer,
    make_phone: MakePhone,
    scenario: str,
    reason: EndReason,
    technical: bool,
) -> None:
    k = kamailio()
    extra = ("-rtp_echo",) if scenario == "uas_remote_bye_proxied.xml" else ()
    peer = sipp(scenario, *extra)
    p = make_phone(agent(k))
    p.phone.dial(permit(peer.uri))
    ended = p.wait_for(CallState.ENDED, timeout=30)
    assert (ended.reason, ended.technical) == (reason, technical), ended
    if scenario == "uas_silent.xml":
        assert ended.sip_status == 408
