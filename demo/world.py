"""The demo database: synthetic pharmacies, patients and fill histories that exercise every campaign.

Everything here is invented (names from short lists, numbers in the 555 exchange, MRNs prefixed
DEMO). The same `seed` and practice time always give the same database. Fill histories are drawn
relative to the practice clock's date so that the queues are full whatever day the demo is run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from demo.history import History, write_history
from queues.auth import hash_password
from queues.building.build import build_queues
from queues.campaigns import STANDARD
from queues.clock import PRACTICE_CLOCK_KEY
from queues.errors import OutreachError
from queues.settings import QueueSettings
from queues.store.db import transaction
from queues.store.models import (
    Base,
    Campaign,
    Condition,
    DemoSetting,
    Fill,
    Immunization,
    Patient,
    Pharmacy,
    Phone,
    Prescription,
    User,
)

SEED_KEY = "demo_seed"

# (code, name, state, zone, city ZIPs, area codes, caller ID, call-back number, priority)
PHARMACIES = (
    (
        "FL-MIA",
        "Biscayne Family Pharmacy",
        "FL",
        "America/New_York",
        ("33125", "33130", "33142", "33155", "33176"),
        ("305", "786"),
        "+13055550100",
        "+13055550101",
        1,
    ),
    (
        "TX-HOU",
        "Bayou City Drug",
        "TX",
        "America/Chicago",
        ("77002", "77008", "77019", "77036", "77084"),
        ("713", "832"),
        "+17135550100",
        "+17135550101",
        0,
    ),
    (
        "AZ-PHX",
        "Desert Sun Pharmacy",
        "AZ",
        "America/Phoenix",
        ("85004", "85016", "85032", "85041", "85251"),
        ("602", "480"),
        "+16025550100",
        "+16025550101",
        0,
    ),
)

# Log-ins the login screen shows on a demo database.
USERS = (
    ("agent", "Alex Agent", "agent", "agent-demo-1"),
    ("agent2", "Blair Agent", "agent", "agent-demo-2"),
    ("supervisor", "Sam Supervisor", "supervisor", "supervisor-demo-1"),
    ("admin", "Ari Admin", "admin", "admin-demo-1"),  # every pharmacy, like the others
)

# The demo's campaigns are the standard ones every new pharmacy gets (one list, in the domain).
CAMPAIGNS = STANDARD

# (drug name, ingredient, PQA class, chronic, usual days supply)
DRUGS = (
    ("Lisinopril 10 mg tablet", "lisinopril", "RASA", True, 30),
    ("Losartan 50 mg tablet", "losartan", "RASA", True, 90),
    ("Valsartan 80 mg tablet", "valsartan", "RASA", True, 30),
    ("Sacubitril/valsartan 49-51 mg tablet", "sacubitril/valsartan", "RASA", True, 30),
    ("Atorvastatin 20 mg tablet", "atorvastatin", "STATIN", True, 30),
    ("Rosuvastatin 10 mg tablet", "rosuvastatin", "STATIN", True, 90),
    ("Simvastatin 40 mg tablet", "simvastatin", "STATIN", True, 30),
    ("Metformin 500 mg tablet", "metformin", "DIABETES", True, 30),
    ("Glipizide 5 mg tablet", "glipizide", "DIABETES", True, 30),
    ("Sitagliptin 100 mg tablet", "sitagliptin", "DIABETES", True, 30),
    ("Insulin glargine 100 unit/mL pen", "insulin glargine", None, True, 30),
    ("Amlodipine 5 mg tablet", "amlodipine", None, True, 30),
    ("Metoprolol succinate 50 mg tablet", "metoprolol", None, True, 30),
    ("Levothyroxine 75 mcg tablet", "levothyroxine", None, True, 90),
    ("Omeprazole 20 mg capsule", "omeprazole", None, True, 30),
    ("Sertraline 50 mg tablet", "sertraline", None, True, 30),
    ("Amoxicillin 500 mg capsule", "amoxicillin", None, False, 10),
)
DIABETES_DRUGS = ("metformin", "glipizide", "sitagliptin", "insulin glargine")

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Dorothy",
    "Paul",
    "Kimberly",
    "Andrew",
    "Emily",
    "Joshua",
    "Donna",
    "Kenneth",
    "Michelle",
    "Kevin",
    "Carol",
    "Brian",
    "Amanda",
    "George",
    "Melissa",
    "Edward",
    "Deborah",
    "Ronald",
    "Stephanie",
]
SPANISH_FIRST_NAMES = [
    "José",
    "María",
    "Juan",
    "Guadalupe",
    "Luis",
    "Rosa",
    "Carlos",
    "Carmen",
    "Jorge",
    "Ana",
    "Miguel",
    "Teresa",
    "Manuel",
    "Elena",
    "Francisco",
    "Lucía",
    "Antonio",
    "Isabel",
    "Ramón",
    "Sofía",
    "Alejandro",
    "Marisol",
    "Héctor",
    "Beatriz",
    "Raúl",
    "Gloria",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "Campbell",
    "Mitchell",
    "Roberts",
    "Carter",
    "Phillips",
    "Evans",
    "Turner",
    "Parker",
]
SPANISH_LAST_NAMES = [
    "García",
    "Rodríguez",
    "Martínez",
    "Hernández",
    "López",
    "González",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Torres",
    "Flores",
    "Rivera",
    "Gómez",
    "Díaz",
    "Reyes",
    "Morales",
    "Cruz",
    "Ortiz",
    "Gutiérrez",
    "Chávez",
    "Ramos",
    "Vargas",
    "Castillo",
    "Jiménez",
]
RELATIONS = ("daughter", "son", "spouse", "niece", "home health aide")
BEST_TIMES = (None, None, None, "morning", "afternoon", "evening", "after 17:00", "before 11:00")
# Area codes of other states: a patient who kept the number of where they lived before.
ELSEWHERE = ("212", "617", "312", "303", "206", "415")


class DemoAlreadyThere(OutreachError):
    """The database already holds the demo: it is kept as it is (nothing is overwritten)."""


@dataclass(frozen=True)
class DemoSummary:
    url: str
    seed: int
    practice_start: datetime
    pharmacies: tuple[str, ...]
    patients: int
    fills: int
    tasks_open: int
    patients_queued: int
    by_campaign: dict[str, int] = field(default_factory=dict)
    past_calls: int = 0
    past_actions: int = 0

    def describe(self) -> str:
        zone = ZoneInfo(PHARMACIES[0][3])
        local = self.practice_start.astimezone(zone)
        lines = [
            f"demo database {self.url} (seed {self.seed})",
            f"  {len(self.pharmacies)} pharmacies: {', '.join(self.pharmacies)}",
            f"  {self.patients} patients, {self.fills} fills",
            f"  {self.tasks_open} open tasks for {self.patients_queued} patients: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.by_campaign.items())),
            f"  {self.past_calls} past calls with {self.past_actions} follow-up actions "
            "(three months, up to a week ago)"
            if self.past_calls
            else "  no past calls",
            f"  practice clock starts {local:%a %Y-%m-%d %H:%M %Z}",
            "  log-ins: " + ", ".join(f"{u} / {pw}" for u, _, _, pw in USERS),
        ]
        return "\n".join(lines)


def default_practice_start(real_now: datetime) -> datetime:
    """The next weekday at 10:00 in the first pharmacy's zone (tomorrow's if 10:00 has passed)."""
    zone = ZoneInfo(PHARMACIES[0][3])
    local = real_now.astimezone(zone)
    day = local.date()
    if local.time() >= time(10) or day.weekday() >= 5:
        day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(10), zone).astimezone(UTC)


def parse_practice_time(value: str) -> datetime:
    """ISO time; without an offset it is read in the first pharmacy's zone."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise OutreachError(
            f"--now: {value!r} is not an ISO time (e.g. 2026-12-02T10:00 or 2026-12-02T10:00-05:00)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(PHARMACIES[0][3]))
    return parsed.astimezone(UTC)


