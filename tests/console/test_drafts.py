"""Local wrap-up drafts: what the agent entered survives a crash, actions included."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from console.drafts import DraftStore
from queues.outcomes import ActionRequest, Outcome


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
