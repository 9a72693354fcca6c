"""A console process ends without Python's teardown (most of quitting's time), and never before
what the agent typed is on disk (console/cli/ending.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# A console's last moments: a wrap-up typed a moment ago and not yet written (the writer waits
# out its debounce), the screen's closing thread asked to close the writer — it starts as the
# process ends, as an unmount's does — and the end of the process. An exit hook stands for the
# interpreter's teardown.
_CHILD = """
import atexit, json, sys, threading
from pathlib import Path
from types import SimpleNamespace

from console.cli.ending import end_console_process
from console.drafts import WRAP_UP_CLOSING, DraftWriter

out = Path(sys.argv[1])


class Disk:  # where a DraftStore writes: one file a draft
    def save(self, outcome, form=None):
        (out / f"{outcome.uid}.json").write_text(json.dumps(vars(outcome)))

    def discard(self, uid):
        (out / f"{uid}.json").unlink(missing_ok=True)


writer = DraftWriter(Disk(), lambda error: None, debounce=3600.0)
writer.save_soon(SimpleNamespace(uid="call-1", notes="typed just before quitting"))
go = threading.Event()


def close():
    go.wait()
    writer.close()


threading.Thread(target=close, name=WRAP_UP_CLOSING, daemon=True).start()
atexit.register(lambda: (out / "teardown").write_text("ran"))
go.set()
end_console_process(3)
"""


def test_quitting_writes_the_typed_wrap_up_then_ends_without_the_teardown(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr == ""
    draft = tmp_path / "call-1.json"
    assert draft.exists(), "the process ended before the wrap-up typed was on disk"
    assert json.loads(draft.read_text())["notes"] == "typed just before quitting"
    assert not (tmp_path / "teardown").exists(), "the interpreter's teardown ran"
