"""The floor snapshot's figures on SQLite and PostgreSQL, from a floor whose every number is known."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from queues.floor.monitor import FloorMonitor, floor_snapshot, pharmacy_rows
from queues.store.db import transaction
from queues.store.models import (
    AgentState,
    Attempt,
    Callback,
    Campaign,
    FollowUpAction,
    QueueEntry,
    Task,
    User,
    UserPharmacy,
)
from tests.conftest import NOW, add_pharmacy, add_queue

# NOW is 10:00 in Chicago; the floor's day began at 06:00 UTC.


def _agent(s: Session, name: str, pharmacy_ids: list[int], role: str = "agent") -> int:
    user = User(username=name, display_name=name.title(), role=role, password_hash="-")
    s.add(user)
    s.flush()
    for ph in pharmacy_ids:
        s.add(UserPharmacy(user_id=user.id, pharmacy_id=ph))
    s.flush()
    return user.id


def _attempt(
    s: Session, patient: int, user: int, disposition: str, started: datetime, handle: int = 120
) -> int:
    a = Attempt(
        uid=str(uuid.uuid4()),
        patient_id=patient,
        user_id=user,
        started_at=started,
        ended_at=started + timedelta(seconds=handle),
        recorded_at=started + timedelta(seconds=handle + 30),
        disposition=disposition,
    )
    s.add(a)
    s.flush()
    return a.id


def _action(s: Session, attempt: int, patient: int, pharmacy: int, kind: str) -> None:
    s.add(
        FollowUpAction(
            idempotency_key=f"{attempt}:{kind}",
            attempt_id=attempt,
            patient_id=patient,
            pharmacy_id=pharmacy,
            kind=kind,
            detail={},
            created_at=NOW - timedelta(minutes=5),
        )
    )


def floor(sessions: sessionmaker[Session]) -> dict[str, int]:
    """TX1: 10 patients with a refill task each (ana and ben work it); OK1: 3 patients (cal)."""
    ids: dict[str, int] = {}
    with transaction(sessions) as s:
        tx = add_pharmacy(s, "TX1")
        ok = add_pharmacy(s, "OK1")
        patients = add_queue(s, tx, 10)
        others = add_queue(s, ok, 3)
        ids.update(tx=tx, ok=ok)
        ids["ana"] = _agent(s, "ana", [tx])
        ids["ben"] = _agent(s, "ben", [tx, ok])
        ids["cal"] = _agent(s, "cal", [ok])
        # A second campaign at TX1 with two tasks for patients 0 and 1; one paused campaign.
        vax = Campaign(pharmacy_id=tx, kind="vaccine", name="Vaccines", script_id="vaccine")
        paused = Campaign(
            pharmacy_id=tx, kind="dsme", name="Diabetes education", script_id="dsme", active=False
        )
        s.add_all([vax, paused])
        s.flush()
        ids["vax"], ids["paused"] = vax.id, paused.id
        for n, p in enumerate(patients[:2]):
            s.add(
                Task(
                    patient_id=p,
                    campaign_id=vax.id,
                    subject="zoster",
                    reason="Vaccine due",
                    status="open",
                    due_on=date(2026, 11, 20 + n),
                    priority_parts={},
                    created_at=NOW - timedelta(days=3),
                )
            )
        s.add(
            Task(
                patient_id=patients[5],
                campaign_id=paused.id,
                subject="dsme",
                reason="Education",
                status="closed",
                closed_reason="campaign_paused",
                priority_parts={},
                created_at=NOW - timedelta(days=1),
            )
        )
        # Patient 0 is with ben (claimed 30 minutes ago: a stuck lease), patient 2 waits for
        # the calling window, patient 3 for a retry time; patient 4 is done (not queued).
        e0 = s.get_one(QueueEntry, patients[0])
        e0.holder_id, e0.lease_token = ids["ben"], "t"
        e0.claimed_at = NOW - timedelta(minutes=30)
        e0.lease_expires_at = e0.available_at = NOW + timedelta(minutes=4)
        e2 = s.get_one(QueueEntry, patients[2])
        e2.available_at, e2.blocked_reason = NOW + timedelta(hours=2), "state_window_TX"
        e3 = s.get_one(QueueEntry, patients[3])
        e3.available_at = NOW + timedelta(hours=1)
        s.get_one(QueueEntry, patients[4]).status = "done"
        s.execute(
            update(Task)
            .where(Task.patient_id == patients[4])
            .values(status="closed", closed_reason="completed")
        )
        # Today: ana calls patients 5 (no answer, then completed), 6 (voicemail); ben calls 7
        # (transferred to the pharmacist) at TX1 and an OK1 patient; one attempt yesterday.
        a1 = _attempt(s, patients[5], ids["ana"], "no_answer", NOW - timedelta(hours=2), 60)
        a2 = _attempt(s, patients[5], ids["ana"], "completed", NOW - timedelta(minutes=30), 240)
        _attempt(s, patients[6], ids["ana"], "voicemail", NOW - timedelta(minutes=20), 60)
        a4 = _attempt(
            s, patients[7], ids["ben"], "transferred_pharmacist", NOW - timedelta(minutes=10)
        )
        _attempt(s, others[0], ids["ben"], "completed", NOW - timedelta(minutes=15))
        _attempt(s, patients[8], ids["ana"], "completed", NOW - timedelta(hours=20))
        _action(s, a2, patients[5], tx, "refill_request")
        _action(s, a2, patients[5], tx, "med_sync_enrollment")
        _action(s, a4, patients[7], tx, "pharmacist_escalation")  # same call: one escalation
        _action(s, a1, patients[5], ok, "refill_request")  # another pharmacy's: not counted
        # Callbacks: one due 2 h ago (overdue), one due 10 minutes ago, one tomorrow; one at OK1.
        for p, due, owner in (
            (patients[8], NOW - timedelta(hours=2), ids["ana"]),
            (patients[9], NOW - timedelta(minutes=10), None),
            (patients[1], NOW + timedelta(days=1), ids["ana"]),
            (others[1], NOW - timedelta(hours=3), None),
        ):
            s.add(Callback(patient_id=p, attempt_id=a1, due_at=due, owner_id=owner))
        s.add(AgentState(user_id=ids["ana"], state="wrap_up", since=NOW - timedelta(minutes=5)))
        s.add(AgentState(user_id=ids["ben"], state="on_call", since=NOW - timedelta(minutes=2)))
        ids["patient0"], ids["patient5"] = patients[0], patients[5]
    return ids


def test_queue_rows_split_open_tasks_into_now_later_and_held(
    sessions: sessionmaker[Session],
) -> None:
    ids = floor(sessions)
    with sessions() as s:
        snap = floor_snapshot(s, (ids["tx"],), NOW)
    rows = {q.campaign: q for q in snap.queues}
    assert set(rows) == {"Refill reminders", "Vaccines", "Diabetes education"}
    refill = rows["Refill reminders"]
    # 9 open tasks (patient 4 is done): 1 held, 2 later (window, retry), 6 now.
    assert (refill.open_tasks, refill.held, refill.callable_later, refill.callable_now) == (
        9,
        1,
        2,
        6,
    )
    assert dict(refill.blocked) == {"calling window": 1, "retry/callback time": 1}
    assert refill.next_at == NOW + timedelta(hours=1)
    assert refill.oldest_due == date(2026, 12, 3)
    vax = rows["Vaccines"]
    assert (vax.open_tasks, vax.held, vax.callable_now, vax.oldest_due) == (
        2,
        1,
        1,
        date(2026, 11, 20),
    )
    paused = rows["Diabetes education"]
    assert not paused.active and paused.open_tasks == 0 and paused.paused_tasks == 1


def test_pharmacy_rows_count_patients_and_callbacks(sessions: sessionmaker[Session]) -> None:
    ids = floor(sessions)
    with sessions() as s:
        snap = floor_snapshot(s, (ids["tx"],), NOW, grace_minutes=30)
    (tx,) = snap.pharmacies
    assert (tx.code, tx.patients, tx.held, tx.callable_later, tx.callable_now) == (
        "TX1",
        9,
        1,
        2,
        6,
    )
    assert (tx.callbacks_due, tx.callbacks_overdue) == (2, 1)
    assert [c.overdue for c in snap.callbacks] == [True, False, False]
    assert snap.callbacks[0].owner == "Ana" and snap.callbacks[1].owner is None


def test_agents_show_state_today_and_what_stands_out(sessions: sessionmaker[Session]) -> None:
    ids = floor(sessions)
    with sessions() as s:
        snap = floor_snapshot(s, (ids["tx"],), NOW)
    agents = {a.name: a for a in snap.agents}
    assert set(agents) == {"Ana", "Ben"}  # cal works only for OK1
    ana, ben = agents["Ana"], agents["Ben"]
    assert (ana.state, ana.calls_today, ana.reached_today) == ("wrap_up", 3, 1)
    assert ana.avg_handle_s == (60 + 240 + 60) / 3 and ana.avg_wrap_up_s == 30
    assert not ana.lease_stuck(NOW)  # her 5 minutes of wrap-up: an alert (the [floor] limit)
    # Ben's OK1 call is not this supervisor's to see: one TX1 call, reached.
    assert (ben.calls_today, ben.reached_today) == (1, 1)
    assert ben.holding_patient_id == ids["patient0"] and ben.lease_stuck(NOW)


def test_outcomes_today_by_disposition_hour_and_follow_ups(
    sessions: sessionmaker[Session],
) -> None:
    ids = floor(sessions)
    with sessions() as s:
        o = floor_snapshot(s, (ids["tx"],), NOW).outcomes
    assert dict((code, n) for code, _, n in o.by_disposition) == {
        "no_answer": 1,
        "completed": 1,
        "voicemail": 1,
        "transferred_pharmacist": 1,
    }
    assert dict(o.by_hour) == {8: 1, 9: 3}  # Chicago hours
    assert (o.attempts, o.patients_called, o.patients_reached) == (4, 3, 2)
    assert round(o.reach_rate, 3) == round(2 / 3, 3)
    assert (o.refill_requests, o.med_sync_enrollments, o.escalations) == (1, 1, 1)
    assert (o.callbacks_due, o.callbacks_overdue) == (2, 1)


def test_a_supervisor_sees_only_their_pharmacies(sessions: sessionmaker[Session]) -> None:
    ids = floor(sessions)
    with sessions() as s:
        snap = floor_snapshot(s, (ids["ok"],), NOW)
    assert [p.code for p in snap.pharmacies] == ["OK1"]
    assert {q.pharmacy for q in snap.queues} == {"OK1"}
    assert {a.name for a in snap.agents} == {"Ben", "Cal"}
    # The OK1 refill request in the fixture hangs on a TX1 patient's call: an action counts with
    # its call (queues.reports.figures, as in the report), so OK1's floor counts none.
    assert snap.outcomes.attempts == 1 and snap.outcomes.refill_requests == 0
    assert [c.pharmacy for c in snap.callbacks] == ["OK1"]


def test_a_refresh_reads_new_attempts_and_keeps_the_counted_depths(
    sessions: sessionmaker[Session],
) -> None:
    ids = floor(sessions)
    monitor = FloorMonitor((ids["tx"],), recount_every=None)
    with sessions() as s:
        first = monitor.refresh(s, NOW)
    with transaction(sessions) as s:
        _attempt(s, ids["patient5"], ids["ana"], "busy", NOW - timedelta(minutes=1))
        s.execute(
            update(Task)
            .where(Task.campaign_id == ids["vax"])
            .values(status="closed", closed_reason="completed")
        )
    later = NOW + timedelta(seconds=2)
    with sessions() as s:
        second = monitor.refresh(s, later)
        assert second.outcomes.attempts == first.outcomes.attempts + 1
        assert {a.name: a.calls_today for a in second.agents}["Ana"] == 4
        # Depths wait for the recount (shown with its time) …
        assert second.counted_at == NOW
        assert {q.campaign: q.open_tasks for q in second.queues}["Vaccines"] == 2
        monitor.recount(s, later)
        third = monitor.refresh(s, later)
    assert third.counted_at == later
    assert {q.campaign: q.open_tasks for q in third.queues}["Vaccines"] == 0


def test_a_new_day_starts_the_tally_again(sessions: sessionmaker[Session]) -> None:
    ids = floor(sessions)
    monitor = FloorMonitor((ids["tx"],))
    with sessions() as s:
        assert monitor.refresh(s, NOW).outcomes.attempts == 4
        tomorrow = monitor.refresh(s, NOW + timedelta(days=1))
    assert tomorrow.outcomes.attempts == 0 and tomorrow.outcomes.by_hour == ()


def test_a_closed_pharmacys_work_waits_for_it_to_open(sessions: sessionmaker[Session]) -> None:
    """TX1 is open 08:00–20:00 Chicago; at 21:00 nobody of theirs is callable until 08:00."""
    ids = floor(sessions)
    evening = NOW.replace(hour=3) + timedelta(days=1)  # 21:00 in Chicago
    with sessions() as s:
        snap = floor_snapshot(s, (ids["tx"],), evening, grace_minutes=30)
    (tx,) = snap.pharmacies
    assert tx.callable_now == 0
    assert dict(tx.blocked)["pharmacy closed"] >= 6
    assert tx.next_at is not None and tx.next_at.hour == 14  # 08:00 Chicago, in UTC
    assert all(q.callable_now == 0 for q in snap.queues)


def test_alerts_mark_what_a_supervisor_must_act_on(sessions: sessionmaker[Session]) -> None:
    """Ana 5 minutes in wrap-up (limit 3), cal 25 minutes on pause (limit 20); the vaccine
    campaign's oldest due patient (Nov 20) 12 days past due (target 3); three line failures today,
    the last a 503; follow-ups: one pending past 30 minutes, one dead, one delivered."""
    from queues.views.floor import AlertLimits

    ids = floor(sessions)
    with transaction(sessions) as s:
        s.add(AgentState(user_id=ids["cal"], state="paused", since=NOW - timedelta(minutes=25)))
        for n, status in enumerate((None, 500, 503)):
            a = _attempt(
                s, ids["patient5"], ids["ben"], "line_failed", NOW - timedelta(minutes=9 - n)
            )
            s.execute(
                update(Attempt)
                .where(Attempt.id == a)
                .values(call_result="failed", sip_status=status)
            )
        s.execute(
            update(FollowUpAction)
            .where(FollowUpAction.kind == "med_sync_enrollment")
            .values(status="dead")
        )
        s.execute(
            update(FollowUpAction)
            .where(FollowUpAction.kind == "pharmacist_escalation")
            .values(status="delivered")
        )
    monitor = FloorMonitor((ids["tx"], ids["ok"]), limits=AlertLimits(undelivered_minutes=30))
    with sessions() as s:
        alerts = monitor.refresh(s, NOW + timedelta(hours=1)).alerts
    assert [(name, minutes) for _, name, minutes in alerts.long_wrap_up] == [("Ana", 65)]
    assert [(name, minutes) for _, name, minutes in alerts.long_pause] == [("Cal", 85)]
    assert ("TX1", "Vaccines", 12) in alerts.overdue_campaigns
    assert (alerts.line_failures, alerts.last_sip_status) == (3, 503)
    # refill requests (2, one OK1's) pending past the limit, the dead enrollment; not delivered one
    assert (alerts.undelivered, alerts.dead) == (3, 1)
    with sessions() as s:
        quiet = (
            FloorMonitor(
                (ids["ok"],), limits=AlertLimits(pause_minutes=120, undelivered_minutes=600)
            )
            .refresh(s, NOW + timedelta(hours=1))
            .alerts
        )
    assert quiet.long_pause == () and quiet.undelivered == 0 and quiet.line_failures == 0


def test_a_long_wrap_up_is_judged_by_the_configured_limit_alone(
    sessions: sessionmaker[Session],
) -> None:
    """Ana has been 5 minutes in wrap-up: marked with a limit of 3 or 5, not with 6 or 10 (the
    row's mark in the Agents tab is this alert; there is no other, fixed, limit)."""
    from queues.views.floor import AlertLimits

    ids = floor(sessions)
    marked = {}
    with sessions() as s:
        for limit in (3, 5, 6, 10):
            alerts = (
                FloorMonitor((ids["tx"],), limits=AlertLimits(wrap_up_minutes=limit))
                .refresh(s, NOW)
                .alerts
            )
            marked[limit] = [(name, minutes) for _, name, minutes in alerts.long_wrap_up]
    assert marked == {3: [("Ana", 5)], 5: [("Ana", 5)], 6: [], 10: []}


def test_one_oldest_due_target_for_every_campaign(sessions: sessionmaker[Session]) -> None:
    """[floor].oldest_due_alert_days is one target for every campaign: the vaccine campaign's
    oldest due patient (Nov 20) is 12 days past due at NOW — marked against 11, not against 12;
    the refill campaign's (Dec 3, not yet due) never."""
    from queues.views.floor import AlertLimits

    ids = floor(sessions)
    overdue = {}
    with sessions() as s:
        for days in (0, 11, 12):
            alerts = (
                FloorMonitor((ids["tx"],), limits=AlertLimits(oldest_due_days=days))
                .refresh(s, NOW)
                .alerts
            )
            overdue[days] = sorted(c for _, c, _ in alerts.overdue_campaigns)
    assert "Vaccines" in overdue[11] and "Vaccines" not in overdue[12]
    assert all("Refill reminders" not in o for o in overdue.values())


def _plans_of_pharmacy_rows(s: Session, pharmacy_ids: tuple[int, ...]) -> list[str]:
    """Each query pharmacy_rows runs on queue_entries, with the indexes its plan reads (on
    PostgreSQL with sequential scans off: the index must be able to serve it; the tables here are
    too small for the planner to prefer one on its own)."""
    conn = s.connection()
    postgres = conn.dialect.name == "postgresql"
    seen: list[tuple[str, Any]] = []

    def keep(*args: Any) -> None:
        if "FROM queue_entries" in args[2]:
            seen.append((args[2], args[3]))

    event.listen(conn, "before_cursor_execute", keep)
    try:
        pharmacy_rows(s, pharmacy_ids, NOW, {}, {})
    finally:
        event.remove(conn, "before_cursor_execute", keep)
    plans = []
    driver = conn.connection.driver_connection
    cursor = driver.cursor()  # type: ignore[union-attr]
    if postgres:
        cursor.execute("SET LOCAL enable_seqscan = off")
    for statement, params in seen:
        prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
        cursor.execute(prefix + statement, params)
        plans.append(" ".join(str(r[-1]) for r in cursor.fetchall()))
    s.rollback()
    return plans


def test_waiting_patients_and_held_ones_are_read_through_their_own_indexes(
    sessions: sessionmaker[Session],
) -> None:
    """The waiting index leaves held rows out (migration 0022), so a claim writes less; the
    monitor then reads waiting rows from it and held ones from the holder index — never the whole
    queue — and counts as before: a row called and waiting for its retry (holder cleared,
    `claimed_at` kept) is waiting, a lease run out is callable now, a live one held."""
    ids = floor(sessions)
    with transaction(sessions) as s:
        called, expired = (
            e.patient_id
            for e in s.scalars(
                select(QueueEntry)
                .where(QueueEntry.pharmacy_id == ids["tx"], QueueEntry.status == "open")
                .where(QueueEntry.holder_id.is_(None), QueueEntry.available_at <= NOW)
                .order_by(QueueEntry.patient_id.desc())
                .limit(2)
            )
        )
        just_called = s.get_one(QueueEntry, called)
        just_called.claimed_at, just_called.available_at = NOW, NOW + timedelta(minutes=90)
        lapsed = s.get_one(QueueEntry, expired)
        lapsed.holder_id, lapsed.lease_token = ids["ana"], "gone"
        lapsed.claimed_at = NOW - timedelta(minutes=20)
        lapsed.lease_expires_at = lapsed.available_at = NOW - timedelta(minutes=1)
    with sessions() as s:
        snap = floor_snapshot(s, (ids["tx"],), NOW, grace_minutes=30)
        plans = _plans_of_pharmacy_rows(s, (ids["tx"],))
    (tx,) = snap.pharmacies
    assert (tx.patients, tx.held, tx.callable_later, tx.callable_now) == (9, 1, 3, 5)
    assert dict(tx.blocked) == {"calling window": 1, "retry/callback time": 2}
    assert tx.next_at == NOW + timedelta(hours=1)
    assert len(plans) == 2
    waiting, held = plans
    assert "ix_queue_entries_waiting" in waiting and "ix_queue_entries_holder" in held
    for plan in plans:
        assert "Seq Scan" not in plan and "SCAN queue_entries" not in plan.replace(
            "SCAN queue_entries USING", ""
        )
