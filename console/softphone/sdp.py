"""The SDP offer we send (RFC 4566, RFC 3264) and what we need from the answer.

We offer G.711 µ-law and A-law with RFC 4733 telephone-events; the answer picks the codec.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_PT = 101
CODECS = {0: "PCMU", 8: "PCMA"}


class SdpError(ValueError):
    pass


@dataclass(frozen=True)
class RemoteMedia:
    address: str
    port: int
    codec_pt: int  # 0 PCMU or 8 PCMA
    event_pt: int | None  # telephone-event payload type, None when the far end takes none

    @property
    def codec(self) -> str:
        return CODECS[self.codec_pt]


def offer(local_ip: str, rtp_port: int, session_id: int, version: int) -> bytes:
    lines = [
        "v=0",
        f"o=outreach {session_id} {version} IN IP4 {local_ip}",
        "s=Outreach Console",
        f"c=IN IP4 {local_ip}",
        "t=0 0",
        f"m=audio {rtp_port} RTP/AVP 0 8 {EVENT_PT}",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        f"a=rtpmap:{EVENT_PT} telephone-event/8000",
        f"a=fmtp:{EVENT_PT} 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def parse_answer(body: bytes) -> RemoteMedia:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("the answer's SDP is not text") from exc
    session_addr = ""
    media_addr = ""
    port = -1
    payloads: list[int] = []
    rtpmap: dict[int, str] = {}
    in_audio = False
    for raw in text.splitlines():
        line = raw.strip()
        kind, _, value = line.partition("=")
        if kind == "m":
            fields = value.split()
            in_audio = bool(fields) and fields[0] == "audio" and port < 0
            if in_audio:
                try:
                    port = int(fields[1].split("/")[0])
                    payloads = [int(f) for f in fields[3:] if f.isdigit()]
                except (IndexError, ValueError) as exc:
                    raise SdpError(f"bad media line: {line!r}") from exc
        elif kind == "c":
            addr = value.split()[-1].split("/")[0] if value.split() else ""
            if in_audio:
                media_addr = addr
            elif port < 0:
                session_addr = addr
        elif kind == "a" and in_audio and value.startswith("rtpmap:"):
            pt, _, enc = value[len("rtpmap:") :].partition(" ")
            if pt.isdigit():
                rtpmap[int(pt)] = enc.split("/")[0].lower()
    if port <= 0:
        raise SdpError("the answer has no usable audio stream (port 0 or no m=audio)")
    address = media_addr or session_addr
    if not address:
        raise SdpError("the answer names no connection address (c=)")
    names = {pt: rtpmap.get(pt, CODECS.get(pt, "").lower()) for pt in payloads}
    codec = next((pt for pt in payloads if names[pt] in ("pcmu", "pcma") and pt in (0, 8)), None)
    if codec is None:
        raise SdpError("the far end accepts neither PCMU nor PCMA")
    event = next((pt for pt in payloads if names[pt] == "telephone-event"), None)
    return RemoteMedia(address, port, codec, event)
