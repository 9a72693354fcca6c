"""SDP for the softphone (RFC 4566): our offers and answers (RFC 3264), SDES keys (RFC 4568).

We offer G.711 µ-law and A-law with RFC 4733 telephone-events, as RTP/AVP or, when the account
wants SRTP, RTP/SAVP with `a=crypto` lines. One `LocalSession` per call keeps the `o=` line: the
same session id for the whole call, the version raised by one each time what we say changes
(RFC 3264 §8; §5: an unchanged description keeps its version).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field

EVENT_PT = 101
CODECS = {0: "PCMU", 8: "PCMA"}
# SDES suites we take (RFC 4568 §6.2), best first; libsrtp's profiles of the same names.
SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
KEY_SALT_BYTES = 30  # 128-bit master key + 112-bit master salt
# What we answer to the direction the far end offers (RFC 3264 §6.1).
ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


class SdpError(ValueError):
    pass


@dataclass(frozen=True)
class Crypto:
    """One `a=crypto:<tag> <suite> inline:<key||salt>` line."""

    tag: int
    suite: str
    key: bytes  # master key || master salt, 30 bytes

    def line(self) -> str:
        return f"a=crypto:{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


def new_crypto(tag: int = 1, suite: str = SUITES[0]) -> Crypto:
    return Crypto(tag, suite, secrets.token_bytes(KEY_SALT_BYTES))


@dataclass(frozen=True)
class RemoteMedia:
    address: str
    port: int
    codec_pt: int  # 0 PCMU or 8 PCMA
    event_pt: int | None  # telephone-event payload type, None when the far end takes none
    direction: str = "sendrecv"  # as the far end wrote it
    secure: bool = False  # RTP/SAVP
    crypto: tuple[Crypto, ...] = ()  # the keys the far end offers or answered with
    session_id: str = ""
    version: str = ""

    @property
    def codec(self) -> str:
        return CODECS[self.codec_pt]

    @property
    def holding(self) -> bool:
        """The far end stops sending to us or listening: a hold (RFC 3264 §8.4; the old form,
        c=0.0.0.0, RFC 2543)."""
        return self.direction in ("sendonly", "inactive") or self.address == "0.0.0.0"

    @property
    def we_may_send(self) -> bool:
        return self.direction in ("sendrecv", "recvonly") and self.address != "0.0.0.0"


@dataclass
class LocalSession:
    """What we say about our media for one call: the `o=` line's id and version, our address,
    port, our SRTP key, and the direction we last gave."""

    address: str
    port: int
    secure: bool = False  # offer RTP/SAVP (SRTP required)
    crypto_offer: bool = False  # put a=crypto lines in the offer (SRTP required or optional)
    session_id: int = field(default_factory=lambda: secrets.randbelow(10**9) + 10**6)
    version: int = 0
    last_body: bytes = b""
    direction: str = "sendrecv"
    keys: dict[str, Crypto] = field(default_factory=dict)  # suite → our key for it

    def key_for(self, suite: str, tag: int) -> Crypto:
        mine = self.keys.get(suite)
        if mine is None:
            mine = self.keys[suite] = new_crypto(tag, suite)
        return Crypto(tag, suite, mine.key)

    def offer(self, direction: str = "sendrecv") -> bytes:
        self.direction = direction
        fmts = [0, 8, EVENT_PT]
        lines = [
            f"m=audio {self.port} {'RTP/SAVP' if self.secure else 'RTP/AVP'} "
            + " ".join(map(str, fmts)),
            *_rtpmaps(fmts),
        ]
        if self.crypto_offer:
            lines += [self.key_for(suite, i + 1).line() for i, suite in enumerate(SUITES)]
        lines += ["a=ptime:20", f"a={direction}"]
        return self._body(lines)

    def answer(self, remote: RemoteMedia, crypto: Crypto | None, direction: str) -> bytes:
        """Our answer to the far end's offer `remote`: its codec, its event type, the crypto
        suite chosen from its offer (with our key), the direction RFC 3264 §6.1 gives."""
        self.direction = direction
        fmts = [remote.codec_pt] + ([remote.event_pt] if remote.event_pt is not None else [])
        profile = "RTP/SAVP" if remote.secure else "RTP/AVP"
        lines = [f"m=audio {self.port} {profile} " + " ".join(map(str, fmts))]
        lines += _rtpmaps(fmts, remote.event_pt)
        if crypto is not None:
            lines.append(self.key_for(crypto.suite, crypto.tag).line())
        lines += ["a=ptime:20", f"a={direction}"]
        return self._body(lines)

    def _body(self, media: list[str]) -> bytes:
        def text(version: int) -> bytes:
            lines = [
                "v=0",
                f"o=outreach {self.session_id} {version} IN IP4 {self.address}",
                "s=Outreach Console",
                f"c=IN IP4 {self.address}",
                "t=0 0",
                *media,
            ]
            return ("\r\n".join(lines) + "\r\n").encode("ascii")

        if self.last_body and text(self.version) == self.last_body:
            return self.last_body  # unchanged: same version (RFC 3264 §8)
        if self.last_body:
            self.version += 1
        self.last_body = text(self.version)
        return self.last_body


def _rtpmaps(fmts: list[int], event_pt: int | None = EVENT_PT) -> list[str]:
    lines: list[str] = []
    for pt in fmts:
        if pt in CODECS:
            lines.append(f"a=rtpmap:{pt} {CODECS[pt]}/8000")
        elif pt == event_pt:
            lines += [f"a=rtpmap:{pt} telephone-event/8000", f"a=fmtp:{pt} 0-16"]
    return lines


def parse(body: bytes) -> RemoteMedia:
    """The first audio stream of an offer or answer."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("the SDP is not text") from exc
    session_addr = media_addr = ""
    session_dir = media_dir = ""
    session_id = version = ""
    port = -1
    proto = ""
    payloads: list[int] = []
    rtpmap: dict[int, str] = {}
    crypto: list[Crypto] = []
    in_audio = False
    for raw in text.splitlines():
        kind, _, value = raw.strip().partition("=")
        if kind == "o":
            fields = value.split()
            if len(fields) >= 3:
                session_id, version = fields[1], fields[2]
        elif kind == "m":
            fields = value.split()
            in_audio = bool(fields) and fields[0] == "audio" and port < 0
            if in_audio:
                try:
                    port = int(fields[1].split("/")[0])
                    proto = fields[2].upper()
                    payloads = [int(f) for f in fields[3:] if f.isdigit()]
                except (IndexError, ValueError) as exc:
                    raise SdpError(f"bad media line: {raw.strip()!r}") from exc
            continue
        if port >= 0 and not in_audio:
            continue  # attributes of a stream we do not take (video)
        if kind == "c":
            addr = value.split()[-1].split("/")[0] if value.split() else ""
            if in_audio:
                media_addr = addr
            else:
                session_addr = addr
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in ANSWER_DIRECTION:
                if in_audio:
                    media_dir = name
                else:
                    session_dir = name
            elif in_audio and name == "rtpmap":
                pt, _, enc = arg.partition(" ")
                if pt.isdigit():
                    rtpmap[int(pt)] = enc.split("/")[0].lower()
            elif in_audio and name == "crypto":
                found = _crypto(arg)
                if found is not None:
                    crypto.append(found)
    if port <= 0:
        raise SdpError("no usable audio stream (port 0 or no m=audio)")
    address = media_addr or session_addr
    if not address:
        raise SdpError("no connection address (c=)")
    names = {pt: rtpmap.get(pt, CODECS.get(pt, "").lower()) for pt in payloads}
    codec = next((pt for pt in payloads if names[pt] in ("pcmu", "pcma") and pt in (0, 8)), None)
    if codec is None:
        raise SdpError("the far end takes neither PCMU nor PCMA")
    event = next((pt for pt in payloads if names[pt] == "telephone-event"), None)
    return RemoteMedia(
        address,
        port,
        codec,
        event,
        direction=media_dir or session_dir or "sendrecv",
        secure=proto == "RTP/SAVP",
        crypto=tuple(crypto),
        session_id=session_id,
        version=version,
    )


def parse_answer(body: bytes) -> RemoteMedia:
    return parse(body)


def _crypto(arg: str) -> Crypto | None:
    """`1 AES_CM_128_HMAC_SHA1_80 inline:KEY[|lifetime][|MKI:len]` → Crypto, or None for a suite,
    key form or session parameter we do not take (RFC 4568 §9.1)."""
    fields = arg.split()
    if len(fields) < 3 or not fields[0].isdigit() or fields[1] not in SUITES:
        return None
    if len(fields) > 3:
        return None  # session parameters (UNENCRYPTED_SRTP, KDR…): not offered by us, refuse
    method, _, key = fields[2].partition(":")
    if method != "inline":
        return None
    key = key.split("|")[0]
    try:
        raw = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
    except ValueError:
        return None
    if len(raw) != KEY_SALT_BYTES:
        return None
    return Crypto(int(fields[0]), fields[1], raw)


def choose_crypto(remote: RemoteMedia) -> Crypto | None:
    """The far end's best offered crypto line we can take."""
    for suite in SUITES:
        for c in remote.crypto:
            if c.suite == suite:
                return c
    return None
