"""SIP messages (RFC 3261 §7): parse what arrives on the wire, build what we send.

Only what an outbound-calling user agent needs: requests and responses over UDP, compact header
names, comma-separated header values, name-addr / addr-spec with parameters.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

# RFC 3261 §7.3.3 compact forms.
COMPACT = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
}
# Headers whose values may be comma-separated lists (§7.3.1).
LIST_HEADERS = {"via", "route", "record-route", "contact"}
MAGIC_COOKIE = "z9hG4bK"  # §8.1.1.7: branches that start with it are RFC 3261 branches


class SipParseError(ValueError):
    pass


def token(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(10)


def split_commas(value: str) -> list[str]:
    """Split a header value on commas that are outside quotes and angle brackets."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        elif ch == "," and not quoted and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


def parse_params(text: str) -> dict[str, str]:
    """';a=b;c' → {'a': 'b', 'c': ''} (names lower-cased)."""
    params: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return params


@dataclass(frozen=True)
class SipUri:
    scheme: str
    user: str
    host: str
    port: int | None
    params: str = ""  # ';transport=udp;lr' as written

    @property
    def hostport(self) -> tuple[str, int]:
        return self.host, self.port or (5061 if self.scheme == "sips" else 5060)

    def param(self, name: str) -> str:
        return parse_params(self.params).get(name.lower(), "").lower()

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}:{user}{self.host}{port}{self.params}"


_URI = re.compile(
    r"^(?P<scheme>sips?):(?:(?P<user>[^@;?]+)@)?(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-_]+)"
    r"(?::(?P<port>\d{1,5}))?(?P<params>;[^?]*)?(?:\?.*)?$"
)


def parse_uri(text: str) -> SipUri:
    m = _URI.match(text.strip())
    if m is None:
        raise SipParseError(f"not a SIP URI: {text!r} (expected sip:user@host[:port])")
    port = int(m["port"]) if m["port"] else None
    if port is not None and not 0 < port < 65536:
        raise SipParseError(f"port out of range in {text!r}")
    return SipUri(m["scheme"].lower(), m["user"] or "", m["host"], port, m["params"] or "")


@dataclass(frozen=True)
class NameAddr:
    display: str
    uri: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return self.params.get("tag", "")


def parse_name_addr(value: str) -> NameAddr:
    value = value.strip()
    if "<" in value:
        display, _, rest = value.partition("<")
        uri, _, after = rest.partition(">")
        return NameAddr(display.strip().strip('"'), uri.strip(), parse_params(after))
    uri, _, after = value.partition(";")
    return NameAddr("", uri.strip(), parse_params(after))


@dataclass
class SipMessage:
    start_line: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    # -- what kind of message -------------------------------------------------------------
    @property
    def is_request(self) -> bool:
        return not self.start_line.startswith("SIP/")

    @property
    def method(self) -> str:
        """The request's method, or for a response the method its CSeq names."""
        if self.is_request:
            return self.start_line.split(" ", 1)[0].upper()
        return self.cseq[1]

    @property
    def request_uri(self) -> str:
        return self.start_line.split(" ")[1]

    @property
    def status(self) -> int:
        return int(self.start_line.split(" ")[1]) if not self.is_request else 0

    @property
    def reason(self) -> str:
        parts = self.start_line.split(" ", 2)
        return parts[2] if len(parts) > 2 and not self.is_request else ""

    # -- headers --------------------------------------------------------------------------
    def get(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        values: list[str] = []
        for key, value in self.headers:
            if key.lower() == lname:
                values.extend(split_commas(value) if lname in LIST_HEADERS else [value])
        return values

    def add(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.headers.append((name, value))

    def remove(self, name: str) -> None:
        lname = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lname]

    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        raw = (self.get("CSeq") or "0 ?").split()
        try:
            return int(raw[0]), raw[1].upper() if len(raw) > 1 else "?"
        except ValueError:
            return 0, "?"

    @property
    def branch(self) -> str:
        vias = self.get_all("Via")
        if not vias:
            return ""
        return parse_params(vias[0].partition(";")[2]).get("branch", "")

    @property
    def from_(self) -> NameAddr:
        return parse_name_addr(self.get("From") or "")

    @property
    def to(self) -> NameAddr:
        return parse_name_addr(self.get("To") or "")

    def encode(self) -> bytes:
        lines = [self.start_line]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body

    def summary(self) -> str:
        """One line for the log: identifiers only, never numbers or names of people."""
        what = self.method if self.is_request else f"{self.status} {self.reason}"
        return f"{what} (CSeq {' '.join(map(str, self.cseq))})"


def parse(data: bytes) -> SipMessage:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("message head is not UTF-8") from exc
    raw_lines = text.replace("\r\n", "\n").split("\n")
    while raw_lines and not raw_lines[0].strip():  # keep-alive CRLFs before a message
        raw_lines.pop(0)
    if not raw_lines:
        raise SipParseError("empty message")
    start = raw_lines[0].strip()
    if not (start.startswith("SIP/2.0 ") or start.endswith(" SIP/2.0")):
        raise SipParseError(f"not a SIP/2.0 start line: {start[:60]!r}")
    headers: list[tuple[str, str]] = []
    for line in raw_lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation (§7.3.1)
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name = name.strip()
        headers.append((COMPACT.get(name.lower(), name) if len(name) == 1 else name, value.strip()))
    msg = SipMessage(start, headers, b"")
    length = msg.get("Content-Length")
    if length is not None and length.strip().isdigit():
        body = body[: int(length)]
    msg.body = body
    if not msg.is_request:
        try:
            int(start.split(" ")[1])
        except (IndexError, ValueError):
            raise SipParseError(f"bad status line: {start[:60]!r}") from None
    return msg


def request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> SipMessage:
    return SipMessage(f"{method} {uri} SIP/2.0", list(headers), body)


def response_to(req: SipMessage, status: int, reason: str, *, to_tag: str = "") -> SipMessage:
    """A response that copies Via, From, To, Call-ID and CSeq (§8.2.6.2)."""
    headers = [(k, v) for k, v in req.headers if k.lower() == "via"]
    to = req.get("To") or ""
    if to_tag and status > 100 and "tag=" not in to:
        to = f"{to};tag={to_tag}"
    headers += [("From", req.get("From") or ""), ("To", to), ("Call-ID", req.call_id)]
    headers.append(("CSeq", req.get("CSeq") or ""))
    return SipMessage(f"SIP/2.0 {status} {reason}", headers)
