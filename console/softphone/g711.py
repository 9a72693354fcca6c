"""G.711 µ-law and A-law (ITU-T G.711), in plain Python: `audioop` is gone from Python 3.13.

Decoding is a 256-entry table; encoding a 65536-entry table built on first use. 16-bit signed
little-endian PCM at 8 kHz in and out.
"""

from __future__ import annotations

import sys
from array import array
from functools import cache

ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5
_BIAS = 0x84


def _ulaw_encode(sample: int) -> int:
    # Sun's g711.c on a 14-bit magnitude, as every G.711 implementation (and audioop) does it.
    pcm = sample >> 2
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + (_BIAS >> 2)
    seg_end = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
    seg = next((i for i, end in enumerate(seg_end) if pcm <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def _ulaw_decode(code: int) -> int:
    code = ~code & 0xFF
    t = ((code & 0x0F) << 3) + _BIAS
    t <<= (code & 0x70) >> 4
    return _BIAS - t if code & 0x80 else t - _BIAS


def _alaw_encode(sample: int) -> int:
    # Sun's g711.c works on 13-bit magnitudes; the table below reproduces it from 16-bit input.
    pcm = sample >> 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg_end = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
    seg = next((i for i, end in enumerate(seg_end) if pcm <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= (pcm >> 1) & 0x0F if seg < 2 else (pcm >> seg) & 0x0F
    return aval ^ mask


def _alaw_decode(code: int) -> int:
    code ^= 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if code & 0x80 else -t


ULAW_DECODE = tuple(_ulaw_decode(c) for c in range(256))
ALAW_DECODE = tuple(_alaw_decode(c) for c in range(256))


@cache
def _encode_table(law: str) -> bytes:
    encode = _ulaw_encode if law == "PCMU" else _alaw_encode
    # Index by the unsigned 16-bit value of the sample.
    return bytes(encode(i if i < 0x8000 else i - 0x10000) for i in range(0x10000))


def encode(pcm: bytes, law: str) -> bytes:
    samples = array("h", pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    table = _encode_table(law)
    return bytes(table[s & 0xFFFF] for s in samples)


def decode(payload: bytes, law: str) -> bytes:
    table = ULAW_DECODE if law == "PCMU" else ALAW_DECODE
    samples = array("h", (table[b] for b in payload))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def silence(law: str, samples: int = 160) -> bytes:
    return bytes([ULAW_SILENCE if law == "PCMU" else ALAW_SILENCE]) * samples
