"""`outreach call test` as a supervisor runs it: a process, states on stdout, JSON last."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.softphone.conftest import SippPeer
from tests.softphone.ports import free_udp_port

pytestmark = pytest.mark.sip


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[log]\npath = "{tmp_path / "outreach.log"}"\n'
        '[sip]\ncaller_id = "+12145550100"\ndisplay_name = "Main St Pharmacy"\n'
    )
    return subprocess.run(
        [sys.executable, "-m", "console", "call", "test", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_call_test_prints_states_and_a_json_result(
    tmp_path: Path, sipp: Callable[..., SippPeer]
) -> None:
    peer = sipp("uas_answer.xml", "-rtp_echo")
    done = _run(tmp_path, peer.uri, "--hangup-after", "0.3", "--dtmf", "42", "--json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["result"] == "completed" and result["sip_status"] == 200
    assert result["setup_ms"] > 0 and result["dtmf_sent"] == "42"
    assert [line.split()[1] for line in lines[:-1] if line.split()[1] not in ("note", "dtmf")] == [
        "dialing",
        "ringing",
        "connected",
        "ended",
    ]
    assert peer.wait() == 0, peer.trace()
    assert done.stderr == ""


def test_call_test_busy_is_a_clean_exit(tmp_path: Path, sipp: Callable[..., SippPeer]) -> None:
    peer = sipp("uas_reject_486.xml")
    done = _run(tmp_path, peer.uri, "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout.strip().splitlines()[-1])["result"] == "busy"
    assert peer.wait() == 0


def test_call_test_without_answer_at_all_reports_timeout(
    tmp_path: Path, sipp: Callable[..., SippPeer]
) -> None:
    peer = sipp("uas_silent.xml")
    done = _run(tmp_path, peer.uri, "--ring-timeout", "1", "--json")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (done.returncode, result["result"], result["sip_status"], result["setup_ms"]) == (
        0,
        "timeout",
        None,
        None,
    )
    assert peer.wait() == 0


def test_call_test_names_a_bad_uri(tmp_path: Path) -> None:
    done = _run(tmp_path, "sip:", "--json")
    assert done.returncode == 1
    assert "SIP_URI" in done.stderr and "sip:" in done.stderr


def test_call_test_rejects_a_bad_dtmf_key(tmp_path: Path) -> None:
    port = free_udp_port()
    done = _run(tmp_path, f"sip:p@127.0.0.1:{port}", "--dtmf", "12x")
    assert done.returncode == 1 and "--dtmf" in done.stderr and "'X'" in done.stderr


def test_call_test_json_carries_rtp_counts_and_transport(
    tmp_path: Path, sipp: Callable[..., SippPeer]
) -> None:
    peer = sipp("uas_answer.xml", "-rtp_echo")
    done = _run(tmp_path, peer.uri, "--hangup-after", "1", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rtp_sent"] >= 40  # 1 s at 20 ms a packet
    assert result["rtp_received"] >= 30  # sipp echoes them back
    assert result["rtp_lost"] == 0
    assert (result["transport"], result["srtp"], result["technical"]) == ("udp", False, False)
    assert peer.wait() == 0


def test_call_test_408_from_a_proxy_is_unavailable_and_a_line_failure(
    tmp_path: Path, sipp: Callable[..., SippPeer]
) -> None:
    peer = sipp("uas_reject_408.xml")
    done = _run(tmp_path, peer.uri, "--json")
    assert done.returncode == 0
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["result"], result["sip_status"], result["technical"]) == (
        "unavailable",
        408,
        True,
    )
    assert "line failure" in done.stdout
    assert peer.wait() == 0
