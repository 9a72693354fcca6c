"""A BPO takes on a new client from the command line alone: `pharmacy add` gives it the standard
campaigns, its CSV exports come in, `queue build`, and an agent of that pharmacy gets one of its
patients; `outreach campaigns list|add|set` shows and changes its programs (an admin's, signed in).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from console.cli import main
from console.config import DatabaseSettings, LogSettings, Settings, UiSettings
from console.services.accounts import Accounts
from console.services.agent_shift import AgentShift
from console.services.store import open_store
from queues.auth import add_user
from queues.campaigns import KINDS
from queues.clock import FixedClock
from queues.compliance.windows import holiday_name
from queues.store.models import AuditEvent, Campaign, Pharmacy, Task
from tests.imports.conftest import FIXTURE


def next_weekday_morning() -> datetime:
    """10:00 in Kansas on the next working day to come: the imports rebuild on the wall clock, so the
    claim's clock must be later than it (and within calling hours, whatever the hour now)."""
    day = datetime.now(CHICAGO).date() + timedelta(days=1)
    while day.weekday() >= 5 or holiday_name("KS", day):
        day += timedelta(days=1)
    return datetime.combine(day, time(10), CHICAGO).astimezone(UTC)


CHICAGO = ZoneInfo("America/Chicago")
NOW = next_weekday_morning()
FILLED = NOW.date() - timedelta(days=27)  # 30 days' supply: runs out in 3 days
ADMIN, ADMIN_PASSWORD = "site_admin", "admin-test-pass-1"
AGENT, AGENT_PASSWORD = "kay_agent", "agent-test-pass-1"
# Synthetic people (no real patient data): two Kansans whose lisinopril runs out in days.
PATIENTS = (
    "mrn,first_name,last_name,birth_date,zip_code,state,language\n"
    "N1,Nora,Northfield,1951-06-07,67202,KS,en\n"
    "N2,Ned,Newhall,1947-02-19,66801,KS,en\n"
)
PHONES = "mrn,number,kind,rank\nN1,(316) 555-0161,mobile,0\nN2,+16205550162,home,0\n"
RX = (
    "mrn,rx_id,drug_name,rxnorm,refills_left\n"
    "N1,RX-N1,Lisinopril 10 MG Oral Tablet,314076,3\n"
    "N2,RX-N2,Lisinopril 10 MG Oral Tablet,314076,3\n"
)
FILLS = (
    "mrn,rx_id,fill_id,fill_date,days_supply\n"
    f"N1,RX-N1,F-N1,{FILLED},30\nN2,RX-N2,F-N2,{FILLED + timedelta(days=1)},30\n"
)
ADD_KS2 = [
    "pharmacy", "add", "KS2", "--name", "Prairie Pharmacy", "--timezone", "America/Chicago",
    "--caller-id", "+13165550100",
]  # fmt: skip


