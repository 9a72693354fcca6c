"""`outreach call test SIP_URI`: place one call with the configured SIP account, print each state.

A supervisor checks a new trunk with it; the tests use it too. Exit 0 when the call was placed and
ended cleanly, whatever the far end did (busy and no answer are answers); 1 when it could not be
placed (bad account, socket in use); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import queue
import sys
import time
from datetime import datetime
from typing import Any

from console.config import settings_from_args, setup_logging
from console.services.phone_line import account_from_settings
from console.softphone import (
    CallEvent,
    CallState,
    DialPermit,
    DtmfEvent,
    PhoneEvent,
    PhoneNotice,
    RegistrationEvent,
    Softphone,
    SoftphoneError,
)
from console.softphone.events import cli_result
from queues.errors import OutreachError

# Generous: the ring timeout, then a CANCEL that the far end may take 32 s (64·T1) to finish.
WAIT_AFTER_RING = 40.0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    call = sub.add_parser("call", help="softphone checks (place a test call)")
    call_sub = call.add_subparsers(dest="call_command", metavar="ACTION", required=True)
    test = call_sub.add_parser(
        "test",
        parents=[common],
        help="place one call and print each state change",
        description="Place one call to SIP_URI with the [sip] account from the config (caller "
        "ID, server, credentials) and print each state change with a timestamp. Exit 0 when the "
        "call was placed and ended cleanly, whatever the result.",
    )
    test.add_argument(
        "uri", metavar="SIP_URI", help="sip:user@host[:port], or a number when [sip].server is set"
    )
    test.add_argument(
        "--hangup-after",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="hang up this long after the answer (default 10)",
    )
    test.add_argument(
        "--ring-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up (CANCEL) after ringing this long (default [sip].dial_timeout_seconds)",
    )
    test.add_argument("--dtmf", default="", metavar="DIGITS", help="send these keys once answered")
    test.add_argument("--json", action="store_true", help="one JSON object on the last line")
    test.set_defaults(func=cmd_call_test)


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M:%S.%f")[:-3]


def _describe(event: PhoneEvent) -> str:
    if isinstance(event, CallEvent):
        parts = [event.state.value]
        if event.reason is not None:
            parts.append(event.reason.value)
        if event.sip_status is not None:
            parts.append(f"SIP {event.sip_status}")
        if event.state == CallState.CONNECTED and event.setup_ms is not None:
            parts.append(f"set-up {event.setup_ms:.0f} ms")
            parts.append(f"{event.transport or 'udp'}{' srtp' if event.srtp else ''}")
        if event.hold:
            parts.append(f"held by the {'far end' if event.hold == 'remote' else 'agent'}")
        if event.early_media:
            parts.append("early media playing")
        if event.technical:
            parts.append("line failure")
        if event.state == CallState.ENDED and (event.rtp_sent or event.rtp_received):
            parts.append(
                f"rtp sent {event.rtp_sent} received {event.rtp_received} lost {event.rtp_lost}"
            )
        if event.detail:
            parts.append(f"({event.detail})")
        return "  ".join(parts)
    if isinstance(event, RegistrationEvent):
        return f"registration  {'ok' if event.registered else 'failed'}  ({event.detail})"
    if isinstance(event, DtmfEvent):
        return f"dtmf  sent {event.sent or '-'}  heard {event.received or '-'}"
    return f"note  {event.text}"


def cmd_call_test(args: argparse.Namespace) -> int:
    if args.hangup_after < 0:
        raise OutreachError("--hangup-after: give 0 or more seconds")
    if args.ring_timeout is not None and not 0 < args.ring_timeout <= 600:
        raise OutreachError("--ring-timeout: give more than 0 and at most 600 seconds")
    bad = [d for d in args.dtmf.upper() if d not in "0123456789*#ABCD"]
    if bad:
        raise OutreachError(f"--dtmf: {''.join(bad)!r} is not a DTMF key (0-9 * # A-D)")
    settings = settings_from_args(args.config, None)
    setup_logging(settings)
    sip = settings.sip
    # The transport, SRTP and caller-ID keys (issue 21), whether or not the line's builder
    # passes them on yet.
    account = dataclasses.replace(
        account_from_settings(sip),
        transport=sip.transport,
        tls_ca_file=sip.tls_ca_file,
        srtp=sip.srtp,
        caller_id_mode=sip.caller_id_mode,
    )
    events: queue.SimpleQueue[PhoneEvent] = queue.SimpleQueue()
    phone = Softphone(account, events.put)
    try:
        phone.start()
    except SoftphoneError as exc:
        raise OutreachError(f"cannot start the softphone: {exc}") from None
    ring = account.dial_timeout if args.ring_timeout is None else args.ring_timeout
    final: CallEvent | None = None
    history: list[dict[str, Any]] = []
    handle = ""
    try:
        # No patient, no calling rules: a permit for the target, valid while it may ring.
        permit = DialPermit.for_seconds(args.uri, ring)
        try:
            handle = phone.dial(permit, ring_timeout=ring)
        except SoftphoneError as exc:
            raise OutreachError(f"SIP_URI: {exc}") from None
        final = _follow(phone, events, handle, args, ring, history)
    except KeyboardInterrupt:
        phone.hangup()
        _wait_end(events, handle, history, 5.0)
        return 130
    finally:
        phone.stop()
    if final is None:
        print("the call did not end in time; see the log", file=sys.stderr)
        if args.json:
            print(json.dumps({"result": "failed", "sip_status": None, "setup_ms": None}))
        return 1
    if args.json:
        print(json.dumps(_summary(final, args.uri, history)))
    return 0


def _follow(
    phone: Softphone,
    events: queue.SimpleQueue[PhoneEvent],
    handle: str,
    args: argparse.Namespace,
    ring: float,
    history: list[dict[str, Any]],
) -> CallEvent | None:
    deadline = time.monotonic() + ring + WAIT_AFTER_RING
    hangup_at: float | None = None
    while True:
        now = time.monotonic()
        if hangup_at is not None and now >= hangup_at:
            hangup_at = None
            phone.hangup()
        wait_until = min(deadline, hangup_at) if hangup_at is not None else deadline
        if now >= deadline:
            return None
        try:
            event = events.get(timeout=max(0.0, wait_until - now))
        except queue.Empty:
            continue
        if isinstance(event, CallEvent) and event.call != handle:
            continue
        _print(event, history)
        if isinstance(event, CallEvent):
            if event.state == CallState.CONNECTED:
                if args.dtmf:
                    phone.dtmf(args.dtmf)
                # Keys take ~200 ms each (RFC 4733 tone + gap); the hang-up waits for them.
                hangup_at = time.monotonic() + max(args.hangup_after, 0.2 * len(args.dtmf) + 0.2)
                deadline = max(deadline, hangup_at + WAIT_AFTER_RING)
            elif event.state == CallState.ENDED:
                return event


def _wait_end(
    events: queue.SimpleQueue[PhoneEvent], handle: str, history: list[dict[str, Any]], wait: float
) -> CallEvent | None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None
        _print(event, history)
        if isinstance(event, CallEvent) and event.call == handle and event.state == CallState.ENDED:
            return event
    return None


def _print(event: PhoneEvent, history: list[dict[str, Any]]) -> None:
    print(f"{_stamp(event.at)}  {_describe(event)}", flush=True)
    if isinstance(event, CallEvent):
        history.append({"at": round(event.at, 3), "state": event.state.value})
    elif isinstance(event, PhoneNotice):
        history.append({"at": round(event.at, 3), "note": event.text})


def _summary(final: CallEvent, uri: str, history: list[dict[str, Any]]) -> dict[str, Any]:
    assert final.reason is not None
    return {
        "result": cli_result(final.reason),
        "sip_status": final.sip_status,
        "setup_ms": round(final.setup_ms, 1) if final.setup_ms is not None else None,
        "hangup_ms": round(final.hangup_ms, 1) if final.hangup_ms is not None else None,
        "reason": final.reason.value,
        "detail": final.detail,
        "uri": uri,
        "dtmf_sent": final.dtmf_sent,
        "dtmf_received": final.dtmf_received,
        "audio": final.audio,
        # Issue 21: a line failure is not the patient's answer; media counts (RFC 3550 A.3).
        "technical": final.technical,
        "transport": final.transport,
        "srtp": final.srtp,
        "auth_ms": round(final.auth_ms, 3) if final.auth_ms is not None else None,
        "rtp_sent": final.rtp_sent,
        "rtp_received": final.rtp_received,
        "rtp_lost": final.rtp_lost,
        "rtcp_sent": final.rtcp_sent,
        "rtcp_received": final.rtcp_received,
        "events": history,
    }
