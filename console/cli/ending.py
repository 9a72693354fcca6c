"""How a console process ends once its app has closed: what must reach the disk is waited for,
then the process exits without Python's teardown.

Quitting a console (ctrl+q, `outreach console` or `demo`) spent much of its time after the app
and the database were closed: the interpreter's last garbage collection walked every object the
shift made (after sign-in they are kept out of the collector's walks, and closing puts them back)
and then every module was torn down. In tmux on the demo database: 0.36-0.39 s from the key to the
process's end at load 1-2, 0.22-0.23 s without the teardown; at load 4-8 the teardown alone was
0.2-0.47 s of 0.45-0.83 s (CPU-bound: it grows with the load). The rest is Textual's own (its
input thread stops after two 0.1 s polls). Nothing in that teardown writes anything the console
keeps: the database is closed by then (Store.close), and the threads still alive are daemon
threads that the same teardown stops wherever they stand.

What must not be cut short is waited for first, each screen's draft writers: a wrap-up and the
script's progress are written on a thread of their own (console/drafts.py), asked to close when
their screen is unmounted, on a closing thread so the event loop never waits on a disk. Their
closing threads (and then any draft writer still running) are joined here, all within
DRAFTS_WAIT_S, before the process exits: what the agent typed is on disk first, as the README
promises, instead of racing the interpreter's teardown as it did.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from contextlib import suppress
from typing import NoReturn

from console.drafts import WORKSPACE_CLOSING, WRAP_UP_CLOSING, WRITER_THREAD

# Threads that write an agent's drafts, by the names the screens and console/drafts.py give them:
# a screen's closing thread first (it closes its writers), then the writers themselves.
CLOSING_THREADS = (WRAP_UP_CLOSING, WORKSPACE_CLOSING)
WRITER_THREADS = (WRITER_THREAD,)
# DraftWriter.close waits this long for its disk; so does quitting, for all of them together.
DRAFTS_WAIT_S = 5.0


def wait_for_drafts(timeout: float = DRAFTS_WAIT_S) -> bool:
    """Join the threads still writing drafts (closing ones first), at most `timeout` seconds in
    all; True when none is left running."""
    deadline = time.monotonic() + timeout
    for names in (CLOSING_THREADS, WRITER_THREADS):
        for thread in threading.enumerate():
            if thread.name in names and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
    return not any(
        t.is_alive() and t.name in CLOSING_THREADS + WRITER_THREADS for t in threading.enumerate()
    )


def end_console_process(code: int) -> NoReturn:
    """The drafts on disk, the log and the terminal's output flushed, then exit with `code`
    without the interpreter's teardown. Only for a process that ran the console's app (never in
    a process that goes on, such as a test's)."""
    if not wait_for_drafts():
        logging.getLogger(__name__).warning(
            "a draft writer was still running after %.0f s at exit", DRAFTS_WAIT_S
        )
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # closed, or the reader went away: nothing to say
            stream.flush()
    os._exit(code)
