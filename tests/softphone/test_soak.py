"""60 calls in a row on one softphone: no thread, socket or file descriptor is left behind (a leak
of one per call shows as 60; the suite ran 200 until it had to fit its 10 minutes)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest

from console.softphone import CallState, EndReason
from tests.softphone.conftest import Phone, SippPeer, open_fds, permit

pytestmark = pytest.mark.sip
CALLS = 60


def test_sixty_calls_leave_no_threads_or_sockets_behind(
    sipp: Callable[..., SippPeer], make_phone: Callable[..., Phone]
) -> None:
    peer = sipp("uas_answer.xml", "-rtp_echo", calls=CALLS)
    p = make_phone()
    # One call first: the softphone's own thread and sockets exist from here on.
    _one_call(p, peer.uri)
    threads, fds = threading.active_count(), open_fds()
    for _ in range(CALLS - 1):
        _one_call(p, peer.uri)
    assert threading.active_count() == threads, threading.enumerate()
    assert open_fds() <= fds, sorted(os.listdir("/proc/self/fd"))
    errors = peer.errors.read_text() if peer.errors.exists() else ""
    assert peer.wait(timeout=60) == 0, errors[-3000:]


def _one_call(p: Phone, uri: str) -> None:
    p.phone.dial(permit(uri))
    p.wait_for(CallState.CONNECTED)
    p.phone.hangup()
    assert p.wait_for(CallState.ENDED).reason == EndReason.COMPLETED
