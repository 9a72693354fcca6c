"""Wrap-up drafts on local disk: what an agent entered survives a crash or a lost database link.

A draft is written (atomically, mode 0600) before the save is sent and removed once the database
has the attempt; the attempt's uid makes a re-send after a crash store it only once.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from queues.views.outcome import ActionRequest, Outcome

_DATETIMES = {"started_at", "ended_at", "connected_at", "callback_at"}


class DraftStore:
    def __init__(self, root: Path, username: str) -> None:
        self.dir = root / username
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def save(self, outcome: Outcome) -> None:
        data = {
            k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(outcome).items()
        }
        target = self.dir / f"{outcome.uid}.json"
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def discard(self, uid: str) -> None:
        (self.dir / f"{uid}.json").unlink(missing_ok=True)

    def pending(self) -> list[Outcome]:
        out = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                raw: dict[str, Any] = json.loads(path.read_text())
                known = {f.name for f in fields(Outcome)}
                values: dict[str, Any] = {
                    k: (datetime.fromisoformat(v) if k in _DATETIMES and v else v)
                    for k, v in raw.items()
                    if k in known
                }
                # JSON gives the follow-up actions back as plain objects.
                values["actions"] = tuple(
                    a if isinstance(a, ActionRequest) else ActionRequest(**a)
                    for a in values.get("actions", ())
                )
                out.append(Outcome(**values))
            except (ValueError, TypeError):
                continue  # a torn file from a crash mid-write: the .tmp never replaced it
        return out


class DraftWriter:
    """Saves and discards drafts on one background thread, in the order they were asked for: the
    UI thread only enqueues (never waits on a lock or a disk), and a later save can never be
    overwritten by an earlier one. `on_error` is called on the writer thread with a failed
    write's OSError."""

    def __init__(self, store: DraftStore, on_error: Callable[[OSError], None]) -> None:
        self.store = store
        self._on_error = on_error
        self._jobs: queue.SimpleQueue[tuple[str, Outcome | str] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="draft-writer", daemon=True)
        self._thread.start()

    def save(self, outcome: Outcome) -> None:
        self._jobs.put(("save", outcome))

    def discard(self, uid: str) -> None:
        self._jobs.put(("discard", uid))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop (from a worker or at exit: it may wait on the disk)."""
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            kind, what = job
            try:
                if kind == "save":
                    assert isinstance(what, Outcome)
                    self.store.save(what)
                else:
                    assert isinstance(what, str)
                    self.store.discard(what)
            except OSError as exc:
                self._on_error(exc)
