"""Trunks in the field (issue 21), against sipp on loopback: hold by re-INVITE and by UPDATE, 423,
early media, 408 and 5xx as line failures, caller ID per account, TCP, SDES-keyed SRTP
negotiation, RTCP reports and loss counts (TLS and SRTP media: test_interop.py).

sipp's exit status (0) is the far end's verdict: its scenarios check what we answer (a sendonly
offer must get recvonly, the second REGISTER must ask for Min-Expires, the INVITE must offer SRTP).
"""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Callable

import pytest

from console.softphone import CallState, EndReason, RegistrationEvent, SipAccount, Softphone
from console.softphone.events import CallEvent, PhoneEvent
from console.softphone.rtp import AudioPort
from tests.softphone.conftest import Phone, SippPeer, header, permit
from tests.softphone.ports import free_udp_port

pytestmark = pytest.mark.sip

StartPeer = Callable[..., SippPeer]
MakePhone = Callable[..., Phone]
PHARMACY = SipAccount(caller_id="+12145550100", display_name="Main St Pharmacy")


def origin(sdp_text: str) -> tuple[str, int]:
    m = re.search(r"^o=\S+ (\d+) (\d+) ", sdp_text, flags=re.M)
    assert m is not None, sdp_text
    return m[1], int(m[2])


@pytest.mark.parametrize("scenario", ["uas_hold_reinvite.xml", "uas_hold_update.xml"])
def test_hold_and_resume_are_answered_per_rfc_3264_and_reported(
    sipp: StartPeer, make_phone: MakePhone, scenario: str
) -> None:
    peer = sipp(scenario, "-rtp_echo")
    p = make_phone()
    p.phone.dial(permit(peer.uri))
    p.wait_for(CallState.CONNECTED)
    held = p.wait_for(CallState.ON_HOLD)
    assert held.hold == "remote"
    resumed = p.wait_for(CallState.CONNECTED)
    assert (resumed.hold, resumed.detail) == ("", "resumed")
    p.phone.hangup()
    assert p.wait_for(CallState.ENDED).reason == EndReason.COMPLETED
    assert peer.wait() == 0, peer.trace()
    offer = peer.received("INVITE")[0]
    answers = [m for m in _received_2xx(peer) if "m=audio" in m]
    assert len(answers) == 2
    session, version = origin(offer)
    assert origin(answers[0]) == (session, version + 1)  # same session, changed: version + 1
    assert "a=recvonly" in answers[0]
    assert origin(answers[1]) == (session, version + 2)
    assert "a=sendrecv" in answers[1]


def _received_2xx(peer: SippPeer) -> list[str]:
    found = []
    for block in re.split(r"^-{40,} .*$", peer.trace(), flags=re.M):
        head, _, text = block.strip("\n").partition("\n")
        if "message received" in head and text.strip().startswith("SIP/2.0 200 "):
            found.append(text.strip())
    return found


