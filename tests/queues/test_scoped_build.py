"""A supervisor's pause or weight change rebuilds only the patients with open work in that
campaign, a resume only the patients of its pharmacy (queues.floor.controls): on SQLite and
PostgreSQL, over the demo's every kind of campaign, each leaves those patients as a build of
everyone would, and nobody else's tasks or entries move."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from demo.world import seed_demo
from queues.auth import signed_in
from queues.building.build import CAMPAIGN_PAUSED, build_queues
from queues.floor import controls
from queues.store.db import make_engine, session_factory, transaction, upgrade
from queues.store.models import Campaign, Patient, QueueEntry, Task, User

START = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # Wednesday 10:00 in Miami


def state(sessions: sessionmaker[Session]) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Every task by (campaign, patient, subject) and every queue entry by patient, as stored."""
    with sessions() as s:
        tasks = {
            (t.campaign_id, t.patient_id, t.subject): (
                t.status,
                t.closed_reason,
                t.score,
                t.reason,
                t.parts,
            )
            for t in s.execute(
                select(
                    Task.campaign_id,
                    Task.patient_id,
                    Task.subject,
                    Task.status,
                    Task.closed_reason,
                    Task.score,
                    Task.reason,
                    cast(Task.priority_parts, String).label("parts"),
                )
            )
        }
        entries = {
            e.patient_id: (e.status, e.sort_key, e.holder_id, e.admitted_until)
            for e in s.scalars(select(QueueEntry))
        }
    return tasks, entries


def patients_of(tasks: dict[Any, Any], campaign: int) -> set[int]:
    return {pid for (cid, pid, _), row in tasks.items() if cid == campaign and row[0] == "open"}


def others(snapshot: tuple[dict[Any, Any], dict[Any, Any]], mine: set[int]) -> Any:
    tasks, entries = snapshot
    return (
        {k: v for k, v in tasks.items() if k[1] not in mine},
        {k: v for k, v in entries.items() if k not in mine},
    )


def lapse_admissions(sessions: sessionmaker[Session]) -> None:
    """Every queue entry's claim-time admission lapsed (after closing time, say): a scoped build
    must judge its own patients again and nobody else."""
    with transaction(sessions) as s:
        s.execute(
            update(QueueEntry).values(admitted_at=None, admitted_until=None, admitted_key=None)
        )


def nothing_left_to_do(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        full = build_queues(s, START)
    assert (full.created, full.reopened, full.closed, full.updated) == (0, 0, 0, 0), full.describe()


def test_pause_and_weight_rebuild_only_the_campaigns_patients_as_a_full_build_would(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_demo(sessions, patients=300, seed=11, now=START)
    with sessions() as s:
        supervisor = s.scalars(select(User).where(User.role == "supervisor")).first()
        assert supervisor is not None
        sup = signed_in(supervisor)  # the demo's: every pharmacy, each running its own campaigns
        kinds = dict(s.execute(select(Campaign.id, Campaign.kind)).all())

    lapse_admissions(sessions)
    before = state(sessions)
    by_size = sorted(
        (len(patients_of(before[0], cid)), cid) for cid in kinds if patients_of(before[0], cid)
    )
    # The smallest campaign with work is paused; the largest is reweighted.
    (_, paused), (_, weighed) = by_size[0], by_size[-1]
    mine = patients_of(before[0], paused)
    assert 0 < len(mine) < len(before[1])  # a scope smaller than everyone

    with transaction(sessions) as s:
        controls.set_campaign_active(s, sup, paused, False, START)
    after = state(sessions)
    assert patients_of(after[0], paused) == set()
    assert {
        after[0][k][1] for k, row in before[0].items() if k[0] == paused and row[0] == "open"
    } == {CAMPAIGN_PAUSED}
    assert others(after, mine) == others(before, mine)
    nothing_left_to_do(sessions)

    mine = patients_of(after[0], weighed)
    lapse_admissions(sessions)
    after = state(sessions)
    with transaction(sessions) as s:
        controls.set_campaign_weight(s, sup, weighed, 3.0, START)
    reweighed = state(sessions)
    moved = {k for k in reweighed[0] if reweighed[0][k] != after[0][k]}
    assert moved and {k[0] for k in moved} == {weighed}
    assert others(reweighed, mine) == others(after, mine)
    nothing_left_to_do(sessions)

    # A resume rebuilds the campaign's pharmacy: the paused work comes back, nothing else moves.
    with sessions() as s:
        home = s.get_one(Campaign, paused).pharmacy_id
        theirs = set(s.scalars(select(Patient.id).where(Patient.pharmacy_id == home)))
    lapse_admissions(sessions)
    reweighed = state(sessions)
    with transaction(sessions) as s:
        controls.set_campaign_active(s, sup, paused, True, START)
    resumed = state(sessions)
    assert patients_of(resumed[0], paused) == patients_of(before[0], paused)
    assert others(resumed, theirs) == others(reweighed, theirs)
    nothing_left_to_do(sessions)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == len(before[0])
    engine.dispose()
