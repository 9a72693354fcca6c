"""One call's media: RTP over UDP (RFC 3550), G.711 at 20 ms, DTMF as telephone-events (RFC 4733),
RTCP sender/receiver reports on RTP port + 1 (RFC 3550 §6), SRTP/SRTCP (RFC 3711) through libsrtp.

The softphone thread calls `tick()` when `next_due` comes and `on_readable()` /
`on_rtcp_readable()` when a socket has data; nothing here blocks or starts a thread.
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from console.softphone import g711
from console.softphone.sdp import Crypto, RemoteMedia

if TYPE_CHECKING:  # libsrtp (~5 MiB resident) is loaded by the first call that negotiates SRTP
    import pylibsrtp

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.020
FRAME_SAMPLES = 160
DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14}
DTMF_EVENTS["D"] = 15
EVENT_DIGITS = {v: k for k, v in DTMF_EVENTS.items()}
TONE_FRAMES = 5  # 100 ms of tone per digit
END_PACKETS = 3  # RFC 4733 §2.5.1.4: the end of an event is sent three times
GAP_FRAMES = 3  # 60 ms of audio between digits
RTCP_INTERVAL = 5.0  # RFC 3550 §6.2: the minimum interval; the first report at half of it
NTP_EPOCH = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)
RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE = 200, 201, 202, 203
_PROFILES = {  # SDES suite (RFC 4568) -> the name of pylibsrtp's profile constant
    "AES_CM_128_HMAC_SHA1_80": "SRTP_PROFILE_AES128_CM_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32": "SRTP_PROFILE_AES128_CM_SHA1_32",
}


def _libsrtp() -> ModuleType:
    """pylibsrtp, imported on first use: most consoles never negotiate SRTP."""
    import pylibsrtp

    return pylibsrtp


def srtp_session(crypto: Crypto, outbound: bool) -> pylibsrtp.Session:
    srtp = _libsrtp()
    ssrc_type = srtp.Policy.SSRC_ANY_OUTBOUND if outbound else srtp.Policy.SSRC_ANY_INBOUND
    policy = srtp.Policy(
        key=crypto.key,
        ssrc_type=ssrc_type,
        srtp_profile=getattr(srtp.Policy, _PROFILES[crypto.suite]),
    )
    session: pylibsrtp.Session = srtp.Session(policy)
    return session


class ReceptionStats:
    """What we heard from the far end's source: RFC 3550 A.1 (sequence numbers, loss) and A.8
    (interarrival jitter)."""

    def __init__(self) -> None:
        self.reset(None, 0)

    def reset(self, ssrc: int | None, seq: int) -> None:
        self.ssrc = ssrc
        self.base_seq = seq
        self.max_seq = seq
        self.cycles = 0
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter = 0.0
        self.transit: float | None = None
        self.last_sr = 0  # the middle 32 bits of the NTP time in the last SR heard
        self.last_sr_at = 0.0

    def on_packet(self, ssrc: int, seq: int, timestamp: int, arrival: float) -> None:
        if self.ssrc != ssrc:  # a new source (or the first): start counting afresh (A.1)
            self.reset(ssrc, seq)
        else:
            delta = (seq - self.max_seq) & 0xFFFF
            if 0 < delta < 3000:
                if seq < self.max_seq:
                    self.cycles += 1 << 16
                self.max_seq = seq
            elif delta > 0xFFFF - 100:
                pass  # duplicate or reordered: counted as received below, no new maximum
        self.received += 1
        transit = arrival * 8000 - timestamp
        if self.transit is not None:
            d = abs(transit - self.transit)
            self.jitter += (d - self.jitter) / 16
        self.transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.ssrc is not None else 0

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    def report_block(self, now: float) -> bytes:
        """One RFC 3550 §6.4.1 report block about this source."""
        assert self.ssrc is not None
        expected_interval = self.expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = self.expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = (
            0
            if expected_interval <= 0 or lost_interval <= 0
            else ((lost_interval << 8) // expected_interval)
        )
        cumulative = min(self.lost, 0x7FFFFF)
        dlsr = int((now - self.last_sr_at) * 65536) if self.last_sr else 0
        return struct.pack(
            "!IB3sIIII",
            self.ssrc,
            min(fraction, 255),
            cumulative.to_bytes(3, "big"),
            self.extended_max & 0xFFFFFFFF,
            int(self.jitter) & 0xFFFFFFFF,
            self.last_sr,
            dlsr & 0xFFFFFFFF,
        )


class AudioPort(Protocol):
    """A sound device as the media loop sees it: 20 ms frames of 16-bit PCM at 8 kHz."""

    def read_frame(self) -> bytes | None: ...
    def write_frame(self, pcm: bytes) -> None: ...


def bind_rtp_socket(local_ip: str) -> tuple[socket.socket, socket.socket]:
    """UDP sockets for RTP on an even port and RTCP on the next one (RFC 3550 §11), non-blocking."""
    for _ in range(50):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((local_ip, 0))
        port = rtp.getsockname()[1]
        if port % 2 == 0:
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtcp.bind((local_ip, port + 1))
            except OSError:
                rtcp.close()
            else:
                rtp.setblocking(False)
                rtcp.setblocking(False)
                return rtp, rtcp
        rtp.close()
    raise OSError(f"no free RTP/RTCP port pair on {local_ip}")


class RtpStream:
    def __init__(
        self,
        local_ip: str,
        audio: AudioPort | None = None,
        on_dtmf: Callable[[], None] | None = None,
    ) -> None:
        self.on_dtmf = on_dtmf  # called when a key starts going out or one is heard
        self.sock, self.rtcp_sock = bind_rtp_socket(local_ip)
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
        self.sending = True  # False while the far end holds us / we hold, or during early media
        self.octets = 0
        self.stats = ReceptionStats()
        self.rtcp_sent = 0
        self.rtcp_received = 0
        self.next_rtcp = float("inf")
        self.cname = f"outreach@{local_ip}"
        self.srtp_tx: pylibsrtp.Session | None = None
        self.srtp_rx: pylibsrtp.Session | None = None
        self.srtp_failed = 0  # packets that did not authenticate (wrong key, or plain RTP)

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def secure(self) -> bool:
        return self.srtp_tx is not None

    def key(self, ours: Crypto | None, theirs: Crypto | None) -> None:
        """Use SRTP with these keys (our outbound, their inbound); None, None: plain RTP."""
        self.srtp_tx = srtp_session(ours, True) if ours is not None else None
        self.srtp_rx = srtp_session(theirs, False) if theirs is not None else None

    def start(self, remote: RemoteMedia, now: float, *, sending: bool = True) -> None:
        first = self.remote is None
        self.remote = remote
        self.sending = sending
        if first:
            self.next_due = now
            self.next_rtcp = now + RTCP_INTERVAL / 2  # RFC 3550 §6.2: the first at half

    def stop(self) -> None:
        """Stop the media; say goodbye first (a last report and an RTCP BYE, §6.6)."""
        if self.remote is not None and self.rtcp_sock.fileno() >= 0:
            self._send_rtcp(time.time(), bye=True)
        self.remote = None

    def close(self) -> None:
        self.stop()
        self.sock.close()
        self.rtcp_sock.close()

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
        """Send every frame that is due (one normally; a few after a stall, not a burst), and the
        RTCP report when its time has come."""
        if self.remote is None:
            return
        if self.next_rtcp <= now:
            self._send_rtcp(time.time())
            # §6.2: randomised around the interval so that reports do not synchronise.
            self.next_rtcp = now + RTCP_INTERVAL * random.uniform(0.5, 1.5)
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
        if not self.sending:
            self.seq = (self.seq + 1) & 0xFFFF  # §5.1: the gap shows as no packets, not as loss
            return
        header = struct.pack(
            "!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq, timestamp, self.ssrc
        )
        self.seq = (self.seq + 1) & 0xFFFF
        packet = header + payload
        if self.srtp_tx is not None:
            packet = self.srtp_tx.protect(packet)
        try:
            self.sock.sendto(packet, (self.remote.address, self.remote.port))
            self.sent += 1
            self.octets += len(payload)
        except OSError as exc:  # media trouble never ends the call by itself; the log says why
            log.debug("rtp send failed: %s", exc)

    # -- RTCP -----------------------------------------------------------------------------
    def _send_rtcp(self, wall: float, *, bye: bool = False) -> None:
        """A compound packet (§6.1): SR when we sent since the last one, else RR; then SDES with
        our CNAME; and BYE when the call ends."""
        remote = self.remote
        if remote is None:
            return
        blocks = [self.stats.report_block(time.monotonic())] if self.stats.ssrc is not None else []
        if self.sent:
            ntp = wall + NTP_EPOCH
            ntp_hi, ntp_lo = int(ntp), int((ntp % 1) * 2**32) & 0xFFFFFFFF
            body = struct.pack(
                "!IIIIII",
                self.ssrc,
                ntp_hi,
                ntp_lo,
                self.timestamp,
                self.sent & 0xFFFFFFFF,
                self.octets & 0xFFFFFFFF,
            )
            packet = _rtcp(RTCP_SR, len(blocks), body + b"".join(blocks))
        else:
            packet = _rtcp(RTCP_RR, len(blocks), struct.pack("!I", self.ssrc) + b"".join(blocks))
        cname = self.cname.encode()[:255]
        chunk = struct.pack("!IBB", self.ssrc, 1, len(cname)) + cname + b"\x00"
        chunk += b"\x00" * (-len(chunk) % 4)
        packet += _rtcp(RTCP_SDES, 1, chunk)
        if bye:
            packet += _rtcp(RTCP_BYE, 1, struct.pack("!I", self.ssrc))
        if self.srtp_tx is not None:
            packet = self.srtp_tx.protect_rtcp(packet)
        try:
            self.rtcp_sock.sendto(packet, (remote.address, remote.port + 1))
            self.rtcp_sent += 1
        except OSError as exc:
            log.debug("rtcp send failed: %s", exc)

    def on_rtcp_readable(self) -> None:
        for _ in range(16):
            try:
                data = self.rtcp_sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("rtcp receive failed: %s", exc)
                return
            if self.srtp_rx is not None:
                try:
                    data = self.srtp_rx.unprotect_rtcp(data)
                except _libsrtp().Error:
                    self.srtp_failed += 1
                    continue
            if len(data) < 8 or data[0] >> 6 != 2 or data[1] not in range(200, 205):
                continue
            self.rtcp_received += 1
            self._on_rtcp(data)

    def _on_rtcp(self, data: bytes) -> None:
        offset = 0
        while offset + 4 <= len(data):
            pt = data[offset + 1]
            length = (struct.unpack("!H", data[offset + 2 : offset + 4])[0] + 1) * 4
            if pt == RTCP_SR and offset + 20 <= len(data):
                ntp_hi, ntp_lo = struct.unpack("!II", data[offset + 8 : offset + 16])
                self.stats.last_sr = ((ntp_hi & 0xFFFF) << 16) | (ntp_lo >> 16)
                self.stats.last_sr_at = time.monotonic()
            offset += length

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
        if self.srtp_rx is not None:
            try:
                data = self.srtp_rx.unprotect(data)
            except _libsrtp().Error:
                self.srtp_failed += 1
                return
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        self.received += 1
        seq, timestamp, ssrc = struct.unpack("!HII", data[2:12])
        self.stats.on_packet(ssrc, seq, timestamp, time.monotonic())
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


def _rtcp(pt: int, count: int, body: bytes) -> bytes:
    """One RTCP packet: V=2, no padding, `count` (RC/SC), `pt`, length in words minus one."""
    return struct.pack("!BBH", 0x80 | count, pt, (len(body) + 4) // 4 - 1) + body