def seed_demo(
    sessions: sessionmaker[Session],
    *,
    patients: int = 500,
    seed: int = 7,
    now: datetime | None = None,
    reset: bool = False,
    settings: QueueSettings | None = None,
    history_days: int = 0,
) -> DemoSummary:
    """Fill an empty database with the demo; `reset` first empties a database the demo made.

    `history_days` > 0 adds that many days of past calls (`demo.history`; `outreach demo` writes
    three months): their outcomes shape the queue that is then built."""
    if patients < 1:
        raise OutreachError("--patients: give at least 1")
    with sessions() as session:
        seeded = session.scalar(select(DemoSetting.value).where(DemoSetting.key == SEED_KEY))
        has_data = session.scalar(select(func.count()).select_from(Pharmacy)) or 0
    if seeded is not None and not reset:
        raise DemoAlreadyThere(
            f"the demo database is already there (seed {seeded}); kept as it is "
            "(use --reset to build it again)"
        )
    if has_data and seeded is None:
        raise OutreachError(
            "this database holds real pharmacies, not the demo: `outreach demo` only writes "
            "to an empty database or one it built"
        )
    if seeded is not None:
        _empty(sessions)
    start = now or default_practice_start(datetime.now(UTC))
    rng = random.Random(seed)
    with transaction(sessions) as session:
        codes = _write(session, rng, patients, start)
        past = write_history(session, seed, start, history_days) if history_days > 0 else None
        session.add(DemoSetting(key=SEED_KEY, value=str(seed)))
        session.add(DemoSetting(key=PRACTICE_CLOCK_KEY, value=start.isoformat()))
        result = build_queues(session, start, settings)
        del result
    return _summary(sessions, seed, start, codes, past)


