"""A small, hand-made world for console tests: one pharmacy, two agents, a supervisor and a few
patients whose refills fall due, so every figure a test checks is known in advance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from console.config import DatabaseSettings, LogSettings, Settings, UiSettings
from console.drafts import DraftStore
from console.services.container import Services
from console.services.store import Store, open_store
from queues.auth import hash_password
from queues.building.build import build_queues
from queues.clock import PracticeClock
from queues.identity import database_id
from queues.store.db import transaction
from queues.store.models import Campaign, Fill, Patient, Pharmacy, Phone, Prescription, User
from tests.conftest import migrated_if_new

PASSWORD = "correct-horse-1"


@dataclass(frozen=True)
class World:
    store: Store  # the database, for a test's own reads and writes
    services: Services  # what the app is handed
    patients: dict[str, int]  # last name -> id, in the order they should be offered

    def drafts(self, username: str, *, scripts: bool = False) -> DraftStore:
        """The user's drafts kept on local disk for this world's database (console/drafts.py)."""
        with self.store.sessions() as session:
            here = database_id(session)
        root = Path(self.store.settings.ui.drafts_path)
        return DraftStore(root, here, username, scripts=scripts)


def make_world(tmp_path: Path, url: str, now: datetime, runouts: dict[str, int]) -> World:
    """Patients named by the keys of `runouts`, each with one chronic drug running out in N days.
    A new SQLite file starts as a copy of one already migrated (tests/conftest.copy_migrated)."""
    migrated_if_new(url)
    settings = Settings(
        database=DatabaseSettings(url=url),
        ui=UiSettings(drafts_path=str(tmp_path / "drafts"), idle_lock_minutes=15),
        log=LogSettings(path=str(tmp_path / "outreach.log")),
    )
    store = open_store(settings, clock=PracticeClock(now))
    today = now.date()
    ids: dict[str, int] = {}
    with transaction(store.sessions) as session:
        pharmacy = Pharmacy(
            code="TX1",
            name="Lone Star Pharmacy",
            caller_id="+12145550100",
            callback_number="+12145550101",
            timezone="America/Chicago",
            state="TX",
            opens_at=time(8),
            closes_at=time(20),
        )
        session.add(pharmacy)
        session.flush()
        hashed = hash_password(PASSWORD)
        for name, role in (("ana", "agent"), ("ben", "agent"), ("sue", "supervisor")):
            session.add(
                User(
                    username=name,
                    display_name=name.title(),
                    role=role,
                    password_hash=hashed,
                    pharmacies=[pharmacy],
                )
            )
        session.add(
            Campaign(
                pharmacy_id=pharmacy.id,
                kind="refill_reminder",
                name="Refill reminder",
                script_id="refill_reminder",
            )
        )
        for i, (last, days) in enumerate(sorted(runouts.items(), key=lambda kv: kv[1])):
            ids[last] = _patient(session, pharmacy.id, i, last, today, days)
        build_queues(session, now)
    return World(store, Services(store), ids)


def _patient(session: Session, pharmacy_id: int, i: int, last: str, today: date, days: int) -> int:
    patient = Patient(
        pharmacy_id=pharmacy_id,
        mrn=f"T{i:04d}",
        first_name="Pat",
        last_name=last,
        birth_date=date(1955, 4, 1 + i),
        language="en",
        zip_code="75201",
        state="TX",
    )
    session.add(patient)
    session.flush()
    session.add(
        Phone(
            patient_id=patient.id,
            number=f"+1214555{1000 + i:04d}",
            kind="mobile",
            rank=0,
            best_time="afternoon",
        )
    )
    session.add(Phone(patient_id=patient.id, number=f"+1214555{2000 + i:04d}", kind="home", rank=1))
    rx = Prescription(
        patient_id=patient.id,
        drug_name="Lisinopril 10 mg tablet",
        ingredient="lisinopril",
        pqa_class="RASA",
        chronic=True,
        refills_left=2,
    )
    session.add(rx)
    session.flush()
    # Two 30-day fills, the second one making the supply run out `days` from today.
    second = today + timedelta(days=days - 30)
    session.add_all(
        [
            Fill(
                prescription_id=rx.id,
                fill_date=second - timedelta(days=32),
                days_supply=30,
                quantity=30,
            ),
            Fill(prescription_id=rx.id, fill_date=second, days_supply=30, quantity=30),
        ]
    )
    return patient.id


def visible_text(app: object) -> str:
    """The screen as a person sees it (from Textual's own screenshot), for assertions."""
    import html
    import re

    svg = app.export_screenshot()  # type: ignore[attr-defined]
    text = html.unescape(re.sub(r"<[^>]+>", "", svg.split("</style>", 1)[-1]))
    return text.replace("\xa0", " ")
