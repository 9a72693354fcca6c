"""Every way a call ends, against sipp playing the patient's phone on loopback.

sipp's exit status (0) is the far end's verdict on our dialog: a missing or wrong ACK, CANCEL or
BYE makes it 1. Each test names the pyVoIP 1.6.8 defect it guards against where there is one.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
from collections.abc import Callable

import pytest

from console.softphone import (
    CallEvent,
    CallState,
    DialPermit,
    DtmfEvent,
    EndReason,
    SipAccount,
    SipTimers,
)
from tests.softphone.conftest import Phone, SippPeer, header, permit

pytestmark = pytest.mark.sip

AGENT7 = SipAccount(username="agent7", password="s3cret-pw")

StartPeer = Callable[..., SippPeer]
MakePhone = Callable[..., Phone]


def answered(
    sipp: StartPeer,
    make_phone: MakePhone,
    scenario: str = "uas_answer.xml",
    *extra: str,
    account: SipAccount | None = None,
) -> tuple[SippPeer, Phone, CallEvent]:
    """sipp answering as `scenario` and echoing our RTP back, dialled and connected."""
    peer = sipp(scenario, "-rtp_echo", *extra)
    p = make_phone(account)
    p.phone.dial(permit(peer.uri))
    return peer, p, p.wait_for(CallState.CONNECTED)


def hang_up_completed(p: Phone, peer: SippPeer) -> None:
    """We hang up: the call ends completed and sipp found the whole dialog right."""
    p.phone.hangup()
    assert p.wait_for(CallState.ENDED).reason == EndReason.COMPLETED
    assert peer.wait() == 0, peer.trace()


def test_answered_call_carries_caller_id_and_ends_completed(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    peer = sipp("uas_answer.xml", "-rtp_echo")
    p = make_phone()
    p.phone.dial(permit(peer.uri))
    assert p.wait_for(CallState.RINGING).sip_status == 180
    connected = p.wait_for(CallState.CONNECTED)
    assert connected.setup_ms is not None and connected.setup_ms > 150  # the peer rings 200 ms
    p.phone.hangup()
    ended = p.wait_for(CallState.ENDED)
    assert ended.reason == EndReason.COMPLETED
    assert ended.hangup_ms is not None
    assert p.states() == ["dialing", "ringing", "connected", "ended"]
    assert peer.wait() == 0, peer.trace()
    invite = peer.received("INVITE")[0]
    assert header(invite, "From").startswith('"Main St Pharmacy" <sip:+12145550100@127.0.0.1')
    assert "+12145550100" in header(invite, "P-Asserted-Identity")
    # pyVoIP put a fresh random To tag on its ACK, so peers dropped the call after ~32 s.
    ack, ok = peer.received("ACK")[0], peer.sent(200)[0]
    assert header(ack, "To") == header(ok, "To")


def test_far_end_hangs_up_and_nothing_reaches_the_terminal(
    sipp: StartPeer, make_phone: MakePhone, capfd: pytest.CaptureFixture[str]
) -> None:
    """pyVoIP printed to stdout, which draws over the TUI."""
    peer, p, _ = answered(sipp, make_phone, "uas_remote_bye.xml", "-d", "500")
    ended = p.wait_for(CallState.ENDED)
    assert ended.reason == EndReason.REMOTE_HANGUP
    assert peer.wait() == 0, peer.trace()
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("scenario", "status", "reason", "disposition"),
    [
        ("uas_reject_486.xml", 486, EndReason.BUSY, "busy"),
        ("uas_reject_603.xml", 603, EndReason.DECLINED, "refused"),
        ("uas_reject_480.xml", 480, EndReason.UNAVAILABLE, "no_answer"),
        ("uas_reject_404.xml", 404, EndReason.NOT_FOUND, "wrong_number"),
        ("uas_reject_503.xml", 503, EndReason.FAILED, None),
    ],
)
def test_refused_call_ends_with_its_reason_and_is_acked(
    sipp: StartPeer,
    make_phone: MakePhone,
    scenario: str,
    status: int,
    reason: EndReason,
    disposition: str | None,
) -> None:
    """pyVoIP left the call in DIALING after 486/603/480 and never sent their ACK."""
    peer = sipp(scenario)
    p = make_phone()
    p.phone.dial(permit(peer.uri))
    ended = p.wait_for(CallState.ENDED)
    assert (ended.reason, ended.sip_status) == (reason, status)
    assert ended.suggested_disposition == disposition
    assert peer.wait() == 0, peer.trace()


def test_ringing_call_is_cancelled_at_the_dial_timeout(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    """pyVoIP could not cancel a ringing call. The CANCEL and the ACK of the 487 must be right."""
    peer = sipp("uas_ring_no_answer.xml")
    p = make_phone()
    p.phone.dial(permit(peer.uri), ring_timeout=1.0)
    p.wait_for(CallState.RINGING)
    ended = p.wait_for(CallState.ENDED)
    assert (ended.reason, ended.sip_status) == (EndReason.NO_ANSWER, 487)
    assert ended.suggested_disposition == "no_answer"
    assert peer.wait() == 0, peer.trace()


def test_agent_hangs_up_while_ringing(sipp: StartPeer, make_phone: MakePhone) -> None:
    peer = sipp("uas_ring_no_answer.xml")
    p = make_phone()
    p.phone.dial(permit(peer.uri))
    p.wait_for(CallState.RINGING)
    p.phone.hangup()
    ended = p.wait_for(CallState.ENDED)
    assert ended.reason == EndReason.CANCELLED
    assert peer.wait() == 0, peer.trace()


def test_dtmf_keys_reach_the_far_end_as_telephone_events(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    """sipp echoes our RTP back (-rtp_echo): what we hear back is what reached the peer."""
    peer, p, _ = answered(sipp, make_phone)
    p.phone.dtmf("159*#0")
    ended = _hangup_once_heard(p, "159*#0")
    assert ended.dtmf_sent == "159*#0"
    assert ended.dtmf_received == "159*#0"
    assert peer.wait() == 0, peer.trace()


def _hangup_once_heard(p: Phone, digits: str) -> CallEvent:
    while True:
        event = p.events.get(timeout=20)
        p.seen.append(event)
        if isinstance(event, DtmfEvent) and event.received == digits:
            p.phone.hangup()
        if isinstance(event, CallEvent) and event.state == CallState.ENDED:
            return event


def test_digest_401_with_qop_is_verified_by_the_peer(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    peer, p, _ = answered(sipp, make_phone, "uas_auth_401.xml", account=AGENT7)
    hang_up_completed(p, peer)
    assert "qop=auth" in header(peer.received("INVITE")[1], "Authorization")


def test_wrong_password_ends_the_call_as_failed(sipp: StartPeer, make_phone: MakePhone) -> None:
    peer = sipp("uas_auth_401.xml")
    p = make_phone(SipAccount(username="agent7", password="not-it"))
    p.phone.dial(permit(peer.uri))
    ended = p.wait_for(CallState.ENDED)
    assert (ended.reason, ended.sip_status) == (EndReason.FAILED, 403)
    assert peer.wait() == 0, peer.trace()


def test_digest_407_from_a_proxy_is_answered_with_proxy_authorization(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    """pyVoIP 1.6.8 had no 407 handling. sipp cannot verify Proxy-Authorization: we do (RFC 2617)."""
    peer, p, _ = answered(sipp, make_phone, "uas_auth_407.xml", account=AGENT7)
    hang_up_completed(p, peer)
    auth = header(peer.received("INVITE")[1], "Proxy-Authorization")
    f = dict(re.findall(r'(\w+)="?([^",]+)"?', auth))

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2 = md5(f"agent7:{f['realm']}:s3cret-pw"), md5(f"INVITE:{f['uri']}")
    expected = md5(f"{ha1}:{f['nonce']}:{f['nc']}:{f['cnonce']}:{f['qop']}:{ha2}")
    assert (f["response"], f["qop"], f["opaque"]) == (expected, "auth", "op4que")


def test_peer_that_never_answers_times_out_with_timer_b(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    """pyVoIP blocked forever on an unanswered INVITE (no Timer B). T1 = 30 ms: B = 1.92 s."""
    peer = sipp("uas_silent.xml")
    p = make_phone(timers=SipTimers(t1=0.03))
    p.phone.dial(permit(peer.uri), ring_timeout=60)
    ended = p.wait_for(CallState.ENDED)
    assert (ended.reason, ended.sip_status) == (EndReason.TIMEOUT, None)
    assert peer.wait() == 0, peer.trace()
    assert len(peer.received("INVITE")) >= 4  # Timer A retransmissions


def test_dial_timeout_before_any_response_reports_timeout(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    peer = sipp("uas_silent.xml")
    p = make_phone()
    p.phone.dial(permit(peer.uri), ring_timeout=1.0)
    ended = p.wait_for(CallState.ENDED)
    assert ended.reason == EndReason.TIMEOUT
    assert peer.wait() == 0, peer.trace()


def test_answer_without_provisional_responses_through_a_record_route(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    """The scenario checks that our ACK and BYE carry the Route the 200 asked for."""
    peer, p, connected = answered(sipp, make_phone, "uas_answer_no_provisional.xml")
    assert "ringing" not in p.states()
    assert connected.setup_ms is not None
    hang_up_completed(p, peer)


def test_unreachable_server_is_a_network_error_at_once(make_phone: MakePhone) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = make_phone()
    p.phone.dial(permit(f"sip:patient@127.0.0.1:{port}"), ring_timeout=30)
    ended = p.wait_for(CallState.ENDED, timeout=5)
    assert ended.reason == EndReason.NETWORK_ERROR


def test_an_expired_permit_sends_no_invite_and_ends_blocked(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    """The calling window closed between the check and the dial: nothing leaves the softphone."""
    peer = sipp("uas_answer.xml", "-rtp_echo")
    p = make_phone()
    expired = DialPermit(peer.uri, "+12145550100", "Main St Pharmacy", time.monotonic() - 0.001)
    assert not expired.valid()
    p.phone.dial(expired)
    ended = p.wait_for(CallState.ENDED)
    assert (ended.reason, ended.sip_status) == (EndReason.BLOCKED, None)
    assert "calling window closed" in ended.detail
    assert p.states() == ["ended"]  # never dialing: no INVITE was sent
    # Nothing reached the peer: the next call, under a valid permit, is the scenario's only one.
    p.phone.dial(permit(peer.uri))
    p.wait_for(CallState.CONNECTED)
    hang_up_completed(p, peer)
    assert len(peer.received("INVITE")) == 1


def test_a_permit_is_valid_until_its_monotonic_deadline() -> None:
    p = DialPermit("2145550134", None, None, expires_at=100.0)
    assert p.valid(now=99.999)
    assert not p.valid(now=100.0)
    assert DialPermit.for_seconds("2145550134", 30).valid()


def test_second_dial_during_a_call_is_refused(sipp: StartPeer, make_phone: MakePhone) -> None:
    peer = sipp("uas_answer.xml", "-rtp_echo")
    p = make_phone()
    first = p.phone.dial(permit(peer.uri))
    p.wait_for(CallState.CONNECTED)
    second = p.phone.dial(permit(peer.uri))
    refused = p.next_call_event()
    assert (refused.call, refused.reason) == (second, EndReason.FAILED)
    p.phone.hangup()
    ended = p.wait_for(CallState.ENDED)
    assert (ended.call, ended.reason) == (first, EndReason.COMPLETED)
    assert peer.wait() == 0, peer.trace()