def _empty(sessions: sessionmaker[Session]) -> None:
    """Drop and re-create every table (the audit log refuses row deletes by design)."""
    from queues.store.db import upgrade

    with sessions() as session:
        engine = session.get_bind().engine
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(engine)


def _write(session: Session, rng: random.Random, n_patients: int, start: datetime) -> list[str]:
    pharmacies: list[Pharmacy] = []
    for code, name, state, zone, _zips, _areas, caller_id, callback, prio in PHARMACIES:
        pharmacy = Pharmacy(
            code=code,
            name=name,
            caller_id=caller_id,
            callback_number=callback,
            timezone=zone,
            state=state,
            opens_at=time(9),
            closes_at=time(19),
            priority=prio,
        )
        pharmacies.append(pharmacy)
    session.add_all(pharmacies)
    session.flush()
    hashed = {pw: hash_password(pw) for *_, pw in USERS}
    for username, display, role, pw in USERS:
        session.add(
            User(
                username=username,
                display_name=display,
                role=role,
                password_hash=hashed[pw],
                pharmacies=list(pharmacies),
            )
        )
    # Each pharmacy runs its own programs, as pharmacies contract them: the demo's supervisor can
    # then pause or reweight one pharmacy's campaign from the floor (a campaign shared by every
    # pharmacy is an admin's to change).
    session.add_all(
        Campaign(
            pharmacy_id=pharmacy.id,
            kind=kind,
            name=label,
            script_id=kind,
            weight=weight,
            attempt_limit=limit,
        )
        for pharmacy in pharmacies
        for kind, label, weight, limit in CAMPAIGNS
    )
    today = start.astimezone(ZoneInfo(PHARMACIES[0][3])).date()
    people = [_person(rng, i, pharmacies, today) for i in range(n_patients)]
    session.add_all([p.patient for p in people])
    session.flush()
    rx_rows: list[Prescription] = []
    for person in people:
        for rx in person.prescriptions:
            rx.patient_id = person.patient.id
            rx_rows.append(rx)
    session.add_all(rx_rows)
    session.flush()
    phones: list[dict[str, Any]] = []
    fills: list[dict[str, Any]] = []
    conditions: list[dict[str, Any]] = []
    shots: list[dict[str, Any]] = []
    for person in people:
        pid = person.patient.id
        phones += [dict(p, patient_id=pid) for p in person.phones]
        conditions += [{"patient_id": pid, "code": c, "display": d} for c, d in person.conditions]
        shots += [{"patient_id": pid, "vaccine": v, "given_on": d} for v, d in person.shots]
        for rx, history in zip(person.prescriptions, person.fills, strict=True):
            fills += [
                {"prescription_id": rx.id, "fill_date": d, "days_supply": s, "quantity": s}
                for d, s in history
            ]
    for model, rows in ((Phone, phones), (Fill, fills), (Condition, conditions)):
        if rows:
            session.execute(insert(model), rows)
    if shots:
        session.execute(insert(Immunization), shots)
    return [p.code for p in pharmacies]


@dataclass
class _Person:
    patient: Patient
    phones: list[dict[str, Any]]
    prescriptions: list[Prescription]
    fills: list[list[tuple[date, int]]]
    conditions: list[tuple[str, str]]
    shots: list[tuple[str, date]]


