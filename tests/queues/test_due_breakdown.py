"""The breakdown of `queue stats` and of an agent's empty queue counts the due entries in SQL and
reads only the others and the first few due ones (queues.floor.stats): it must say exactly what
one pass over every open entry said - the same counts, groups, earliest times and their zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from queues.compliance.patient import patient_verdict
from queues.floor.stats import DueBreakdown, due_breakdown, kind_of, queue_stats, summarize_groups
from queues.settings import QueueSettings
from queues.store.db import transaction
from queues.store.models import Pharmacy, QueueEntry
from queues.timeutil import as_utc
from tests.queues.test_admission import EVENING, add_agent, add_patient, add_pharmacy

FLORIDA_OPENS = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)  # Thursday 08:00 in Miami


def one_pass(
    s: Session,
    now: datetime,
    pharmacy_ids: list[int] | None,
    user_id: int | None,
    live_checks: int,
) -> tuple[DueBreakdown, int]:
    """The breakdown as it was made before: one pass over every open entry, in queue order."""
    query = (
        s.query(
            QueueEntry.patient_id,
            QueueEntry.available_at,
            QueueEntry.blocked_reason,
            QueueEntry.holder_id,
            QueueEntry.lease_expires_at,
            QueueEntry.reserved_for_id,
            QueueEntry.reserved_until,
            Pharmacy.timezone,
        )
        .join(Pharmacy, Pharmacy.id == QueueEntry.pharmacy_id)
        .filter(QueueEntry.status == "open")
        .order_by(QueueEntry.sort_key, QueueEntry.patient_id)
    )
    if pharmacy_ids is not None:
        query = query.filter(QueueEntry.pharmacy_id.in_(pharmacy_ids))
    groups: dict[str, list[tuple[datetime | None, str]]] = {}
    callable_now = due = checked = claimable = 0
    for pid, available, blocked, holder, expires, reserved, until, tz in query:
        due += 1
        available = as_utc(available)
        claimable += available <= now
        if holder is not None and expires is not None and as_utc(expires) > now:
            if holder != user_id:
                groups.setdefault("with_agent", []).append((as_utc(expires), tz))
            continue
        if reserved is not None and reserved != user_id and until and as_utc(until) > now:
            groups.setdefault("callback_reserved", []).append((as_utc(until), tz))
            continue
        if available > now:
            groups.setdefault(kind_of(blocked), []).append((available, tz))
            continue
        if checked >= live_checks:
            callable_now += 1
            continue
        checked += 1
        verdict = patient_verdict(s, pid, now, None)
        if verdict.callable:
            callable_now += 1
        else:
            groups.setdefault(kind_of(verdict.codes[0]), []).append((verdict.next_open_at, tz))
    # The grouping is the point of the comparison; their summary is the product's, shared.
    return summarize_groups(groups, due, callable_now, now), claimable


def test_the_breakdown_says_what_one_pass_over_every_entry_said(
    sessions: sessionmaker[Session],
) -> None:
    later = EVENING + timedelta(hours=3)
    with transaction(sessions) as s:
        tx = add_pharmacy(s, "TX1", "America/Chicago", "TX")  # open at EVENING
        fl = add_pharmacy(s, "FL1", "America/New_York", "FL")  # closed at EVENING
        amy, bob = add_agent(s, "amy"), add_agent(s, "bob")
        for i in range(40):
            ph, area, state, zip_code = (
                (tx, "214", "TX", "75201") if i % 3 else (fl, "305", "FL", "33101")
            )
            pid = add_patient(
                s, ph, i // 4, zip_code=zip_code, state=state, numbers=(f"+1{area}555{i:04d}",)
            )
            entry = update(QueueEntry).where(QueueEntry.patient_id == pid)
            match i % 8:  # 0, 1: due (a Florida one fails its live check: its window is shut)
                case 2 | 3:  # held by Amy or Bob
                    until = EVENING + timedelta(minutes=4 + i)
                    s.execute(
                        entry.values(
                            holder_id=(amy, bob)[i % 2],
                            lease_token=f"t{i}",
                            claimed_at=EVENING,
                            lease_expires_at=until,
                            available_at=until,
                        )
                    )
                case 4:  # a lease run out, its holder not cleared: due again
                    gone = EVENING - timedelta(minutes=1)
                    s.execute(
                        entry.values(
                            holder_id=bob, lease_expires_at=gone, available_at=gone, claimed_at=gone
                        )
                    )
                case 5 | 6:  # a callback kept for Amy, or for Bob until a time gone by
                    until = later if i % 8 == 5 else EVENING - timedelta(hours=1)
                    s.execute(entry.values(reserved_for_id=(amy, bob)[i % 2], reserved_until=until))
                case 7:  # passed over; a calling window's at the time Florida's opens, so
                    # its group's earliest time is the same in two zones: the zone shown is the
                    # first entry's in queue order (a Florida one found by a live check)
                    reason = ("daily_cap", "dnc_number", None, "federal_window")[(i // 8) % 4]
                    until = FLORIDA_OPENS if reason == "federal_window" else later
                    s.execute(entry.values(available_at=until, blocked_reason=reason))
    with sessions() as s:
        for user_id in (None, amy, bob):
            for pharmacy_ids in (None, [tx]):
                for live_checks in (500, 3, 0):
                    made = due_breakdown(
                        s, EVENING, pharmacy_ids=pharmacy_ids, user_id=user_id,
                        live_checks=live_checks,
                    )  # fmt: skip
                    expected, _ = one_pass(s, EVENING, pharmacy_ids, user_id, live_checks)
                    assert made == expected, (user_id, pharmacy_ids, live_checks)
        stats = queue_stats(s, EVENING, QueueSettings())
        expected, claimable = one_pass(s, EVENING, None, None, 500)
    assert stats.due == expected
    window = next(g for g in expected.groups if g.kind == "calling_window")
    assert (window.until, window.zone) == (FLORIDA_OPENS, "America/New_York")
    assert (stats.patients_queued, stats.patients_claimable_now) == (40, claimable)
    assert {g.kind for g in expected.groups} >= {
        "with_agent",
        "callback_reserved",
        "calling_window",
        "daily_cap",
        "record_blocked",
        "retry_later",
    }