def test_agent_holds_and_resumes_with_sendonly_then_sendrecv(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    peer = sipp("uas_answer_hold.xml", "-rtp_echo")
    p = make_phone()
    p.phone.dial(permit(peer.uri))
    p.wait_for(CallState.CONNECTED)
    p.phone.hold(True)
    assert p.wait_for(CallState.ON_HOLD).hold == "local"
    p.phone.hold(False)
    assert p.wait_for(CallState.CONNECTED).detail == "resumed"
    p.phone.hangup()
    assert p.wait_for(CallState.ENDED).reason == EndReason.COMPLETED
    assert peer.wait() == 0, peer.trace()  # sipp checked sendonly, then sendrecv
    first, hold, resume = peer.received("INVITE")
    assert origin(hold) == (origin(first)[0], origin(first)[1] + 1)
    assert origin(resume) == (origin(first)[0], origin(first)[1] + 2)


def test_registrar_that_wants_a_longer_expiry_gets_min_expires(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    peer = sipp("uas_register_423.xml")
    p = make_phone(SipAccount(username="agent7", registrar=f"127.0.0.1:{peer.port}"))
    while True:
        event = p.events.get(timeout=20)
        if isinstance(event, RegistrationEvent):
            break
    assert event.registered, event.detail
    assert "3600" in event.detail
    p.phone.stop()
    assert peer.wait() == 0, peer.trace()
    asked = [header(r, "Expires") for r in peer.received("REGISTER")]
    assert asked == ["300", "3600", "0"]


class Recorder:
    """A sound device that keeps what it is asked to play (frames of 16-bit PCM)."""

    def __init__(self) -> None:
        self.played: list[bytes] = []

    def read_frame(self) -> bytes | None:
        return None

    def write_frame(self, pcm: bytes) -> None:
        self.played.append(pcm)


def test_early_media_is_played_while_ringing(sipp: StartPeer) -> None:
    import queue

    peer = sipp("uas_early_media.xml")
    recorder = Recorder()
    events: queue.SimpleQueue[PhoneEvent] = queue.SimpleQueue()

    def opener(wanted: bool) -> tuple[AudioPort | None, str]:
        return recorder, "on"

    phone = Softphone(PHARMACY, events.put, open_audio_device=opener)
    phone.start()
    try:
        p = Phone(phone, events)
        phone.dial(permit(peer.uri))
        ringing = p.wait_for(CallState.RINGING)
        assert (ringing.sip_status, ringing.early_media) == (183, True)
        connected = p.wait_for(CallState.CONNECTED)
        # Played before the answer: the announcement reached the agent's ear while it rang.
        assert connected.rtp_received > 10
        assert len(recorder.played) >= connected.rtp_received - 1
        assert connected.rtp_sent <= 3  # we sent nothing while it was early media
        phone.hangup()
        p.wait_for(CallState.ENDED)
        assert peer.wait() == 0, peer.trace()
    finally:
        phone.stop()


@pytest.mark.parametrize(
    ("scenario", "status", "reason", "result"),
    [
        ("uas_reject_408.xml", 408, EndReason.UNAVAILABLE, "unavailable"),
        ("uas_reject_503.xml", 503, EndReason.FAILED, "failed"),
    ],
)
def test_408_and_503_from_the_trunk_are_line_failures_not_patient_outcomes(
    sipp: StartPeer,
    make_phone: MakePhone,
    scenario: str,
    status: int,
    reason: EndReason,
    result: str,
) -> None:
    from console.softphone.events import cli_result

    peer = sipp(scenario)
    p = make_phone()
    p.phone.dial(permit(peer.uri))
    ended = p.wait_for(CallState.ENDED)
    assert ended.reason is not None
    assert (ended.reason, ended.sip_status, cli_result(ended.reason)) == (reason, status, result)
    assert ended.technical and ended.line_failed
    assert ended.suggested_disposition is None  # no patient disposition for a dead line
    assert str(status) in ended.detail
    assert peer.wait() == 0, peer.trace()


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [("uas_reject_486.xml", EndReason.BUSY), ("uas_reject_480.xml", EndReason.UNAVAILABLE)],
)
def test_busy_and_unavailable_are_patient_outcomes(
    sipp: StartPeer, make_phone: MakePhone, scenario: str, reason: EndReason
) -> None:
    peer = sipp(scenario)
    p = make_phone()
    p.phone.dial(permit(peer.uri))
    ended = p.wait_for(CallState.ENDED)
    assert ended.reason == reason and not ended.technical
    assert peer.wait() == 0


def test_no_one_listening_is_a_line_failure(make_phone: MakePhone) -> None:
    p = make_phone()
    p.phone.dial(permit(f"sip:patient@127.0.0.1:{free_udp_port()}"))
    ended = p.wait_for(CallState.ENDED)
    assert ended.reason == EndReason.NETWORK_ERROR and ended.technical


@pytest.mark.parametrize(
    ("mode", "header_name"),
    [("p-asserted-identity", "P-Asserted-Identity"), ("remote-party-id", "Remote-Party-ID")],
)
def test_caller_id_goes_in_the_configured_header_and_from_stays_the_account_user(
    sipp: StartPeer, make_phone: MakePhone, mode: str, header_name: str
) -> None:
    peer = sipp("uas_answer.xml", "-rtp_echo")
    account = SipAccount(username="agent7", caller_id="+12145550100", caller_id_mode=mode)
    p = make_phone(account)
    p.phone.dial(permit(peer.uri))
    p.wait_for(CallState.CONNECTED)
    p.phone.hangup()
    p.wait_for(CallState.ENDED)
    assert peer.wait() == 0
    invite = peer.received("INVITE")[0]
    assert "<sip:agent7@" in header(invite, "From")
    assert "+12145550100" in header(invite, header_name)
    other = {"P-Asserted-Identity", "Remote-Party-ID"} - {header_name}
    assert header(invite, other.pop()) == ""


def test_from_user_mode_presents_the_number_in_from(sipp: StartPeer, make_phone: MakePhone) -> None:
    peer = sipp("uas_answer.xml", "-rtp_echo")
    account = SipAccount(username="agent7", caller_id="+12145550100", caller_id_mode="from-user")
    p = make_phone(account)
    p.phone.dial(permit(peer.uri))
    p.wait_for(CallState.CONNECTED)
    p.phone.hangup()
    p.wait_for(CallState.ENDED)
    assert peer.wait() == 0
    invite = peer.received("INVITE")[0]
    assert "<sip:+12145550100@" in header(invite, "From")
    assert header(invite, "P-Asserted-Identity") == ""


def test_call_over_tcp(sipp: StartPeer, make_phone: MakePhone) -> None:
    peer = sipp("uas_answer.xml", "-rtp_echo", transport="tcp")
    p = make_phone(SipAccount(caller_id="+12145550100", transport="tcp"))
    p.phone.dial(permit(peer.uri))
    connected = p.wait_for(CallState.CONNECTED)
    assert connected.transport == "tcp"
    p.phone.hangup()
    assert p.wait_for(CallState.ENDED).reason == EndReason.COMPLETED
    assert peer.wait() == 0, peer.trace()
    invite = peer.received("INVITE")[0]
    assert header(invite, "Via").startswith("SIP/2.0/TCP ")
    assert ";transport=tcp" in header(invite, "Contact")


# TLS is tested against Kamailio's TLS listener in test_interop.py: Debian's sipp 3.6.1 is built
# without OpenSSL ("To use a TLS transport you must compile SIPp with OpenSSL").


def test_srtp_is_offered_by_sdes_and_taken_from_the_answer(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    peer = sipp("uas_answer_srtp.xml")
    p = make_phone(SipAccount(caller_id="+12145550100", srtp="required"))
    p.phone.dial(permit(peer.uri))
    connected = p.wait_for(CallState.CONNECTED)
    assert connected.srtp
    p.phone.hangup()
    p.wait_for(CallState.ENDED)
    assert peer.wait() == 0, peer.trace()


def test_srtp_required_and_a_plain_answer_ends_the_call(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    peer = sipp("uas_answer.xml", "-rtp_echo")
    p = make_phone(SipAccount(caller_id="+12145550100", srtp="required"))
    p.phone.dial(permit(peer.uri))
    ended = p.wait_for(CallState.ENDED)
    assert ended.reason == EndReason.FAILED
    assert "SRTP" in ended.detail and ended.technical
    peer.wait()


def test_rtcp_reports_go_to_rtp_plus_one_and_loss_is_counted(
    sipp: StartPeer, make_phone: MakePhone
) -> None:
    rtp_port = free_udp_port(pair=True)
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media.bind(("127.0.0.1", rtp_port))
    rtcp.bind(("127.0.0.1", rtp_port + 1))
    media.settimeout(10)
    rtcp.settimeout(10)
    try:
        peer = sipp("uas_answer_media_key.xml", "-key", "rtp_port", str(rtp_port))
        p = make_phone()
        p.phone.dial(permit(peer.uri))
        p.wait_for(CallState.CONNECTED)
        first, ours = media.recvfrom(2048)
        our_ssrc = struct.unpack("!I", first[8:12])[0]
        # The far end sends 20 packets with sequence numbers 1000..1024, five of them lost.
        sent = 0
        for seq in range(1000, 1025):
            if seq in (1003, 1004, 1010, 1017, 1020):
                continue
            packet = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0xCAFE) + bytes(160)
            media.sendto(packet, ours)
            sent += 1
        report, _ = rtcp.recvfrom(2048)  # the first report comes 2.5 s in (RFC 3550 §6.2)
        assert report[1] == 200  # an SR: we have sent RTP
        assert struct.unpack("!I", report[4:8])[0] == our_ssrc
        assert b"outreach@127.0.0.1" in report  # SDES CNAME in the same compound packet
        p.phone.hangup()
        ended = p.wait_for(CallState.ENDED)
        assert (ended.rtp_received, ended.rtp_lost) == (sent, 5)
        assert ended.rtp_sent > 50 and ended.rtcp_sent >= 2
        # On hang-up a last report and an RTCP BYE (§6.6).
        while True:
            last, _ = rtcp.recvfrom(2048)
            if 203 in _packet_types(last):
                break
        assert peer.wait() == 0, peer.trace()
    finally:
        media.close()
        rtcp.close()


def _packet_types(compound: bytes) -> list[int]:
    types, offset = [], 0
    while offset + 4 <= len(compound):
        types.append(compound[offset + 1])
        offset += (struct.unpack("!H", compound[offset + 2 : offset + 4])[0] + 1) * 4
    return types


def test_events_keep_their_old_meaning(sipp: StartPeer, make_phone: MakePhone) -> None:
    """What the screens read before issue 21 is unchanged: states in order, completed."""
    peer = sipp("uas_answer.xml", "-rtp_echo")
    p = make_phone()
    p.phone.dial(permit(peer.uri))
    p.wait_for(CallState.CONNECTED)
    p.phone.hangup()
    ended = p.wait_for(CallState.ENDED)
    assert isinstance(ended, CallEvent) and not ended.technical and ended.hold == ""
    assert p.states() == ["dialing", "ringing", "connected", "ended"]
    assert peer.wait() == 0
