"""How many refusals of one browser address the audit itemizes in a minute."""

from __future__ import annotations

import time
from collections.abc import Callable


class RefusalCounter:
    """Refusals are audited one row each, up to PER_MINUTE per source in a minute; past that a
    page looping on the socket would write the audit as fast as it can refuse, so the rest are
    counted and written as one row when the minute is over (or the server stops)."""

    PER_MINUTE = 20

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, list[float]] = {}  # source -> [start, itemized, counted]
        self._done: list[tuple[str, int]] = []  # minutes over, their counts not yet written

    def count(self, source: str) -> bool:
        """True: audit this refusal as a row of its own."""
        now = self._clock()
        window = self._windows.get(source)
        if window is None or now - window[0] >= 60:
            if window is not None and window[2]:
                self._done.append((source, int(window[2])))
            window = self._windows[source] = [now, 0, 0]
        if window[1] < self.PER_MINUTE:
            window[1] += 1
            return True
        window[2] += 1
        return False

    def overflowed(self, *, everything: bool = False) -> list[tuple[str, int]]:
        """(source, refusals not itemized) for the minutes that are over; all with everything."""
        now = self._clock()
        for source, window in list(self._windows.items()):
            if everything or now - window[0] >= 60:
                if window[2]:
                    self._done.append((source, int(window[2])))
                del self._windows[source]
        done, self._done = self._done, []
        return done
