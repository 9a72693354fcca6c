"""Call set-up and hang-up time: the console's softphone against sipp as the caller, same peer, same run.

Both callers place --calls calls, one at a time, to one sipp peer playing `uas_answer.xml` (rings
200 ms, answers, echoes RTP). Set-up is INVITE sent → 200 OK received; hang-up is BYE sent → its
200 OK. Then one call stays connected for --connected-seconds while we read the CPU time of the
softphone thread from /proc (it sends and receives 50 RTP packets a second).

Issue 21 adds, each against the same peer in the same run:
- SRTP: both offer RTP/SAVP with an SDES key to `uas_answer_srtp.xml` (the softphone also keys
  libsrtp from the answer);
- 407: a trunk that challenges (`uas_auth_407.xml`): set-up from the first INVITE to the 200, and
  the time from the 407 received to the INVITE with credentials sent (the softphone measures it;
  sipp's from its own message trace, microsecond stamps);
- TLS: Debian's sipp is built without OpenSSL, so there is no sipp floor for TLS: the softphone
  calls baresip through Kamailio over UDP and over TLS in the same run, and the TLS/UDP ratio is
  reported (skipped when kamailio or baresip is not installed).

    python bench/call_setup.py [--calls 100] [--connected-seconds 60] [--json]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.softphone import CallEvent, CallState, DialPermit, PhoneEvent, SipAccount, Softphone
from tests.softphone.ports import free_udp_port, wait_bound

SIP_DIR = Path(__file__).resolve().parents[1] / "tests" / "sip"
BUDGET = 1.5
RING_MS = 200.0  # uas_answer.xml pauses this long between 180 and 200  # the budget for softphone / sipp set-up time


def start_peer(
    workdir: Path, scenario: str = "uas_answer.xml"
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_udp_port()
    args = ["sipp", "-sf", str(SIP_DIR / scenario), "-i", "127.0.0.1", "-p", str(port)]
    args += ["-mi", "127.0.0.1", "-mp", str(free_udp_port(pair=True)), "-rtp_echo", "-nostdin"]
    proc = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_bound(port)
    return proc, port


def next_call_event(events: queue.SimpleQueue[PhoneEvent], state: CallState) -> CallEvent:
    while True:
        event = events.get(timeout=30)
        if isinstance(event, CallEvent):
            if event.state == state:
                return event
            if event.state == CallState.ENDED:
                raise RuntimeError(f"call ended early: {event.reason} {event.detail}")


def softphone_calls(
    target: str, calls: int, account: SipAccount | None = None, auth: list[float] | None = None
) -> tuple[list[float], list[float]]:
    events: queue.SimpleQueue[PhoneEvent] = queue.SimpleQueue()
    phone = Softphone(account or SipAccount(caller_id="+12145550100", audio=False), events.put)
    phone.start()
    setup: list[float] = []
    hangup: list[float] = []
    if not target.startswith("sip"):
        target = f"sip:patient@127.0.0.1:{target}"
    try:
        for _ in range(calls):
            phone.dial(DialPermit.for_seconds(target, 60))
            connected = next_call_event(events, CallState.CONNECTED)
            phone.hangup()
            ended = next_call_event(events, CallState.ENDED)
            assert connected.setup_ms is not None and ended.hangup_ms is not None
            setup.append(connected.setup_ms)
            hangup.append(ended.hangup_ms)
            if auth is not None and connected.auth_ms is not None:
                auth.append(connected.auth_ms)
    finally:
        phone.stop()
    return setup, hangup


def sipp_calls(
    port: int, calls: int, workdir: Path, scenario: str = "uac_bench.xml"
) -> tuple[list[float], list[float]]:
    run_dir = workdir / scenario.removesuffix(".xml")
    run_dir.mkdir(exist_ok=True)
    args = ["sipp", "-sf", str(SIP_DIR / scenario), f"127.0.0.1:{port}", "-i", "127.0.0.1"]
    args += ["-p", str(free_udp_port()), "-m", str(calls), "-l", "1", "-r", "1000", "-nostdin"]
    args += ["-trace_rtt", "-rtt_freq", "1", "-trace_msg", "-message_file", "messages.log"]
    done = subprocess.run(args, cwd=run_dir, capture_output=True, timeout=60 + calls)
    if done.returncode != 0:
        raise RuntimeError(f"sipp caller ({scenario}) failed ({done.returncode})")
    setup: list[float] = []
    hangup: list[float] = []
    for path in run_dir.glob("*_rtt.csv"):
        with path.open() as fh:
            for row in csv.DictReader(fh, delimiter=";"):
                target = setup if row["rtd_no"] == "setup" else hangup
                target.append(float(row["response_time_ms"]))
    return setup, hangup


def sipp_trace_setup_ms(workdir: Path, scenario: str) -> list[float]:
    """From sipp's message trace (microsecond stamps; its rtt file has whole ms): per call,
    the first INVITE sent → the 200 OK to an INVITE received."""
    stamp = re.compile(r"^-{40,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")
    text = (workdir / scenario.removesuffix(".xml") / "messages.log").read_text(errors="replace")
    first: dict[str, datetime] = {}
    found: list[float] = []
    at: datetime | None = None
    for block in re.split(r"(?m)^(?=-{40,} )", text):
        head, _, body = block.partition("\n")
        m = stamp.match(head.strip())
        if not m:
            continue
        at = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f")
        call = re.search(r"(?mi)^Call-ID:\s*(\S+)", body)
        if call is None:
            continue
        msg = body.strip().split("\n", 1)[-1] if "message" in body.split("\n", 1)[0] else body
        msg = msg.strip()
        if "sent" in body.split("\n", 1)[0] and msg.startswith("INVITE "):
            first.setdefault(call[1], at)
        elif (
            "received" in body.split("\n", 1)[0]
            and msg.startswith("SIP/2.0 200 ")
            and re.search(r"(?mi)^CSeq:\s*\d+ INVITE", msg)
            and call[1] in first
        ):
            found.append((at - first.pop(call[1])).total_seconds() * 1000)
    return found


def sipp_auth_ms(workdir: Path) -> list[float]:
    """From sipp's message trace: each 407 received → the next INVITE sent, in ms."""
    stamp = re.compile(r"^-{40,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")
    found: list[float] = []
    challenged: datetime | None = None
    text = (workdir / "uac_bench_407" / "messages.log").read_text(errors="replace")
    at: datetime | None = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = stamp.match(line)
        if m:
            at = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f")
            continue
        if at is None or i == 0:
            continue
        if line.startswith("SIP/2.0 407 ") and "received" in lines[i - 2]:
            challenged = at
        elif line.startswith("INVITE ") and "sent" in lines[i - 2] and challenged is not None:
            found.append((at - challenged).total_seconds() * 1000)
            challenged = None
    return found


