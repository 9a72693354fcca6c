"""The draft journal (console/drafts.py) on a real folder: a burst of changes is one write of the
newest, a saved draft cannot come back, the form's own fields read back, a torn write is ignored."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from console.drafts import DraftStore, DraftWriter, FormState
from queues.outcomes import ActionRequest, Outcome

AT = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
DB = "6f1c2a43-8a1e-4e0b-9d55-0c3f4b7e2a10"  # a database's id: drafts are kept under it
HOUR = 3600.0  # a debounce no test waits out: only flush() or close() writes


class CountingStore(DraftStore):
    """A real store that also counts its writes."""

    def __init__(self, root: Path, username: str) -> None:
        super().__init__(root, DB, username)
        self.writes: list[str] = []

    def save(self, outcome: Outcome, form: FormState | None = None) -> None:
        super().save(outcome, form)
        self.writes.append(outcome.notes)


def _outcome(notes: str, uid: str = "u-1") -> Outcome:
    return Outcome(
        uid=uid,
        patient_id=7,
        lease_token="t",
        user_id=3,
        disposition="callback_requested",
        started_at=AT,
        ended_at=AT,
        notes=notes,
        callback_mine=False,
        actions=(ActionRequest("refill_request", 12, {"when": "Friday"}),),
    )


def _failed(error: OSError) -> None:
    raise AssertionError(error)


def test_a_burst_of_keys_is_one_write_of_the_newest(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "drafts", "ana")
    writer = DraftWriter(store, _failed, debounce=HOUR)
    for n in range(1, 6):
        writer.save_soon(
            _outcome("Call back after 2"[: n * 3]), FormState("voicemail", "2026-12", n)
        )
    assert writer.flush(10)
    assert store.writes == ["Call back after 2"[:15]]
    (draft,) = store.drafts()
    assert draft.outcome == _outcome("Call back after 2"[:15])
    assert draft.form == FormState("voicemail", "2026-12", 5)
    writer.close()


def test_a_save_is_written_at_once_and_after_what_came_before(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "drafts", "ana")
    writer = DraftWriter(store, _failed, debounce=HOUR)
    writer.save_soon(_outcome("typed"))
    writer.save(_outcome("sent"))
    assert writer.flush(10)
    assert store.writes == ["sent"]  # the older typed version never overwrites it
    writer.close()


def test_a_finished_draft_never_comes_back(tmp_path: Path) -> None:
    store = DraftStore(tmp_path / "drafts", DB, "ana")
    writer = DraftWriter(store, _failed, debounce=HOUR)
    writer.save(_outcome("sent"))
    writer.save_soon(_outcome("a key typed while it was on its way"))
    writer.finish("u-1")
    writer.save_soon(_outcome("and one after"))
    writer.save(_outcome("and a save"))
    writer.close()
    assert store.drafts() == []


def test_close_writes_what_is_waiting(tmp_path: Path) -> None:
    store = DraftStore(tmp_path / "drafts", DB, "ana")
    writer = DraftWriter(store, _failed, debounce=HOUR)
    writer.save_soon(_outcome("last words"))
    writer.close()
    assert [d.outcome.notes for d in store.drafts()] == ["last words"]


def test_the_file_is_the_documented_format_and_private(tmp_path: Path) -> None:
    store = DraftStore(tmp_path / "drafts", DB, "ana")
    store.save(_outcome("notes"), FormState("no_answer", "2026-12-03 14", 7))
    path = tmp_path / "drafts" / DB / "ana" / "u-1.json"
    raw = json.loads(path.read_text())
    assert raw["notes"] == "notes" and raw["callback_mine"] is False
    assert raw["started_at"] == AT.isoformat()
    assert raw["actions"] == [
        {"kind": "refill_request", "prescription_id": 12, "detail": {"when": "Friday"}}
    ]
    assert raw["form"] == {
        "version": 1,
        "suggested": "no_answer",
        "callback_text": "2026-12-03 14",
        "seq": 7,
    }
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path.parent.parent).st_mode) == 0o700  # the database's folder


def test_a_torn_write_is_ignored_and_the_last_whole_version_read(tmp_path: Path) -> None:
    store = DraftStore(tmp_path / "drafts", DB, "ana")
    store.save(_outcome("whole"))
    (store.dir / "u-1.tmp").write_text('{"uid": "u-1", "no')  # killed mid-write
    (store.dir / "u-2.json").write_text('{"uid": "u-2", "no')
    assert [d.outcome.notes for d in store.drafts()] == ["whole"]
    assert store.load("u-1") is not None and store.load("u-2") is None


def test_an_old_draft_without_a_form_still_reads(tmp_path: Path) -> None:
    store = DraftStore(tmp_path / "drafts", DB, "ana")
    store.save(dataclasses.replace(_outcome("before the journal"), uid="old"))
    (draft,) = store.drafts()
    assert draft.form is None and draft.outcome.notes == "before the journal"
