"""The program report agrees with a known history, figure by figure, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.errors import OutreachError
from queues.reports import Requester, export_report, program_report
from queues.reports.model import PharmacyReport
from queues.reports.pdc_source import pqa_pdc_measure
from queues.store.db import transaction
from queues.store.models import AuditEvent
from tests.reports.history import END, EXPECTED_TX1, START, History, build_history

NOW = datetime(2026, 10, 2, 15, 0, tzinfo=UTC)
ADMIN = Requester("ada", None, "admin", ("TX1", "TX2"))


@pytest.fixture
def history(sessions: sessionmaker[Session]) -> History:
    with transaction(sessions) as session:
        return build_history(session)


def tx1_report(sessions: sessionmaker[Session]) -> PharmacyReport:
    with sessions() as session:
        report = program_report(session, ADMIN, "TX1", START, END, NOW)
    assert [s.code for s in report.sections] == ["TX1"]
    return report.sections[0]


def test_calls_and_reach_match_the_history(
    sessions: sessionmaker[Session], history: History
) -> None:
    s = tx1_report(sessions)
    want = EXPECTED_TX1
    assert s.patients_called == want["patients_called"]
    assert s.patients_reached == want["patients_reached"]
    assert s.attempts == want["attempts"]
    assert s.attempts_per_reached == want["attempts_per_reached"]
    got = {c.campaign: (c.patients_called, c.patients_reached, c.attempts) for c in s.campaigns}
    assert got == want["campaigns"]  # prescriber-office calls are not patient calls


def test_refills_and_follow_ups_match_the_history(
    sessions: sessionmaker[Session], history: History
) -> None:
    s = tx1_report(sessions)
    want = EXPECTED_TX1
    assert s.refills.requested == want["refills_requested"]
    assert s.refills.filled == want["refills_filled"]
    assert s.refills.days_to_fill == want["days_to_fill"]
    assert s.med_sync_enrollments == want["med_sync_enrollments"]
    assert s.vaccine_interests == want["vaccine_interests"]
    assert s.vaccine_by_kind == want["vaccine_by_kind"]
    assert s.pharmacist_escalations == want["pharmacist_escalations"]


def test_prescriber_office_calls_and_outcomes(
    sessions: sessionmaker[Session], history: History
) -> None:
    s = tx1_report(sessions)
    assert s.prescriber_calls == EXPECTED_TX1["prescriber_calls"]
    assert {o.disposition: o.calls for o in s.prescriber_outcomes} == EXPECTED_TX1[
        "prescriber_outcomes"
    ]
    assert s.prescriber_followups == EXPECTED_TX1["prescriber_followups"]


def test_a_call_after_nine_pm_is_counted_outside_policy(
    sessions: sessionmaker[Session], history: History
) -> None:
    s = tx1_report(sessions)
    want = tuple(history.attempts[label] for label in EXPECTED_TX1["outside_policy"])
    assert s.policy.outside == len(want)
    assert s.policy.attempt_ids == want


def test_pdc_by_class_at_start_and_end(sessions: sessionmaker[Session], history: History) -> None:
    s = tx1_report(sessions)
    assert s.pdc.available
    assert s.pdc.window_days == 90
    got = {
        p.pqa_class: (
            p.patients_start,
            p.patients_end,
            p.mean_start,
            p.mean_end,
            p.adherent_start,
            p.adherent_end,
            p.crossed_up,
            p.crossed_down,
        )
        for p in s.pdc.lines
    }
    assert got.keys() == EXPECTED_TX1["pdc"].keys()
    for cls, want in EXPECTED_TX1["pdc"].items():
        assert got[cls] == pytest.approx(want), cls


def test_all_gives_one_section_per_pharmacy(
    sessions: sessionmaker[Session], history: History
) -> None:
    with sessions() as session:
        report = program_report(session, ADMIN, "all", START, END, NOW)
    assert [s.code for s in report.sections] == ["TX1", "TX2"]
    tx2 = report.sections[1]
    assert (tx2.patients_called, tx2.patients_reached, tx2.attempts) == (1, 1, 1)


def test_csv_carries_the_same_figures(sessions: sessionmaker[Session], history: History) -> None:
    with transaction(sessions) as session:
        made = export_report(session, ADMIN, "TX1", START, END, "csv", NOW)
    rows = list(csv.DictReader(io.StringIO(made.content.decode())))
    value = {(r["section"], r["item"], r["metric"]): r["value"] for r in rows}
    assert value[("summary", "", "patients_called")] == "4"
    assert value[("summary", "", "patients_reached")] == "3"
    assert value[("refills", "", "requested")] == "2"
    assert value[("refills", "", "filled")] == "1"
    assert value[("campaign", "Refill reminder", "patients_reached")] == "2"
    assert value[("policy", "", "calls_outside_policy")] == "1"
    assert {r["from"] for r in rows} == {"2026-07-01"}


def test_html_has_charts_and_pdf_is_a_pdf(
    sessions: sessionmaker[Session], history: History
) -> None:
    with transaction(sessions) as session:
        html = export_report(session, ADMIN, "all", START, END, "html", NOW).content.decode()
        pdf = export_report(session, ADMIN, "all", START, END, "pdf", NOW).content
    assert html.count("<svg") >= 2 and "<script" not in html
    assert 'id="pharmacy-TX1"' in html and 'id="pharmacy-TX2"' in html
    assert "Calls outside policy (must be 0)" in html
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 2  # one page a pharmacy


def test_every_export_is_audited(sessions: sessionmaker[Session], history: History) -> None:
    sue = Requester("sue", history.users["sue"], "supervisor", ("TX1",))
    with transaction(sessions) as session:
        export_report(session, sue, "TX1", START, END, "pdf", NOW)
    with sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "export")).all()
    assert len(events) == 1
    assert events[0].user_id == history.users["sue"]
    assert events[0].detail["format"] == "pdf"
    assert events[0].detail["pharmacies"] == ["TX1"]
    assert (events[0].detail["from"], events[0].detail["to"]) == ("2026-07-01", "2026-09-28")


def test_a_built_report_exports_as_it_was_built(
    sessions: sessionmaker[Session], history: History
) -> None:
    with transaction(sessions) as session:
        built = program_report(session, ADMIN, "all", START, END, NOW)
        reused = export_report(session, ADMIN, "all", START, END, "csv", NOW, report=built)
        fresh = export_report(session, ADMIN, "all", START, END, "csv", NOW)
    assert reused.content == fresh.content
    with sessions() as session, pytest.raises(OutreachError, match="not the one asked for"):
        export_report(session, ADMIN, "TX1", START, END, "csv", NOW, report=built)


def test_the_one_pass_pdc_gives_the_per_window_figures(
    sessions: sessionmaker[Session], history: History
) -> None:
    measure = pqa_pdc_measure()
    with sessions() as session:
        fast = program_report(session, ADMIN, "all", START, END, NOW)
        each = program_report(session, ADMIN, "all", START, END, NOW, pdc=measure)
    assert [s.pdc for s in fast.sections] == [s.pdc for s in each.sections]
    assert any(line.patients_end for s in fast.sections for line in s.pdc.lines)
