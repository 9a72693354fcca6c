"""The agent's headset through `sounddevice`, when it is installed and a device exists.

Without it the softphone still places and signals calls (sending silence) and says plainly that
audio is off, so the agent knows to use a desk phone.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from console.softphone.rtp import FRAME_SAMPLES, AudioPort

log = logging.getLogger(__name__)
BUFFER_FRAMES = 10  # 200 ms: beyond this the oldest frames are dropped, so delay never grows


class SoundDeviceAudio:
    """One duplex stream at 8 kHz, 16-bit mono, 20 ms blocks; frames cross threads in deques."""

    def __init__(self, stream_factory: Any) -> None:
        self._mic: deque[bytes] = deque(maxlen=BUFFER_FRAMES)
        self._speaker: deque[bytes] = deque(maxlen=BUFFER_FRAMES)
        self._stream = stream_factory(
            samplerate=8000,
            channels=1,
            dtype="int16",
            blocksize=FRAME_SAMPLES,
            callback=self._callback,
        )
        self._stream.start()

    def _callback(self, indata: Any, outdata: Any, frames: int, time: Any, status: Any) -> None:
        self._mic.append(bytes(indata))
        frame = self._speaker.popleft() if self._speaker else b"\x00" * (2 * frames)
        outdata[:] = frame.ljust(2 * frames, b"\x00")[: 2 * frames]

    def read_frame(self) -> bytes | None:
        return self._mic.popleft() if self._mic else None

    def write_frame(self, pcm: bytes) -> None:
        self._speaker.append(pcm)

    def close(self) -> None:
        try:
            self._stream.stop()
            self._stream.close()
        except Exception as exc:  # a device unplugged mid-call must not break hang-up
            log.warning("closing the sound device failed: %s", exc)


def open_audio(enabled: bool) -> tuple[AudioPort | None, str]:
    """(the device, "on") or (None, a sentence saying why audio is off)."""
    if not enabled:
        return None, "audio off: turned off in config ([sip].audio = false)"
    try:
        # The optional extra `audio` (pip install '.[audio]'); not a hard dependency, so that a
        # console without a headset, or without PortAudio, still places calls.
        import sounddevice  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        why = "audio off: sounddevice is not installed (pip install '.[audio]')"
        log.warning("%s", why)
        return None, why
    except OSError as exc:  # the PortAudio library is missing
        why = f"audio off: no PortAudio library ({exc})"
        log.warning("%s", why)
        return None, why
    try:
        sounddevice.query_devices(kind="input")
        sounddevice.query_devices(kind="output")
        return SoundDeviceAudio(sounddevice.RawStream), "on"
    except Exception as exc:
        log.info("no usable sound device: %s", exc)
        return None, "audio off: no sound device found"
