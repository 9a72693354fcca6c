"""One source for every figure: a day of calls of every disposition, with follow-ups of every
kind, counted by the floor's Today tab (the monitor), and by the CSV, HTML and PDF report of that
day — figure by figure the same. Fails with the floor's old escalation count (a transfer without
an escalation action counted on the floor, not in the report)."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import uuid
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.floor.monitor import FloorMonitor
from queues.reports import Requester, export_report
from queues.store.db import transaction
from queues.store.models import Attempt, DispositionCode, FollowUpAction, User, UserPharmacy
from tests.conftest import NOW, add_pharmacy, add_queue, require_service

TODAY = date(2026, 12, 2)  # NOW is 10:00 in Chicago
# (figure on the floor, the CSV's (section, metric), the report tables' row label)
FIGURES = (
    ("attempts", ("summary", "attempts"), "Calls made"),
    ("patients_called", ("summary", "patients_called"), "Patients called"),
    ("patients_reached", ("summary", "patients_reached"), "Patients reached"),
    ("refill_requests", ("refills", "requested"), "Refill requests made"),
    ("med_sync_enrollments", ("med_sync", "enrollments"), "Med-sync enrollments"),
    ("escalations", ("escalations", "pharmacist_escalations"), "Pharmacist escalations"),
)


def _day_of_calls(sessions: sessionmaker[Session]) -> int:
    """Every disposition once or twice, today between 08:10 and 09:50 in Chicago; follow-ups:
    refill requests (two from one call), an enrollment, an escalation on a transferred call (one
    escalation, not two) and one on a completed call, a vaccine interest; one call yesterday
    with a refill request (counted nowhere today)."""
    with transaction(sessions) as s:
        ph = add_pharmacy(s, "TX1")
        patients = add_queue(s, ph, 30)
        agent = User(username="ana", display_name="Ana", role="agent", password_hash="-")
        s.add(agent)
        s.flush()
        s.add(UserPharmacy(user_id=agent.id, pharmacy_id=ph))
        codes = list(s.scalars(select(DispositionCode.code).order_by(DispositionCode.code)))
        calls: dict[str, int] = {}
        # A second transfer to the pharmacist, with no escalation action: an escalation all the
        # same (the floor counted it, the report did not).
        for n, code in enumerate([*codes, *codes[:4], "transferred_pharmacist"]):
            started = NOW - timedelta(minutes=110 - n * 3)
            a = Attempt(
                uid=str(uuid.uuid4()),
                patient_id=patients[n % 12],  # some patients called twice
                user_id=agent.id,
                started_at=started,
                ended_at=started + timedelta(minutes=2),
                recorded_at=started + timedelta(minutes=3),
                disposition=code,
                call_result="failed" if code == "line_failed" else "connected",
            )
            s.add(a)
            s.flush()
            calls.setdefault(code, a.id)
        yesterday = Attempt(
            uid=str(uuid.uuid4()),
            patient_id=patients[20],
            user_id=agent.id,
            started_at=NOW - timedelta(hours=20),
            ended_at=NOW - timedelta(hours=20),
            disposition="completed",
        )
        s.add(yesterday)
        s.flush()
        patient_of = {a: p for a, p in s.execute(select(Attempt.id, Attempt.patient_id))}
        for attempt, kind in (
            (calls["completed"], "refill_request"),
            (calls["completed"], "refill_request"),
            (calls["completed"], "med_sync_enrollment"),
            (calls["callback_requested"], "med_sync_enrollment"),
            (calls["transferred_pharmacist"], "pharmacist_escalation"),
            (calls["refused"], "pharmacist_escalation"),
            (calls["completed"], "vaccine_interest"),
            (yesterday.id, "refill_request"),
        ):
            s.add(
                FollowUpAction(
                    idempotency_key=str(uuid.uuid4()),
                    attempt_id=attempt,
                    patient_id=patient_of[attempt],
                    pharmacy_id=ph,
                    kind=kind,
                    detail={"vaccine": "influenza"} if kind == "vaccine_interest" else {},
                    created_at=NOW - timedelta(minutes=5),
                )
            )
        return ph


def test_the_today_tab_and_the_three_reports_agree_figure_by_figure(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    ph = _day_of_calls(sessions)
    with sessions() as s:
        today = FloorMonitor((ph,)).refresh(s, NOW).outcomes
    floor = {name: getattr(today, name) for name, _, _ in FIGURES}
    # What the day holds, worked out by hand: every code, 4 again and a second transfer; 12
    # patients; 2 refill requests (yesterday's is not today's); 2 patients enrolled; 3 escalated
    # calls (two transfers, one of them with its action too, and a refusal with an action).
    with sessions() as s:
        n_codes = len(list(s.scalars(select(DispositionCode.code))))
    assert floor["attempts"] == n_codes + 5
    assert floor["patients_called"] == 12
    assert (floor["refill_requests"], floor["med_sync_enrollments"]) == (2, 2)
    assert floor["escalations"] == 3

    made = {}
    with transaction(sessions) as s:
        for fmt in ("csv", "html", "pdf"):
            made[fmt] = export_report(
                s, Requester.operator("test"), "TX1", TODAY, TODAY, fmt, NOW, paper="letter"
            ).content

    rows = list(csv.reader(io.StringIO(made["csv"].decode())))
    by_metric = {(r[1], r[3]): r[4] for r in rows[1:] if r[0] == "TX1" and r[2] == ""}
    csv_figures = {name: int(by_metric[key]) for name, key, _ in FIGURES}
    assert csv_figures == floor

    page = made["html"].decode()
    html = re.sub(r"<[^>]+>", "|", page[page.index('id="details-TX1"') :])  # the tables
    html_figures = {
        name: int(re.search(rf"\|{re.escape(label)}\|+(\d+)", html).group(1))  # type: ignore[union-attr]
        for name, _, label in FIGURES
    }
    assert html_figures == floor

    require_service(
        "pdftotext", shutil.which("pdftotext") is not None, "apt-get install poppler-utils"
    )
    pdf = tmp_path / "day.pdf"
    pdf.write_bytes(made["pdf"])
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pdf_figures = {
        name: int(re.search(rf"{re.escape(label)}\s+(\d+)", text).group(1))  # type: ignore[union-attr]
        for name, _, label in FIGURES
    }
    assert pdf_figures == floor


def test_counts_do_not_move_between_refreshes_without_a_change(
    sessions: sessionmaker[Session],
) -> None:
    ph = _day_of_calls(sessions)
    monitor = FloorMonitor((ph,))
    with sessions() as s:
        first = monitor.refresh(s, NOW)
        again = [monitor.refresh(s, NOW + timedelta(seconds=2 * k)) for k in range(1, 4)]
    for later in again:
        assert later.outcomes == first.outcomes
        assert later.pharmacies == first.pharmacies
