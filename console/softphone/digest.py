"""HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616 qop, RFC 8760 SHA-256).

A 401 carries WWW-Authenticate and is answered with Authorization; a 407 (a proxy or trunk)
carries Proxy-Authenticate and is answered with Proxy-Authorization.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from console.softphone.message import SipMessage, split_commas

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class DigestError(ValueError):
    pass


@dataclass(frozen=True)
class Challenge:
    header: str  # the header to answer with: Authorization or Proxy-Authorization
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def nonce(self) -> str:
        return self.params.get("nonce", "")

    @property
    def stale(self) -> bool:
        return self.params.get("stale", "").lower() == "true"


def parse_challenge(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"unsupported authentication scheme {scheme!r}")
    params: dict[str, str] = {}
    for part in split_commas(rest):
        name, _, val = part.partition("=")
        params[name.strip().lower()] = val.strip().strip('"')
    return params


def challenges_in(response: SipMessage) -> list[Challenge]:
    """The digest challenges a 401/407 carries, the ones we can answer first (SHA-256, then MD5)."""
    found: list[Challenge] = []
    pairs = (("WWW-Authenticate", "Authorization"), ("Proxy-Authenticate", "Proxy-Authorization"))
    for challenge_header, answer_header in pairs:
        for raw in response.get_all(challenge_header):
            try:
                found.append(Challenge(answer_header, parse_challenge(raw)))
            except DigestError:
                continue
    usable = [c for c in found if _algorithm(c)[0] in _HASHES]
    return sorted(usable, key=lambda c: _algorithm(c)[0] != "SHA-256")


def _algorithm(challenge: Challenge) -> tuple[str, bool]:
    algo = challenge.params.get("algorithm", "MD5").upper()
    sess = algo.endswith("-SESS")
    return (algo[: -len("-SESS")] if sess else algo), sess


def answer(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    body: bytes = b"",
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The value of the Authorization/Proxy-Authorization header for this request."""
    algo, sess = _algorithm(challenge)
    if algo not in _HASHES:
        raise DigestError(f"unsupported digest algorithm {algo!r}")
    hfunc = _HASHES[algo]

    def h(text: str | bytes) -> str:
        return hfunc(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()

    p = challenge.params
    realm, nonce = p.get("realm", ""), p.get("nonce", "")
    offered = [q.strip().lower() for q in p.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in offered else ("auth-int" if "auth-int" in offered else "")
    cnonce = cnonce or secrets.token_hex(8)
    ha1 = h(f"{username}:{realm}:{password}")
    if sess:
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}:{h(body)}") if qop == "auth-int" else h(f"{method}:{uri}")
    nc_text = f"{nc:08x}"
    if qop:
        response = h(f"{ha1}:{nonce}:{nc_text}:{cnonce}:{qop}:{ha2}")
    else:
        response = h(f"{ha1}:{nonce}:{ha2}")
    fields = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        f"algorithm={p.get('algorithm', 'MD5')}",
    ]
    if "opaque" in p:
        fields.append(f'opaque="{p["opaque"]}"')
    if qop:
        fields += [f"qop={qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
    return "Digest " + ", ".join(fields)
