"""What every screen of the console shares: the typed app, and one path from a failed worker to a
message on screen and a line in the log."""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, TypeVar

from textual._styles_cache import StylesCache
from textual.screen import Screen
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from console.softphone.errors import SoftphoneError
from queues.errors import DatabaseBusy, DatabaseUnavailable, NotCallable, OutreachError

if TYPE_CHECKING:
    from console.app import OutreachApp

log = logging.getLogger("console.failures")
UNREACHABLE = "the database is unreachable — your work is kept"
BUSY = "the database is busy with another writer"
ResultType = TypeVar("ResultType")


def failure_message(error: BaseException | None) -> str:
    """The sentence a person reads for a worker's failure (the log gets the type and where)."""
    # Never the database's address (host, port, user, name) on screen: the log has it.
    if isinstance(error, DatabaseBusy):
        return f"{BUSY}; try again in a moment — nothing was lost"
    if isinstance(error, DatabaseUnavailable):
        return UNREACHABLE
    if isinstance(error, OutreachError):
        return str(error)  # the domain's own sentence: a person can act on it
    if isinstance(error, SoftphoneError):
        return f"Softphone: {error}"
    name = type(error).__name__ if error is not None else "no error"
    return f"Something went wrong ({name}); nothing was lost. Try again."


def log_failure(group: str, error: BaseException | None) -> None:
    """Type and frames only: an exception's text may carry a statement's values (patient data)."""
    if isinstance(error, DatabaseUnavailable):  # where and why, for whoever runs the database
        log.warning("%s worker: %s", group, error)
        return
    if error is None or isinstance(error, OutreachError):
        return  # an expected refusal, worded by the domain; the audit trail has what matters
    where = " < ".join(
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
        for frame in reversed(traceback.extract_tb(error.__traceback__))
    )
    log.error("%s worker failed: %s at %s", group, type(error).__name__, where or "?")


def let_go_of_closed_watchers(watched: object) -> int:
    """Drop the watchers of widgets already removed from `watched` (the app): Textual keeps each
    (widget, callback) a `watch()` made until the watched attribute next changes, so every wrap-up's
    notes TextArea (it watches the app's theme, which never changes in a shift) stayed alive with
    its screen's ~55 widgets and their render caches: +9.4 MiB over 40 patients. Returns how many
    were dropped."""
    watchers: dict[str, list[tuple[object, object]]] = getattr(watched, "__watchers", {})
    dropped = 0
    for entries in watchers.values():
        kept = [
            (node, callback)
            for node, callback in entries
            if not (getattr(node, "_closing", False) or getattr(node, "_closed", False))
        ]
        dropped += len(entries) - len(kept)
        entries[:] = kept
    return dropped


def let_go_of_render_caches() -> None:
    """Empty the cache Textual keeps of widgets' rendered lines past their widgets' lives: its
    `StylesCache.get_inner_outer` is an lru_cache(1024) on an instance method, so it kept the
    `StylesCache` of up to 1,024 removed widgets, each with the Strips of its lines and their
    small caches (Textualize/textual#6665, open for 8.2.8): +7,300 Strips and +51,000 FIFOCaches in
    20 patients, a wrap-up screen's worth each. Live widgets hold their own; the entry (two
    Styles from two colours) is made again on their next render."""
    clear = getattr(StylesCache.get_inner_outer, "cache_clear", None)
    if clear is not None:  # gone when Textual fixes it
        clear()


class WorkerFailures:
    """Workers raise; `Worker.StateChanged` (posted to the node that started the worker) turns
    every failure into one clear message and a log line. Override `worker_failed` to also put
    the screen's state back for the group that failed."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR:
            return
        worker = event.worker
        log_failure(worker.group, worker.error)
        self.worker_failed(worker.group, worker.error, failure_message(worker.error))

    def worker_failed(self, group: str, error: BaseException | None, message: str) -> None:
        assert isinstance(self, Widget)
        if isinstance(error, NotCallable | DatabaseBusy):
            self.notify(message, severity="warning", timeout=10)
        else:
            self.notify(message, severity="error", timeout=10)


class OutreachScreen(WorkerFailures, Screen[ResultType]):
    @property
    def outreach(self) -> OutreachApp:
        from console.app import OutreachApp

        assert isinstance(self.app, OutreachApp)
        return self.app
