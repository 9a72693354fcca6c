"""Local wrap-up drafts: what the agent entered survives a crash, actions included."""

from __future__ import annotations

import json
import os
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from console.drafts import (
    ADDRESSES_NOTE,
    DraftStore,
    FormerIdDrafts,
    database_address,
    former_id_drafts,
    legacy_folder,
    note_address,
)
from console.widgets.script_panel import ScriptDrafts
from queues.outcomes import ActionRequest, Outcome
from queues.views.user import SignedInUser


def test_a_draft_reads_back_equal_with_its_actions(tmp_path: Path) -> None:
    at = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
    outcome = Outcome(
        uid="u-1",
        patient_id=7,
        lease_token="t",
        user_id=3,
        disposition="completed",
        started_at=at,
        ended_at=at,
        notes="will pick up Friday",
        answers={"refill": {"as_usual": "yes"}},
        actions=(ActionRequest("refill_request", 12, {"when": "Friday"}),),
    )
    store = DraftStore(tmp_path / "drafts", "6f1c2a43-8a1e-4e0b-9d55-0c3f4b7e2a10", "ana")
    store.save(outcome)
    assert store.pending() == [outcome]


DATABASE_ID = "6f1c2a43-8a1e-4e0b-9d55-0c3f4b7e2a10"


def test_a_drafts_folder_made_for_a_draft_is_synced_into_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A legacy draft moved into a database's folder made a moment before is durable only once
    that folder's own entry (and its database folder's) is synced: else a power cut after the
    move, whose old entry is synced away, can leave the draft in a folder nobody finds."""
    root = tmp_path / "drafts"
    legacy = legacy_folder(root, "ana")
    legacy.mkdir(parents=True)
    (legacy / "u-1.json").write_text("{}")
    synced: list[Path] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = DraftStore(root, DATABASE_ID, "ana")
    assert store.adopt(legacy / "u-1.json")
    database = root / DATABASE_ID
    assert {root, database} <= set(synced)  # the new folders' entries
    assert {store.dir, legacy} <= set(synced)  # the move's both ends
    assert (store.dir / "u-1.json").is_file() and stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    synced.clear()
    DraftStore(root, DATABASE_ID, "ana")  # already there: nothing more to sync
    assert synced == []


def test_legacy_script_progress_that_cannot_be_moved_does_not_fail_the_claim(
    tmp_path: Path,
) -> None:
    """ScriptDrafts.find runs while a resumed patient is drawn: a legacy progress file it cannot
    move stays where it is and the script starts afresh, instead of failing the claim's worker
    (on every Ready after it)."""
    root = tmp_path / "drafts"
    user = SignedInUser(
        id=3,
        username="ana",
        display_name="Ana",
        role="agent",
        pharmacy_ids=(1,),
        pharmacy_codes=("FL-MIA",),
        database_id=DATABASE_ID,
    )
    drafts = ScriptDrafts(root, user, lambda error: None)
    try:
        legacy = legacy_folder(root, "ana", scripts=True)
        legacy.mkdir(parents=True)
        (legacy / f"{ScriptDrafts.uid('tok')}.json").write_text("{}")
        drafts.store.dir.rmdir()  # the move fails (its folder removed under the console)
        assert drafts.find("tok") is None
        assert (legacy / f"{ScriptDrafts.uid('tok')}.json").is_file()
    finally:
        drafts.close()


def test_drafts_under_a_former_id_are_found_only_at_the_address_it_was_reached_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made again at the same place (`demo --reset`, `db new-id` on it) has a new id:
    the drafts under the id it had are found (not moved) by the address noted at sign-in; those of
    another database (another address, say the site a training copy was made from) are not."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "drafts"
    here = database_address("sqlite:///outreach.db")
    assert here == f"sqlite:///{tmp_path / 'outreach.db'}"  # as the console opens it
    assert database_address("postgresql+psycopg://al:secret@db1/site?sslmode=require") == (
        "postgresql://db1:5432/site"  # no user name nor password kept
    )
    assert database_address("sqlite://") == ""  # in memory: nothing to note
    old, site, new = (str(uuid.uuid4()) for _ in range(3))
    at = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
    for database, address in ((old, here), (site, database_address("sqlite:////srv/site.db"))):
        note_address(root, database, address)
        DraftStore(root, database, "ana").save(Outcome("u-1", 7, "t", 3, "voicemail", at, at))
    note_address(root, new, here)
    note_address(root, new, here)  # once is enough
    assert json.loads((root / new / ADDRESSES_NOTE).read_text()) == [here]
    assert former_id_drafts(root, new, here, "ana") == [FormerIdDrafts(root / old / "ana", 1)]
    assert former_id_drafts(root, new, here, "ben") == []
    assert former_id_drafts(root, old, here, "ana") == []  # its own drafts are not former
    assert (root / old / "ana" / "u-1.json").exists()


@pytest.mark.parametrize(
    ("url", "address"),
    [
        # SQLAlchemy reads a password up to its '@', an unquoted '/', '?' or '#' in it too
        (
            "postgresql+psycopg://app:12/34@db.local:5433/outreach",
            "postgresql://db.local:5433/outreach",
        ),
        ("postgresql+psycopg://app:pa/ss@DB.local/outreach", "postgresql://db.local:5432/outreach"),
        (
            "postgresql+psycopg://app:s3c?ret@db.local/outreach",
            "postgresql://db.local:5432/outreach",
        ),
        ("postgresql+psycopg://app:9#x@db.local/outreach", "postgresql://db.local:5432/outreach"),
        ("postgresql+psycopg://app:[x@[::1]:5433/outreach", "postgresql://::1:5433/outreach"),
    ],
)
def test_a_database_address_never_keeps_a_password_sqlalchemy_accepts(
    url: str, address: str
) -> None:
    """The address noted at sign-in is where the engine connects (host, port, database as
    SQLAlchemy reads the URL): a password with an unquoted '/', '?' or '#' neither stops the
    sign-in's drafts worker (before it reopens the agent's wrap-ups) nor lands in the note."""
    from sqlalchemy import make_url

    parsed = make_url(url)
    assert database_address(url) == address
    assert address == f"postgresql://{parsed.host.lower()}:{parsed.port or 5432}/{parsed.database}"
    assert "app" not in address and parsed.password not in address
