"""Call set-up and hang-up time: the console's softphone against sipp as the caller, same peer, same run.

Both callers place --calls calls, one at a time, to one sipp peer playing `uas_answer.xml` (rings
200 ms, answers, echoes RTP). Set-up is INVITE sent → 200 OK received; hang-up is BYE sent → its
200 OK. Then one call stays connected for --connected-seconds while we read the CPU time of the
softphone thread from /proc (it sends and receives 50 RTP packets a second).

    python bench/call_setup.py [--calls 100] [--connected-seconds 60] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.softphone import CallEvent, CallState, DialPermit, PhoneEvent, SipAccount, Softphone
from tests.softphone.ports import free_udp_port, wait_bound

SIP_DIR = Path(__file__).resolve().parents[1] / "tests" / "sip"
BUDGET = 1.5
RING_MS = 200.0  # uas_answer.xml pauses this long between 180 and 200  # the budget for softphone / sipp set-up time


def start_peer(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_udp_port()
    args = ["sipp", "-sf", str(SIP_DIR / "uas_answer.xml"), "-i", "127.0.0.1", "-p", str(port)]
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


def softphone_calls(port: int, calls: int) -> tuple[list[float], list[float]]:
    events: queue.SimpleQueue[PhoneEvent] = queue.SimpleQueue()
    phone = Softphone(SipAccount(caller_id="+12145550100"), events.put)
    phone.start()
    setup: list[float] = []
    hangup: list[float] = []
    try:
        for _ in range(calls):
            phone.dial(DialPermit.for_seconds(f"sip:patient@127.0.0.1:{port}", 60))
            connected = next_call_event(events, CallState.CONNECTED)
            phone.hangup()
            ended = next_call_event(events, CallState.ENDED)
            assert connected.setup_ms is not None and ended.hangup_ms is not None
            setup.append(connected.setup_ms)
            hangup.append(ended.hangup_ms)
    finally:
        phone.stop()
    return setup, hangup


def sipp_calls(port: int, calls: int, workdir: Path) -> tuple[list[float], list[float]]:
    args = ["sipp", "-sf", str(SIP_DIR / "uac_bench.xml"), f"127.0.0.1:{port}", "-i", "127.0.0.1"]
    args += ["-p", str(free_udp_port()), "-m", str(calls), "-l", "1", "-r", "1000", "-nostdin"]
    args += ["-trace_rtt", "-rtt_freq", "1"]
    done = subprocess.run(args, cwd=workdir, capture_output=True, timeout=60 + calls)
    if done.returncode != 0:
        raise RuntimeError(f"sipp caller failed ({done.returncode})")
    setup: list[float] = []
    hangup: list[float] = []
    for path in workdir.glob("uac_bench_*_rtt.csv"):
        with path.open() as fh:
            for row in csv.DictReader(fh, delimiter=";"):
                target = setup if row["rtd_no"] == "setup" else hangup
                target.append(float(row["response_time_ms"]))
    return setup, hangup


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
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is not installed (apt-get install sip-tester)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        peer, port = start_peer(work)
        try:
            sp_setup, sp_hangup = softphone_calls(port, args.calls)
            sipp_setup, sipp_hangup = sipp_calls(port, args.calls, work)
            cpu = connected_cpu(port, args.connected_seconds)
        finally:
            peer.send_signal(signal.SIGTERM)
            peer.wait(timeout=10)
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