def tls_run(calls: int, work: Path) -> dict[str, float] | None:
    """The softphone to baresip through Kamailio, UDP then TLS (certificate verified)."""
    from tests.softphone.conftest import make_certs
    from tests.softphone.peers import (
        PASSWORD,
        baresip_available,
        kamailio_available,
        start_baresip,
        start_kamailio,
    )

    if not (kamailio_available() and baresip_available() and shutil.which("openssl")):
        return None
    certs = make_certs(work / "certs")
    k = start_kamailio(work / "kamailio", certs.cert, certs.key)
    b = start_baresip(work / "baresip", k.udp_port, srtp="")
    try:
        deadline = time.monotonic() + 15
        while "binding]" not in b.output() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling baresip's log for its registration
        udp_account = SipAccount(
            server="127.0.0.1", port=k.udp_port, username="agent7", password=PASSWORD, audio=False
        )
        tls_account = dataclasses.replace(
            udp_account, port=k.tls_port, transport="tls", tls_ca_file=str(certs.ca)
        )
        udp, _ = softphone_calls(f"sip:bob@127.0.0.1:{k.udp_port}", calls, udp_account)
        tls, _ = softphone_calls(f"sips:bob@127.0.0.1:{k.tls_port}", calls, tls_account)
    finally:
        b.stop()
        k.stop()
    return {
        "udp_p50": statistics.median(udp),
        "tls_p50": statistics.median(tls),
        "tls_p95": p(tls, 0.95),
    }