@pytest.fixture
def admin_env(sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """An admin of no pharmacy yet (an admin acts on every one), signed in for each command."""
    with sessions.begin() as session:
        add_user(session, ADMIN, ADMIN_PASSWORD, "admin", [])
    monkeypatch.setenv("OUTREACH_USER", ADMIN)
    monkeypatch.setenv("OUTREACH_PASSWORD", ADMIN_PASSWORD)


def run(capsys: pytest.CaptureFixture[str], *argv: str, rc: int = 0) -> str:
    capsys.readouterr()
    assert main(list(argv)) == rc, capsys.readouterr().err
    captured = capsys.readouterr()
    return captured.out if rc == 0 else captured.err


def last_json(out: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return found


def test_a_new_pharmacy_added_imported_and_built_gives_its_agent_one_of_its_patients(
    db_url: str, sessions: sessionmaker[Session], admin_env: None, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    db = ["--database", db_url]
    out = run(capsys, *ADD_KS2, *db)
    assert "8 standard campaigns" in out
    listed = last_json(run(capsys, "campaigns", "list", "--pharmacy", "KS2", "--json", *db))
    assert [(c["pharmacy"], c["kind"], c["active"]) for c in listed["campaigns"]] == [
        ("KS2", kind, True) for kind in KINDS
    ]
    for kind, text in (("patients", PATIENTS), ("phones", PHONES), ("prescriptions", RX),
                       ("fills", FILLS)):  # fmt: skip
        path = tmp_path / f"{kind}.csv"
        path.write_text(text, encoding="utf-8")
        run(capsys, "import", "csv", kind, str(path), "--pharmacy", "KS2", *db)
    run(capsys, "queue", "build", "--now", NOW.isoformat(), *db)
    with sessions() as session:
        refill = session.scalars(
            select(Campaign.id).where(Campaign.kind == "refill_reminder")
        ).one()
        tasks = session.scalars(select(Task).where(Task.campaign_id == refill)).all()
        assert len([t for t in tasks if t.status == "open"]) == 2  # one per patient, this campaign
    assert claim_as_new_agent(db_url, tmp_path, capsys, monkeypatch) in ("N1", "N2")


def test_a_new_pharmacy_with_a_fhir_export_gives_its_agent_one_of_its_patients(
    db_url: str, admin_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    db = ["--database", db_url]
    assert "8 standard campaigns" in run(capsys, *ADD_KS2, *db)
    out = run(capsys, "import", "fhir", str(FIXTURE), "--pharmacy", "KS2", "--json", *db)
    assert last_json(out)["patients_created"] == 13
    run(capsys, "queue", "build", "--now", NOW.isoformat(), *db)
    imported = {json.loads(line)["id"] for line in (FIXTURE / "Patient.000.ndjson").open()}
    assert claim_as_new_agent(db_url, tmp_path, capsys, monkeypatch) in imported


def claim_as_new_agent(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> str:  # fmt: skip
    """`users add` an agent of KS2 (the admin signed in), who signs in to a console's services
    and presses Ready: the MRN of the patient offered."""
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{AGENT_PASSWORD}\n"))
    run(capsys, "users", "add", AGENT, "--role", "agent", "--pharmacy", "KS2", "--database", db_url)
    settings = Settings(
        database=DatabaseSettings(url=db_url),
        ui=UiSettings(drafts_path=str(tmp_path / "drafts")),
        log=LogSettings(path=str(tmp_path / "outreach.log")),
    )
    store = open_store(settings, clock=FixedClock(NOW))
    try:
        agent = Accounts(store).sign_in(AGENT, AGENT_PASSWORD)
        assert agent.pharmacy_codes == ("KS2",)
        offer = AgentShift(store, agent).next_patient()
        assert offer is not None, AgentShift(store, agent).why_empty()
        return offer.patient.mrn
    finally:
        store.close()


def test_campaigns_add_set_and_list_as_an_admin(
    db_url: str, sessions: sessionmaker[Session], admin_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    db = ["--database", db_url]
    run(capsys, *ADD_KS2, "--no-campaigns", *db)
    assert "no campaigns" in run(capsys, "campaigns", "list", *db)
    out = run(capsys, "campaigns", "add", "--pharmacy", "KS2", "--kind", "vaccine",
              "--weight", "0.7", "--paused", *db)  # fmt: skip
    assert "added 1 campaign(s) for KS2" in out
    added = run(capsys, "campaigns", "add", "--pharmacy", "KS2", "--standard", *db)
    assert "added 7 campaign(s)" in added  # every kind but the vaccine one it runs
    again = run(capsys, "campaigns", "add", "--pharmacy", "KS2", "--standard", *db)
    assert "runs every standard campaign already; nothing added" in again
    with sessions() as session:
        vaccine = session.scalars(select(Campaign).where(Campaign.kind == "vaccine")).one()
        assert (vaccine.weight, vaccine.active) == (0.7, False)
        vid = vaccine.id
    run(capsys, "campaigns", "set", str(vid), "--resume", "--weight", "1.5", "--attempts", "4",
        "--name", "Flu and shingles", *db)  # fmt: skip
    listed = last_json(run(capsys, "campaigns", "list", "--json", *db))["campaigns"]
    shown = next(c for c in listed if c["id"] == vid)
    assert (shown["name"], shown["weight"], shown["attempt_limit"], shown["active"]) == (
        "Flu and shingles", 1.5, 4, True,
    )  # fmt: skip
    with sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("campaign%"))
        ).all()
    assert sorted(set(actions)) == [
        "campaign_added", "campaign_changed", "campaign_resumed", "campaign_weight",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["add", "--pharmacy", "NOPE", "--standard"], "--pharmacy: no pharmacy 'NOPE'"),
        (["add", "--pharmacy", "KS2", "--kind", "refill_reminder"],
         "KS2 runs a refill_reminder campaign already"),
        (["add", "--pharmacy", "KS2", "--standard", "--weight", "2"],
         "--weight: the standard set takes the standard values"),
        (["set", "999999", "--pause"], "no campaign 999999"),
        (["set", "1", "--weight", "11"], "--weight: 11.0: use a number from 0 to 10"),
        (["set", "1"], "nothing to change"),
    ],
)  # fmt: skip
def test_bad_campaign_input_is_refused_plainly(
    db_url: str, admin_env: None, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    db = ["--database", db_url]
    run(capsys, *ADD_KS2, *db)
    err = run(capsys, "campaigns", *argv, *db, rc=1)
    assert message in err and "Traceback" not in err


def test_an_agent_may_not_change_campaigns(
    db_url: str, sessions: sessionmaker[Session], admin_env: None,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    db = ["--database", db_url]
    run(capsys, *ADD_KS2, *db)
    with sessions.begin() as session:
        add_user(session, AGENT, AGENT_PASSWORD, "agent", ["KS2"])
        before = session.scalar(select(Campaign.weight).where(Campaign.id == 1))
    monkeypatch.setenv("OUTREACH_USER", AGENT)
    monkeypatch.setenv("OUTREACH_PASSWORD", AGENT_PASSWORD)
    err = run(capsys, "campaigns", "set", "1", "--weight", "3", *db, rc=1)
    assert "kay_agent is an agent" in err
    with sessions() as session:
        assert session.scalar(select(Campaign.weight).where(Campaign.id == 1)) == before


def test_a_pharmacy_added_to_a_site_with_shared_campaigns_gets_only_the_kinds_it_lacks(
    db_url: str, sessions: sessionmaker[Session], admin_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    with sessions.begin() as session:
        session.add(Campaign(pharmacy_id=None, kind="refill_reminder", name="Refills (all)",
                             script_id="refill_reminder", weight=1.0))  # fmt: skip
    out = run(capsys, *ADD_KS2, "--database", db_url)
    assert "7 standard campaigns" in out
    with sessions() as session:
        ks2 = session.scalar(select(Pharmacy.id).where(Pharmacy.code == "KS2"))
        own = session.scalars(select(Campaign.kind).where(Campaign.pharmacy_id == ks2)).all()
    assert sorted(own) == sorted(k for k in KINDS if k != "refill_reminder")