def _person(rng: random.Random, i: int, pharmacies: list[Pharmacy], today: date) -> _Person:
    k = i % len(pharmacies)
    _code, _name, state, _zone, zips, areas, *_ = PHARMACIES[k]
    spanish = rng.random() < (0.35 if state in ("FL", "TX") else 0.2)
    first = rng.choice(SPANISH_FIRST_NAMES if spanish else FIRST_NAMES)
    last = rng.choice(SPANISH_LAST_NAMES if spanish else LAST_NAMES)
    age = rng.choices((rng.randint(28, 49), rng.randint(50, 64), rng.randint(65, 92)), (2, 4, 5))[0]
    birth = today - timedelta(days=age * 365 + rng.randint(0, 364))
    caregiver = rng.random() < 0.12 or age >= 85
    patient = Patient(
        pharmacy_id=pharmacies[k].id,
        mrn=f"DEMO{i + 1:05d}",
        first_name=first,
        last_name=last,
        birth_date=birth,
        language="es" if spanish else "en",
        zip_code=rng.choice(zips),
        state=state,
        caregiver_name=f"{rng.choice(SPANISH_FIRST_NAMES if spanish else FIRST_NAMES)} {last}"
        if caregiver
        else None,
        caregiver_relation=rng.choice(RELATIONS) if caregiver else None,
        caregiver_phone=_number(rng, rng.choice(areas)) if caregiver else None,
        caregiver_authorized=caregiver and rng.random() < 0.8,
        do_not_call=rng.random() < 0.03,
        deceased=False,
        tobacco_use=rng.random() < 0.13,
        hospice=rng.random() < 0.01,
        esrd=rng.random() < 0.01,
    )
    phones = [
        {
            "number": _number(
                rng, rng.choice(ELSEWHERE) if rng.random() < 0.06 else rng.choice(areas)
            ),
            "kind": "mobile" if rng.random() < 0.7 else "home",
            "rank": 0,
            "best_time": rng.choice(BEST_TIMES),
            "wrong_number": False,
            "do_not_call": False,
        }
    ]
    if rng.random() < 0.45:
        phones.append(
            {
                "number": _number(rng, rng.choice(areas)),
                "kind": "home" if phones[0]["kind"] == "mobile" else "work",
                "rank": 1,
                "best_time": None,
                "wrong_number": rng.random() < 0.08,
                "do_not_call": rng.random() < 0.04,
            }
        )
    diabetic = rng.random() < 0.3
    conditions: list[tuple[str, str]] = []
    if diabetic:
        conditions.append(("E11.9", "Type 2 diabetes mellitus without complications"))
    if rng.random() < 0.55:
        conditions.append(("I10", "Essential (primary) hypertension"))
    if rng.random() < 0.4:
        conditions.append(("E78.5", "Hyperlipidemia, unspecified"))
    if patient.tobacco_use:
        conditions.append(("F17.210", "Nicotine dependence, cigarettes"))
    prescriptions: list[Prescription] = []
    fills: list[list[tuple[date, int]]] = []
    for drug in _regimen(rng, diabetic, age):
        name, ingredient, pqa, chronic, supply = drug
        rx = Prescription(
            drug_name=name,
            ingredient=ingredient,
            rxnorm=None,
            pqa_class=pqa,
            chronic=chronic,
            refills_left=rng.choice((0, 1, 2, 3, 5, 11)),
            prescriber=f"Dr. {rng.choice(LAST_NAMES)}",
            written_on=today - timedelta(days=rng.randint(20, 330)),
            active=True,
        )
        prescriptions.append(rx)
        fills.append(_history(rng, today, supply, chronic))
    if len(prescriptions) >= 3 and rng.random() < 0.25:
        patient.med_sync_enrolled = True
        patient.med_sync_day = rng.randint(1, 28)
    shots = _immunizations(rng, today, age)
    return _Person(patient, phones, prescriptions, fills, conditions, shots)


def _number(rng: random.Random, area: str) -> str:
    # 555-01XX is reserved for fiction; the rest of 555 keeps the demo large without real lines.
    return f"+1{area}555{rng.randint(0, 9999):04d}"


