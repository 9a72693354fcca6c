"""The pieces under the calls: digest, G.711, SIP and SDP parsing, and what the package imports."""

from __future__ import annotations

import struct
import subprocess
import sys
import warnings

import pytest

from console.softphone import g711
from console.softphone.digest import Challenge, answer, parse_challenge
from console.softphone.message import parse, parse_name_addr, parse_uri, split_commas
from console.softphone.sdp import LocalSession, SdpError, parse_answer


def test_digest_matches_the_rfc_2617_example() -> None:
    challenge = Challenge(
        "Authorization",
        parse_challenge(
            'Digest realm="testrealm@host.com", qop="auth,auth-int", '
            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
        ),
    )
    value = answer(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
    )
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert "qop=auth," in value and "nc=00000001" in value


def test_g711_equals_the_reference_codec_both_ways() -> None:
    """pyVoIP decoded PCMA wrongly and used audioop, which Python 3.13 removed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # the reference while Python still ships it
    pcm = struct.pack("<65536h", *range(-32768, 32768))
    assert g711.encode(pcm, "PCMU") == audioop.lin2ulaw(pcm, 2)
    assert g711.encode(pcm, "PCMA") == audioop.lin2alaw(pcm, 2)
    codes = bytes(range(256))
    assert g711.decode(codes, "PCMU") == audioop.ulaw2lin(codes, 2)
    assert g711.decode(codes, "PCMA") == audioop.alaw2lin(codes, 2)


def test_the_softphone_imports_neither_pyvoip_nor_audioop() -> None:
    code = "import sys, console.softphone, console.cli.call; print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyVoIP', 'audioop')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sip_parsing_takes_compact_headers_folding_and_lists() -> None:
    raw = (
        b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa1, SIP/2.0/UDP p;branch=z9hG4bKb\r\n"
        b'f: "Pharmacy, Main" <sip:+1214@x>;tag=1\r\nt: <sip:p@y>;tag=abc\r\ni: c1@h\r\n'
        b"CSeq: 7\r\n INVITE\r\nRecord-Route: <sip:a;lr>, <sip:b;lr>\r\nl: 3\r\n\r\nabcdef"
    )
    msg = parse(raw)
    assert (msg.status, msg.method, msg.cseq, msg.branch) == (
        200,
        "INVITE",
        (7, "INVITE"),
        "z9hG4bKa1",
    )
    assert msg.to.tag == "abc" and msg.from_.display == "Pharmacy, Main"
    assert msg.get_all("Record-Route") == ["<sip:a;lr>", "<sip:b;lr>"]
    assert msg.body == b"abc"
    assert split_commas('"a,b" <sip:x>, <sip:y>') == ['"a,b" <sip:x>', "<sip:y>"]
    assert parse_name_addr("sip:x@y;tag=9").tag == "9"
    assert parse_uri("sip:patient@127.0.0.1:5070").hostport == ("127.0.0.1", 5070)


def test_sdp_answer_picks_the_codec_and_telephone_event() -> None:
    body = (
        b"v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.2\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n"
    )
    media = parse_answer(body)
    assert (media.address, media.port, media.codec, media.event_pt) == (
        "10.1.1.2",
        40000,
        "PCMA",
        96,
    )
    with pytest.raises(SdpError, match="neither PCMU nor PCMA"):
        parse_answer(body.replace(b"RTP/AVP 8 0 96", b"RTP/AVP 18"))
    assert b"m=audio 4000 RTP/AVP 0 8 101" in LocalSession("127.0.0.1", 4000).offer()
