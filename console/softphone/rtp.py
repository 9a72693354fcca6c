"""One call's media: RTP over UDP (RFC 3550), G.711 at 20 ms, DTMF as telephone-events (RFC 4733).

The softphone thread calls `tick()` when `next_due` comes and `on_readable()` when the socket has
data; nothing here blocks or starts a thread.
"""

from __future__ import annotations

import logging
import random
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import Protocol

from console.softphone import g711
from console.softphone.sdp import RemoteMedia

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.020
FRAME_SAMPLES = 160
DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14}
DTMF_EVENTS["D"] = 15
EVENT_DIGITS = {v: k for k, v in DTMF_EVENTS.items()}
TONE_FRAMES = 5  # 100 ms of tone per digit
END_PACKETS = 3  # RFC 4733 §2.5.1.4: the end of an event is sent three times
GAP_FRAMES = 3  # 60 ms of audio between digits


class AudioPort(Protocol):
    """A sound device as the media loop sees it: 20 ms frames of 16-bit PCM at 8 kHz."""

    def read_frame(self) -> bytes | None: ...
    def write_frame(self, pcm: bytes) -> None: ...


def bind_rtp_socket(local_ip: str) -> socket.socket:
    """A UDP socket on an even port (RFC 3550 §11), non-blocking."""
    last: socket.socket | None = None
    for _ in range(20):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((local_ip, 0))
        if sock.getsockname()[1] % 2 == 0:
            if last is not None:
                last.close()
            sock.setblocking(False)
            return sock
        if last is not None:
            last.close()
        last = sock
    assert last is not None
    last.setblocking(False)
    return last


class RtpStream:
    def __init__(
        self,
        local_ip: str,
        audio: AudioPort | None = None,
        on_dtmf: Callable[[], None] | None = None,
    ) -> None:
        self.on_dtmf = on_dtmf  # called when a key starts going out or one is heard
        self.sock = bind_rtp_socket(local_ip)
        self.port: int = self.sock.getsockname()[1]
        self.audio = audio
        self.remote: RemoteMedia | None = None
        self.muted = False
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)
        self.next_due = 0.0
        self.sent = 0
        self.received = 0
        self.dtmf_pending: deque[str] = deque()
        self.dtmf_sent = ""
        self.dtmf_received = ""
        self._event: list[int] | None = None  # [event code, frames sent, start timestamp]
        self._gap = 0
        self._heard: set[tuple[int, int]] = set()  # (timestamp, event) already counted

    def fileno(self) -> int:
        return self.sock.fileno()

    def start(self, remote: RemoteMedia, now: float) -> None:
        self.remote = remote
        self.next_due = now

    def close(self) -> None:
        self.remote = None
        self.sock.close()

    # -- sending --------------------------------------------------------------------------
    def queue_dtmf(self, digits: str) -> str:
        """Queue the digits the far end can take; returns the ones refused."""
        if self.remote is None or self.remote.event_pt is None:
            return digits
        refused = ""
        for d in digits.upper():
            if d in DTMF_EVENTS:
                self.dtmf_pending.append(d)
            else:
                refused += d
        return refused

    @property
    def dtmf_busy(self) -> bool:
        return bool(self.dtmf_pending) or self._event is not None

    def tick(self, now: float) -> None:
        """Send every frame that is due (one normally; a few after a stall, not a burst)."""
        if self.remote is None:
            return
        behind = 0
        while self.next_due <= now and behind < 3:
            self._send_frame()
            self.next_due += FRAME_SECONDS
            behind += 1
        if self.next_due <= now:  # stalled for long: skip ahead instead of bursting
            self.next_due = now + FRAME_SECONDS

    def _send_frame(self) -> None:
        assert self.remote is not None
        if self._event is None and self._gap == 0 and self.dtmf_pending:
            digit = self.dtmf_pending.popleft()
            self._event = [DTMF_EVENTS[digit], 0, self.timestamp]
            self.dtmf_sent += digit
            if self.on_dtmf is not None:
                self.on_dtmf()
        if self._event is not None and self.remote.event_pt is not None:
            self._send_event_frame(self.remote.event_pt)
        else:
            if self._gap:
                self._gap -= 1
            self._send_audio_frame()
        self.timestamp = (self.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF

    def _send_audio_frame(self) -> None:
        assert self.remote is not None
        law = self.remote.codec
        pcm = None if self.muted or self.audio is None else self.audio.read_frame()
        payload = g711.encode(pcm, law) if pcm else g711.silence(law)
        self._send(self.remote.codec_pt, payload, marker=False, timestamp=self.timestamp)

    def _send_event_frame(self, pt: int) -> None:
        assert self._event is not None
        code, frames, start_ts = self._event
        frames += 1
        ending = frames > TONE_FRAMES
        duration = min(frames, TONE_FRAMES) * FRAME_SAMPLES
        volume = 10  # -10 dBm0
        payload = struct.pack("!BBH", code, (0x80 if ending else 0) | volume, duration)
        self._send(pt, payload, marker=frames == 1, timestamp=start_ts)
        self._event[1] = frames
        if frames >= TONE_FRAMES + END_PACKETS:
            self._event = None
            self._gap = GAP_FRAMES

    def _send(self, pt: int, payload: bytes, *, marker: bool, timestamp: int) -> None:
        assert self.remote is not None
        header = struct.pack(
            "!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq, timestamp, self.ssrc
        )
        self.seq = (self.seq + 1) & 0xFFFF
        try:
            self.sock.sendto(header + payload, (self.remote.address, self.remote.port))
            self.sent += 1
        except OSError as exc:  # media trouble never ends the call by itself; the log says why
            log.debug("rtp send failed: %s", exc)

    # -- receiving ------------------------------------------------------------------------
    def on_readable(self) -> None:
        for _ in range(64):
            try:
                data = self.sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("rtp receive failed: %s", exc)
                return
            self._on_packet(data)

    def _on_packet(self, data: bytes) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        self.received += 1
        csrc = data[0] & 0x0F
        offset = 12 + 4 * csrc
        if data[0] & 0x10 and len(data) >= offset + 4:  # header extension
            offset += 4 + 4 * struct.unpack("!H", data[offset + 2 : offset + 4])[0]
        payload = data[offset:]
        pt = data[1] & 0x7F
        remote = self.remote
        if remote is None:
            return
        if pt == remote.event_pt and len(payload) >= 4:
            timestamp = struct.unpack("!I", data[4:8])[0]
            code, flags = payload[0], payload[1]
            key = (timestamp, code)
            if flags & 0x80 and key not in self._heard and code in EVENT_DIGITS:
                self._heard.add(key)
                self.dtmf_received += EVENT_DIGITS[code]
                if self.on_dtmf is not None:
                    self.on_dtmf()
        elif pt in (0, 8) and self.audio is not None:
            self.audio.write_frame(g711.decode(payload, "PCMU" if pt == 0 else "PCMA"))