def _regimen(
    rng: random.Random, diabetic: bool, age: int
) -> list[tuple[str, str, str | None, bool, int]]:
    by_ingredient = {d[1]: d for d in DRUGS}
    chosen: list[tuple[str, str, str | None, bool, int]] = []
    if diabetic:
        chosen.append(by_ingredient[rng.choice(DIABETES_DRUGS)])
    others = [d for d in DRUGS if d[1] not in DIABETES_DRUGS and d[3]]
    count = rng.choices((0, 1, 2, 3, 4), (1, 3, 4, 3, 2))[0] + (1 if age >= 65 else 0)
    for drug in rng.sample(others, min(count, len(others))):
        if drug[2] and any(c[2] == drug[2] for c in chosen):
            continue  # one drug per PQA class keeps histories readable
        chosen.append(drug)
    if rng.random() < 0.1:
        chosen.append(by_ingredient["amoxicillin"])
    return chosen


def _history(rng: random.Random, today: date, supply: int, chronic: bool) -> list[tuple[date, int]]:
    """Fills over the past year for one prescription, in one of a few patterns seen in practice."""
    if not chronic:
        return [(today - timedelta(days=rng.randint(5, 60)), supply)]
    pattern = rng.choices(
        ("steady", "late", "lapsed", "early", "new_start", "due_now"), (30, 22, 10, 8, 8, 22)
    )[0]
    if pattern == "new_start":  # first fill of this drug a few days ago: post-dispense follow-up
        return [(today - timedelta(days=rng.randint(2, 7)), supply)]
    if rng.random() < 0.25:
        supply = 90 if supply == 30 else 30
    history: list[tuple[date, int]] = []
    # Walk backwards from where the supply should run out relative to today.
    if pattern == "due_now":
        run_out = today + timedelta(days=rng.randint(-2, 6))
    elif pattern == "lapsed":
        run_out = today - timedelta(days=rng.randint(20, 80))
    else:
        run_out = today + timedelta(days=rng.randint(-3, supply))
    day = run_out - timedelta(days=supply)
    first_day = today - timedelta(days=rng.randint(200, 400))
    while day >= first_day:
        history.append((day, supply))
        if pattern == "late":
            gap = rng.randint(3, 25) if rng.random() < 0.5 else rng.randint(-2, 3)
        elif pattern == "early":
            gap = -rng.randint(2, 6)
        else:
            gap = rng.randint(-3, 3)
        day -= timedelta(days=supply + gap)
    history.reverse()
    return history


def _immunizations(rng: random.Random, today: date, age: int) -> list[tuple[str, date]]:
    shots: list[tuple[str, date]] = []
    if age >= 50:
        for _ in range(rng.choices((0, 1, 2), (5, 2, 3))[0]):
            shots.append(("zoster", today - timedelta(days=rng.randint(200, 2000))))
    if age >= 50 and rng.random() < 0.5:
        shots.append(("pneumococcal", today - timedelta(days=rng.randint(300, 3000))))
    if rng.random() < 0.35:
        shots.append(("influenza", today - timedelta(days=rng.randint(10, 80))))
    if age >= 75 and rng.random() < 0.3:
        shots.append(("rsv", today - timedelta(days=rng.randint(100, 600))))
    return shots


def _summary(
    sessions: sessionmaker[Session],
    seed: int,
    start: datetime,
    codes: list[str],
    past: History | None = None,
) -> DemoSummary:
    from queues.store.models import QueueEntry, Task

    with sessions() as session:
        url = session.get_bind().engine.url.render_as_string(hide_password=True)
        by_campaign = dict(
            session.execute(
                select(Campaign.kind, func.count(Task.id))
                .join(Task, Task.campaign_id == Campaign.id)
                .where(Task.status == "open")
                .group_by(Campaign.kind)
            ).all()
        )
        return DemoSummary(
            url=url,
            seed=seed,
            practice_start=start,
            pharmacies=tuple(codes),
            patients=session.scalar(select(func.count()).select_from(Patient)) or 0,
            fills=session.scalar(select(func.count()).select_from(Fill)) or 0,
            tasks_open=sum(by_campaign.values()),
            patients_queued=session.scalar(
                select(func.count()).select_from(QueueEntry).where(QueueEntry.status == "open")
            )
            or 0,
            by_campaign={str(k): int(v) for k, v in by_campaign.items()},
            past_calls=past.calls if past else 0,
            past_actions=past.actions if past else 0,
        )
