"""A scoped build's patients scattered over the whole queue (a re-import's changed patients: every
hundredth of a pharmacy's) are judged with their own phones read by their ids, not every phone of
the id range between the first and the last (at 100,000 patients that range was every phone, 0.25 s
of a re-import's 1,000-patient rebuild): the verdicts are the ones the pass over everyone gives,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from demo.world import seed_demo
from queues.building.build import build_queues
from queues.claims import admission
from queues.claims.admission import admit_entries
from queues.store.db import transaction
from queues.store.models import Phone, QueueEntry

# Wednesday 2026-12-02 17:00 UTC: noon in New York, every demo pharmacy open.
NOON = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)


def _admissions(sessions: sessionmaker[Session]) -> dict[int, tuple[Any, ...]]:
    with sessions() as s:
        return {
            e.patient_id: (e.admitted_at, e.admitted_until, e.admitted_key)
            for e in s.scalars(select(QueueEntry))
        }


def _lapse(sessions: sessionmaker[Session], patients: list[int] | None = None) -> None:
    with transaction(sessions) as s:
        query = update(QueueEntry).values(admitted_at=None, admitted_until=None, admitted_key=None)
        if patients is not None:
            query = query.where(QueueEntry.patient_id.in_(patients))
        s.execute(query)


def test_scattered_patients_of_a_scoped_build_get_the_verdicts_of_the_pass_over_everyone(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_demo(sessions, patients=240, seed=5, now=NOON - timedelta(hours=2))
    with transaction(sessions) as s:
        build_queues(s, NOON)
    with sessions() as s:
        queued = sorted(s.scalars(select(QueueEntry.patient_id)))
    few = queued[::9]
    assert few[-1] - few[0] >= 2 * len(few)  # spread thin: read by their ids
    # Some of them asked not to be called on any number: only their phones say so.
    with transaction(sessions) as s:
        s.execute(update(Phone).where(Phone.patient_id.in_(few[::2])).values(do_not_call=True))

    _lapse(sessions)
    with transaction(sessions) as s:
        admit_entries(s, NOON)  # everyone, read by the range
    everyone = _admissions(sessions)

    _lapse(sessions, few)
    reads: list[Any] = []
    phones_of = admission._phones_of

    def counted(conn: Any, query: Any, params: dict[str, Any]) -> Any:
        reads.append(query)
        return phones_of(conn, query, params)

    monkeypatch.setattr(admission, "_phones_of", counted)
    with transaction(sessions) as s:
        build_queues(s, NOON, patients=few)  # their admissions lapsed: judged again
    scoped = _admissions(sessions)

    assert admission._PHONES_IN in reads and admission._PHONES_OF not in reads
    assert scoped == everyone
    assert any(scoped[pid][1] is not None for pid in few)  # some callable now
    assert all(scoped[pid][1] is None for pid in few[::2])  # not those whose phones say no