def thread_cpu_seconds(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def connected_cpu(port: int, seconds: float) -> dict[str, float]:
    events: queue.SimpleQueue[PhoneEvent] = queue.SimpleQueue()
    phone = Softphone(SipAccount(caller_id="+12145550100"), events.put)
    phone.start()
    try:
        phone.dial(DialPermit.for_seconds(f"sip:patient@127.0.0.1:{port}", 60))
        next_call_event(events, CallState.CONNECTED)
        assert phone.native_id is not None
        cpu0, wall0 = thread_cpu_seconds(phone.native_id), time.monotonic()
        time.sleep(seconds)  # the measured interval itself, not a synchronisation
        cpu1, wall1 = thread_cpu_seconds(phone.native_id), time.monotonic()
        phone.hangup()
        next_call_event(events, CallState.ENDED)
    finally:
        phone.stop()
    return {"cpu_seconds": cpu1 - cpu0, "wall_seconds": wall1 - wall0}


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--connected-seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    parser.add_argument("--no-tls", action="store_true", help="skip the Kamailio/baresip TLS run")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is not installed (apt-get install sip-tester)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        peer, port = start_peer(work)
        try:
            sp_setup, sp_hangup = softphone_calls(str(port), args.calls)
            sipp_setup, sipp_hangup = sipp_calls(port, args.calls, work)
            cpu = connected_cpu(port, args.connected_seconds)
        finally:
            peer.send_signal(signal.SIGTERM)
            peer.wait(timeout=10)
        peer, port = start_peer(work, "uas_answer_srtp.xml")
        try:
            srtp_account = SipAccount(caller_id="+12145550100", srtp="required", audio=False)
            sp_srtp, _ = softphone_calls(str(port), args.calls, srtp_account)
            sipp_calls(port, args.calls, work, "uac_bench_srtp.xml")
            sipp_srtp = sipp_trace_setup_ms(work, "uac_bench_srtp.xml")
        finally:
            peer.send_signal(signal.SIGTERM)
            peer.wait(timeout=10)
        peer, port = start_peer(work, "uas_auth_407.xml")
        try:
            auth_account = SipAccount(
                username="agent7", password="s3cret-pw", caller_id="+12145550100", audio=False
            )
            sp_auth: list[float] = []
            sp_407, _ = softphone_calls(str(port), args.calls, auth_account, sp_auth)
            sipp_calls(port, args.calls, work, "uac_bench_407.xml")
            sipp_407 = sipp_trace_setup_ms(work, "uac_bench_407.xml")
            sipp_auth = sipp_auth_ms(work)
        finally:
            peer.send_signal(signal.SIGTERM)
            peer.wait(timeout=10)
        tls = None if args.no_tls else tls_run(max(10, args.calls // 5), work)
    result: dict[str, Any] = {
        "calls": args.calls,
        "softphone_setup_p50_ms": round(statistics.median(sp_setup), 2),
        "softphone_setup_p95_ms": round(p(sp_setup, 0.95), 2),
        "sipp_setup_p50_ms": round(statistics.median(sipp_setup), 2),
        "sipp_setup_p95_ms": round(p(sipp_setup, 0.95), 2),
        "setup_ratio": round(statistics.median(sp_setup) / statistics.median(sipp_setup), 3),
        # The peer's 200 ms ring dominates set-up; what each caller adds on top of it:
        "softphone_setup_overhead_p50_ms": round(statistics.median(sp_setup) - RING_MS, 2),
        "sipp_setup_overhead_p50_ms": round(statistics.median(sipp_setup) - RING_MS, 2),
        "softphone_hangup_mean_ms": round(statistics.mean(sp_hangup), 3),
        "sipp_hangup_mean_ms": round(statistics.mean(sipp_hangup), 3),
        "connected_seconds": round(cpu["wall_seconds"], 1),
        "softphone_thread_cpu_seconds": round(cpu["cpu_seconds"], 3),
        "softphone_thread_cpu_percent": round(100 * cpu["cpu_seconds"] / cpu["wall_seconds"], 2),
        "budget_setup_ratio": BUDGET,
        "srtp_softphone_setup_p50_ms": round(statistics.median(sp_srtp), 3),
        "srtp_sipp_setup_p50_ms": round(statistics.median(sipp_srtp), 3),
        "srtp_setup_ratio": round(statistics.median(sp_srtp) / statistics.median(sipp_srtp), 3),
        "auth407_softphone_setup_p50_ms": round(statistics.median(sp_407), 3),
        "auth407_sipp_setup_p50_ms": round(statistics.median(sipp_407), 3),
        "auth407_setup_ratio": round(statistics.median(sp_407) / statistics.median(sipp_407), 3),
        "auth407_softphone_407_to_invite_p50_ms": round(statistics.median(sp_auth), 3),
        "auth407_sipp_407_to_invite_p50_ms": (
            round(statistics.median(sipp_auth), 3) if sipp_auth else None
        ),
        "tls_softphone_setup_p50_ms": round(tls["tls_p50"], 3) if tls else None,
        "tls_udp_same_path_setup_p50_ms": round(tls["udp_p50"], 3) if tls else None,
        "tls_over_udp_ratio": round(tls["tls_p50"] / tls["udp_p50"], 3) if tls else None,
    }
    rows = [
        ("set-up p50 (ms)", result["softphone_setup_p50_ms"], result["sipp_setup_p50_ms"]),
        ("set-up p95 (ms)", result["softphone_setup_p95_ms"], result["sipp_setup_p95_ms"]),
        (
            "over the ring (ms)",
            result["softphone_setup_overhead_p50_ms"],
            result["sipp_setup_overhead_p50_ms"],
        ),
        ("hang-up mean (ms)", result["softphone_hangup_mean_ms"], result["sipp_hangup_mean_ms"]),
    ]
    print(f"{args.calls} calls each to one sipp peer (uas_answer.xml, rings 200 ms)")
    print(f"{'':20}{'softphone':>12}{'sipp':>12}")
    for name, mine, theirs in rows:
        print(f"{name:20}{mine:>12}{theirs:>12}")
    print(f"set-up ratio softphone/sipp: {result['setup_ratio']} (budget ≤ {BUDGET})")
    print(
        f"SRTP (SDES) set-up p50: softphone {result['srtp_softphone_setup_p50_ms']} ms, sipp "
        f"{result['srtp_sipp_setup_p50_ms']} ms, ratio {result['srtp_setup_ratio']} "
        f"(budget ≤ {BUDGET})"
    )
    print(
        f"407 answered, set-up p50: softphone {result['auth407_softphone_setup_p50_ms']} ms, "
        f"sipp {result['auth407_sipp_setup_p50_ms']} ms, ratio {result['auth407_setup_ratio']} "
        f"(budget ≤ {BUDGET})"
    )
    print(
        f"407 received → INVITE with credentials sent, p50: softphone "
        f"{result['auth407_softphone_407_to_invite_p50_ms']} ms, sipp "
        f"{result['auth407_sipp_407_to_invite_p50_ms']} ms"
    )
    if tls:
        print(
            f"TLS through Kamailio to baresip, set-up p50 {result['tls_softphone_setup_p50_ms']} "
            f"ms vs UDP on the same path {result['tls_udp_same_path_setup_p50_ms']} ms "
            f"(ratio {result['tls_over_udp_ratio']}; no sipp floor: Debian's sipp has no TLS)"
        )
    else:
        print("TLS run skipped (--no-tls, or kamailio/baresip/openssl not installed)")
    print("  (sipp reports whole milliseconds; its sub-millisecond hang-ups read as 0)")
    print(
        f"softphone thread CPU over a {result['connected_seconds']} s connected call: "
        f"{result['softphone_thread_cpu_seconds']} s ({result['softphone_thread_cpu_percent']} %)"
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
