"""The program report for a quarter (`queues.reports.export_report`) on a realistic database.

20 pharmacies in four time zones, 100,000 patients with prescriptions in the PQA classes and a
year of fills (about 1,000,000), a quarter of calls (about 150,000 attempts over 92 days, with
dispositions and task ids pointing at tasks of six campaigns per pharmacy, prescriber-office calls
among them), the follow-up actions the calls produced (refill requests, med-sync enrollments,
vaccine interests, escalations) and the fills that came after a refill request. Loaded with COPY on
PostgreSQL. Times building the report and exporting it as CSV, HTML and PDF for one pharmacy and
for `all`, and a floor: fetching the rows the report reads (the quarter's calls and the PDC
windows' fills) as plain driver tuples in the same run.

    python bench/report.py --backend postgres|sqlite [--pharmacies N] [--patients N]
        [--attempts N] [--repeat N] [--profile] [--json] [--database URL]
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PHARMACY_COLUMNS,
    analyze,
    base_parser,
    bulk_load,
    emit_json,
    load_plain_patients,
    log,
    print_table,
    scratch_database,
    server_url,
    sync_sequences,
)
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from queues.reports import (
    ALL,
    FORMATS,
    ProgramReport,
    Requester,
    export_report,
    program_report,
)
from queues.reports.build import CARRY_IN_DAYS, pdc_windows
from queues.reports.export import RENDERERS
from queues.store.db import make_engine, session_factory, upgrade

START = date(2026, 7, 1)  # the quarter reported on, both ends included
END = date(2026, 9, 30)
NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # the report is run a month after the quarter
FILLS_FROM = date(2025, 10, 1)  # a year of dispensing before the quarter ends, and a month after
FILLS_TO = date(2026, 10, 31)
WHO = Requester.operator("bench")

# (time zone, state, a ZIP in it, a phone prefix of its area code): patients live where their
# pharmacy is, so the compliance window check judges every call by a known zone.
SITES = (
    ("America/Chicago", "TX", "75201", "+1214555"),
    ("America/New_York", "NY", "10001", "+1212555"),
    ("America/Denver", "CO", "80202", "+1303555"),
    ("America/Los_Angeles", "CA", "90012", "+1213555"),
)
PATIENT_KINDS = (
    "refill_reminder",
    "adherence",
    "post_dispense",
    "med_sync_enrollment",
    "vaccine",
)
OFFICE = "prescriber_office"
KINDS = (*PATIENT_KINDS, OFFICE)
DRUGS = {  # PQA class -> (ingredient, drug name)
    "RASA": (("lisinopril", "Lisinopril 10 mg tablet"), ("losartan", "Losartan 50 mg tablet")),
    "STATIN": (
        ("atorvastatin", "Atorvastatin 20 mg tablet"),
        ("rosuvastatin", "Rosuvastatin 10 mg tablet"),
    ),
    "DIABETES": (("metformin", "Metformin 500 mg tablet"), ("glipizide", "Glipizide 5 mg tablet")),
}
CLASSES = tuple(DRUGS)
VACCINES = ("influenza", "covid-19", "zoster", "pneumococcal", "rsv")
NOT_REACHED = (("no_answer", 0.55), ("voicemail", 0.35), ("busy", 0.10))
REACHED = (  # the outcome of the call that reached the patient
    ("completed", 0.78),
    ("callback_requested", 0.08),
    ("transferred_pharmacist", 0.05),
    ("refused", 0.06),
    ("do_not_call", 0.01),
    ("wrong_number", 0.02),
)
OFFICE_OUTCOMES = (("completed", 0.6), ("voicemail", 0.2), ("no_answer", 0.15), ("busy", 0.05))
REACH_PER_TRY = 0.3
MAX_TRIES = 3


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([c for c, _ in table], [w for _, w in table])[0]


@dataclass
class _World:
    """What later tables need from earlier ones, kept in memory (ids are assigned here)."""

    pharmacies: int
    patients: int
    rx_of: list[tuple[int, ...]] = field(default_factory=list)  # by patient id (index 0 unused)
    tasks_open: list[tuple[Any, ...]] = field(default_factory=list)
    tasks_done: list[tuple[Any, ...]] = field(default_factory=list)
    attempts: list[tuple[Any, ...]] = field(default_factory=list)
    actions: list[tuple[Any, ...]] = field(default_factory=list)
    requested: dict[int, list[date]] = field(default_factory=lambda: defaultdict(list))

    def pharmacy_of(self, patient: int) -> int:
        return (patient - 1) % self.pharmacies + 1

    def site(self, pharmacy: int) -> tuple[str, str, str, str]:
        return SITES[(pharmacy - 1) % len(SITES)]

    def campaign(self, pharmacy: int, kind: str) -> int:
        return (pharmacy - 1) * len(KINDS) + KINDS.index(kind) + 1


def _quarter_days() -> list[date]:
    days, d = [], START
    while d <= END:
        if d.weekday() != 6:  # no Sunday calls (state rules differ on Sundays)
            days.append(d)
        d += timedelta(days=1)
    return days


def _plan_calls(world: _World, target: int, agents: int, rng: random.Random) -> None:
    """Patients called in the quarter, their tasks, attempts until reached (or given up), the
    follow-ups of the calls that reached them and prescriber-office calls for some."""
    days = _quarter_days()
    order = list(range(1, world.patients + 1))
    rng.shuffle(order)
    tid = aid = fid = 0

    def at(day: date, zone: str) -> datetime:
        local = datetime.combine(day, datetime.min.time(), ZoneInfo(zone)) + timedelta(
            hours=9, seconds=rng.randrange(10 * 3600)
        )  # 09:00-19:00 at the pharmacy (and the patient)
        return local.astimezone(UTC)

    def attempt(
        pid: int, started: datetime, code: str, number: str, tasks: list[int], script: str
    ) -> int:
        nonlocal aid
        aid += 1
        talk = 40 + rng.randrange(400) if code in dict(REACHED) else 25 + rng.randrange(40)
        ended = started + timedelta(seconds=talk)
        world.attempts.append(
            (
                aid,
                str(uuid.uuid4()),
                pid,
                2 + rng.randrange(agents),
                number,
                "manual",
                started,
                ended,
                code,
                "",
                script,
                {},
                {"open": tasks} if tasks else {},
                ended + timedelta(seconds=20 + rng.randrange(120)),
            )
        )
        return aid

    def action(
        a: int, pid: int, kind: str, rx: int | None, detail: dict[str, Any], when: datetime
    ) -> None:
        nonlocal fid
        fid += 1
        world.actions.append(
            (
                fid,
                f"{a}:{fid}",
                a,
                pid,
                world.pharmacy_of(pid),
                kind,
                rx,
                detail,
                when,
                "delivered",
                1,
            )
        )

    for pid in order:
        if aid >= target:
            break
        ph = world.pharmacy_of(pid)
        zone, _, _, prefix = world.site(ph)
        number = f"{prefix}{pid % 10_000:04d}"
        kinds = rng.sample(PATIENT_KINDS, rng.choice((1, 1, 2, 2, 3)))
        first = rng.randrange(len(days))
        created = at(days[first], zone) - timedelta(days=rng.randrange(1, 10))
        tasks: list[tuple[int, str]] = []
        for kind in kinds:
            tid += 1
            tasks.append((tid, kind))
        ids = [t for t, _ in tasks] if rng.random() > 0.02 else []  # a few inbound: no task
        day = first
        reached_at: tuple[int, str, datetime] | None = None
        for _ in range(MAX_TRIES):
            if day >= len(days):
                break
            started = at(days[day], zone)
            if rng.random() < REACH_PER_TRY:
                code = _pick(rng, REACHED)
                a = attempt(pid, started, code, number, ids, kinds[0])
                reached_at = (a, code, started)
                break
            attempt(pid, started, _pick(rng, NOT_REACHED), number, ids, kinds[0])
            day += rng.choice((1, 2, 3, 5))
        if reached_at is not None and reached_at[1] == "callback_requested" and day + 1 < len(days):
            started = at(days[day + 1], zone)  # the callback the patient asked for
            a = attempt(pid, started, "completed", number, ids, kinds[0])
            reached_at = (a, "completed", started)
        for t, kind in tasks:
            row: tuple[Any, ...] = (
                t,
                pid,
                world.campaign(ph, kind),
                f"{kind}:{pid}",
                "Due",
                created,
                10.0,
                {},
            )
            if reached_at is not None:
                world.tasks_done.append((*row, "done", reached_at[2], reached_at[1]))
            else:
                world.tasks_open.append((*row, "open"))
        if reached_at is not None:
            a, code, when = reached_at
            if code in ("completed", "transferred_pharmacist"):
                rxs = world.rx_of[pid]
                for kind in kinds:
                    if kind in ("refill_reminder", "adherence", "post_dispense") and rxs:
                        if rng.random() < 0.55:
                            rx = rng.choice(rxs)
                            action(a, pid, "refill_request", rx, {}, when)
                            world.requested[rx].append(when.astimezone(ZoneInfo(zone)).date())
                    elif kind == "med_sync_enrollment" and rng.random() < 0.35:
                        action(a, pid, "med_sync_enrollment", None, {"sync_day": 15}, when)
                    elif kind == "vaccine" and rng.random() < 0.3:
                        action(
                            a,
                            pid,
                            "vaccine_interest",
                            None,
                            {"vaccine": rng.choice(VACCINES)},
                            when,
                        )
            if code == "transferred_pharmacist":
                action(a, pid, "pharmacist_escalation", None, {}, when)
        if rng.random() < 0.06 and first + 1 < len(days):  # the pharmacy asks us to call the office
            tid += 1
            office_task = (tid, pid, world.campaign(ph, OFFICE), f"office:{pid}", "Prescriber")
            office_day = first + 1
            result = "voicemail"
            for _ in range(2):
                if office_day >= len(days):
                    break
                started = at(days[office_day], zone)
                result = _pick(rng, OFFICE_OUTCOMES)
                a = attempt(pid, started, result, f"{prefix}{9000 + ph:04d}", [tid], "office")
                if result == "completed":
                    action(
                        a, pid, "prescriber_followup", None, {"outcome": "renewal sent"}, started
                    )
                    break
                office_day += 2
            row = (*office_task, created, 5.0, {})
            if result == "completed":
                world.tasks_done.append((*row, "done", started, "completed"))
            else:
                world.tasks_open.append((*row, "open"))


def _fills(world: _World, seed: int) -> Iterator[tuple[Any, ...]]:
    """A year of dispensing per prescription: a 30- or 90-day supply refilled after a gap that
    depends on how adherent the patient is; a refill request brings the next fill forward (most
    of the time) to a few days after the call."""
    rng = random.Random(seed + 1)
    fid = 0
    for pid in range(1, world.patients + 1):
        habit = rng.random()
        gap_lo, gap_hi = (0, 4) if habit < 0.55 else (0, 25) if habit < 0.8 else (10, 70)
        for rx in world.rx_of[pid]:
            supply = 30 if rng.random() < 0.3 else 90
            stop = (
                FILLS_FROM + timedelta(days=rng.randrange(60, 390))
                if rng.random() < 0.1
                else FILLS_TO
            )
            calls = sorted(world.requested.get(rx, ()))
            day = FILLS_FROM + timedelta(days=rng.randrange(supply))
            last: date | None = None
            while day <= stop and day <= FILLS_TO:
                while calls and last is not None and calls[0] <= last:
                    calls.pop(0)  # asked for while the last fill's supply was still on hand
                if calls and calls[0] < day and rng.random() < 0.7:
                    delay = min(rng.randrange(15), rng.randrange(15))  # mostly within days
                    day = min(day, calls.pop(0) + timedelta(days=delay))
                fid += 1
                yield (fid, rx, day, supply, float(supply))
                last = day
                day += timedelta(days=supply + rng.randint(gap_lo, gap_hi))


def load(
    engine: Engine, pharmacies: int, patients: int, attempts: int, seed: int
) -> dict[str, int]:
    rng = random.Random(seed)
    world = _World(pharmacies, patients)
    agents = 100
    counts: dict[str, int] = {}
    counts["pharmacies"] = bulk_load(
        engine,
        "pharmacies",
        PHARMACY_COLUMNS,
        (
            (
                p,
                f"P{p:02d}",
                f"Pharmacy {p}",
                f"{world.site(p)[3]}0100",
                f"{world.site(p)[3]}0101",
                world.site(p)[0],
                world.site(p)[1],
                dtime(8),
                dtime(20),
                0,
            )
            for p in range(1, pharmacies + 1)
        ),
    )
    counts["campaigns"] = bulk_load(
        engine,
        "campaigns",
        ("id", "pharmacy_id", "kind", "name", "script_id", "weight", "attempt_limit", "active"),
        (
            (world.campaign(p, k), p, k, k.replace("_", " ").capitalize(), k, 1.0, MAX_TRIES, True)
            for p in range(1, pharmacies + 1)
            for k in KINDS
        ),
    )
    counts["users"] = bulk_load(
        engine,
        "users",
        ("id", "username", "display_name", "role", "password_hash", "active"),
        [(1, "supervisor", "Supervisor", "supervisor", "-", True)]
        + [(i + 2, f"agent{i:03d}", f"Agent {i}", "agent", "-", True) for i in range(agents)],
    )
    bulk_load(
        engine,
        "user_pharmacies",
        ("user_id", "pharmacy_id"),
        ((1, p) for p in range(1, pharmacies + 1)),
    )
    counts["patients"] = load_plain_patients(
        engine,
        (
            (
                i,
                world.pharmacy_of(i),
                f"M{i:07d}",
                f"Patient{i}",
                date(1940 + i % 45, 1 + i % 12, 1 + i % 28),
                "en",
                world.site(world.pharmacy_of(i))[2],
                world.site(world.pharmacy_of(i))[1],
            )
            for i in range(1, patients + 1)
        ),
    )
    world.rx_of.append(())
    prescriptions: list[tuple[Any, ...]] = []
    for i in range(1, patients + 1):
        n = 2 if i % 10 < 7 else 1  # 1.7 PQA prescriptions a patient
        ids = []
        for k in range(n):
            rid = len(prescriptions) + 1
            cls = CLASSES[(i + k) % len(CLASSES)]
            ingredient, name = DRUGS[cls][i % 2]
            prescriptions.append(
                (rid, i, name, ingredient, cls, True, 3, "Dr. Test", date(2025, 9, 1), True)
            )
            ids.append(rid)
        world.rx_of.append(tuple(ids))
    counts["prescriptions"] = bulk_load(
        engine,
        "prescriptions",
        (
            "id",
            "patient_id",
            "drug_name",
            "ingredient",
            "pqa_class",
            "chronic",
            "refills_left",
            "prescriber",
            "written_on",
            "active",
        ),
        prescriptions,
    )
    del prescriptions
    _plan_calls(world, attempts, agents, rng)
    log(f"planned {len(world.attempts):,} attempts; loading fills …")
    counts["fills"] = bulk_load(
        engine,
        "fills",
        ("id", "prescription_id", "fill_date", "days_supply", "quantity"),
        _fills(world, seed),
    )
    task_cols = (
        "id",
        "patient_id",
        "campaign_id",
        "subject",
        "reason",
        "created_at",
        "score",
        "priority_parts",
    )
    counts["tasks"] = bulk_load(
        engine, "tasks", (*task_cols, "status", "closed_at", "closed_reason"), world.tasks_done
    ) + bulk_load(engine, "tasks", (*task_cols, "status"), world.tasks_open)
    counts["attempts"] = bulk_load(
        engine,
        "attempts",
        (
            "id",
            "uid",
            "patient_id",
            "user_id",
            "phone_number",
            "dial_mode",
            "started_at",
            "ended_at",
            "disposition",
            "notes",
            "script_id",
            "answers",
            "task_ids",
            "recorded_at",
        ),
        world.attempts,
    )
    counts["follow_up_actions"] = bulk_load(
        engine,
        "follow_up_actions",
        (
            "id",
            "idempotency_key",
            "attempt_id",
            "patient_id",
            "pharmacy_id",
            "kind",
            "prescription_id",
            "detail",
            "created_at",
            "status",
            "tries",
        ),
        world.actions,
    )
    counts["refill_requests"] = sum(1 for a in world.actions if a[5] == "refill_request")
    sync_sequences(
        engine,
        (
            "pharmacies",
            "campaigns",
            "users",
            "patients",
            "prescriptions",
            "fills",
            "tasks",
            "attempts",
            "follow_up_actions",
        ),
    )
    return counts


def timed(fn: Callable[[], object], repeat: int, slow_s: float) -> list[float]:
    """Milliseconds of each run, sorted; one run only when the first takes `slow_s` or more."""
    out = []
    for n in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
        if n == 0 and out[0] >= slow_s * 1000:
            break
    return sorted(out)


def floor_query(session: Session, pharmacy: str) -> int:
    """The rows the report reads for `pharmacy` (a code or all), fetched as plain tuples with no
    work on them: the quarter's calls of its patients, and the PDC windows' class fills."""
    which = (
        ""
        if pharmacy == ALL
        else " AND p.pharmacy_id = (SELECT id FROM pharmacies WHERE code = :ph)"
    )
    _, w0, w1 = pdc_windows(START, END)
    lo = datetime.combine(START - timedelta(days=1), datetime.min.time())
    hi = datetime.combine(END + timedelta(days=2), datetime.min.time())
    calls = session.execute(
        text(
            "SELECT a.id, a.patient_id, a.started_at, a.disposition, a.phone_number, a.task_ids "
            "FROM attempts a JOIN patients p ON p.id = a.patient_id "
            "WHERE a.started_at >= :lo AND a.started_at < :hi" + which
        ),
        {"lo": lo, "hi": hi, "ph": pharmacy},
    ).all()
    fills = session.execute(
        text(
            "SELECT r.pqa_class, r.patient_id, r.ingredient, f.fill_date, f.days_supply "
            "FROM prescriptions r JOIN fills f ON f.prescription_id = r.id "
            "JOIN patients p ON p.id = r.patient_id "
            "WHERE r.pqa_class IS NOT NULL AND f.fill_date >= :a AND f.fill_date <= :b" + which
        ),
        {"a": w0[0] - timedelta(days=CARRY_IN_DAYS), "b": w1[1], "ph": pharmacy},
    ).all()
    return len(calls) + len(fills)


def _runs(sessions: sessionmaker[Session], pharmacy: str) -> dict[str, Callable[[], object]]:
    def build() -> object:
        with sessions() as s:
            report = program_report(s, WHO, pharmacy, START, END, NOW)
            s.rollback()
        return report

    def export(fmt: str) -> Callable[[], object]:
        def run() -> object:
            with sessions() as s:
                made = export_report(s, WHO, pharmacy, START, END, fmt, NOW)
                s.rollback()  # leave no audit row behind between runs
            return made

        return run

    out: dict[str, Callable[[], object]] = {"build (program_report)": build}
    out.update({f"export {fmt}": export(fmt) for fmt in FORMATS})
    return out


def profile(sessions: sessionmaker[Session], pharmacy: str, lines: int) -> str:
    prof = cProfile.Profile()
    with sessions() as s:
        prof.enable()
        export_report(s, WHO, pharmacy, START, END, "pdf", NOW)
        prof.disable()
        s.rollback()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)
    return buf.getvalue()


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--pharmacies", type=int, default=20)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--attempts", type=int, default=150_000, help="calls in the quarter")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (median)")
    parser.add_argument(
        "--slow", type=float, default=20.0, help="seconds: a run this slow is not repeated"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one export (to stderr)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    server = server_url(args) if args.backend == "postgres" else None
    with scratch_database(args.backend, server) as url:
        engine = make_engine(url)
        upgrade(engine)
        log(f"loading {args.pharmacies} pharmacies, {args.patients:,} patients …")
        started = time.perf_counter()
        counts = load(engine, args.pharmacies, args.patients, args.attempts, args.seed)
        analyze(engine)
        load_s = time.perf_counter() - started
        log(f"loaded in {load_s:.1f} s: {counts}")
        sessions = session_factory(engine)
        results: dict[str, dict[str, float | int]] = {}
        rows: list[tuple[str, ...]] = []
        figures: dict[str, Any] = {}
        floors: dict[str, float] = {}
        for label, pharmacy in (("one pharmacy (P01)", "P01"), (f"all {args.pharmacies}", ALL)):
            with sessions() as s:
                report = program_report(s, WHO, pharmacy, START, END, NOW)
                figures[pharmacy] = _figures(report)
                log(f"timing {label}: floor …")
                floor = timed(partial(floor_query, s, pharmacy), args.repeat, args.slow)
            floors[pharmacy] = floor_ms = statistics.median(floor)
            parts = _runs(sessions, pharmacy)
            parts.update(
                {
                    f"  render {fmt} only": partial(render, report)
                    for fmt, (render, _) in RENDERERS.items()
                }
            )
            for part, fn in {"floor: fetch the rows": lambda: None, **parts}.items():
                if part.startswith("floor"):
                    ms = floor
                else:
                    log(f"timing {label}: {part.strip()} …")
                    ms = timed(fn, args.repeat, args.slow)
                med = statistics.median(ms)
                results[f"{pharmacy}: {part.strip()}"] = {
                    "median_ms": round(med, 1),
                    "max_ms": round(ms[-1], 1),
                    "runs": len(ms),
                }
                rows.append(
                    (
                        f"{label}: {part}",
                        f"{med:,.1f}",
                        f"{ms[-1]:,.1f}",
                        str(len(ms)),
                        f"{med / floor_ms:.1f}×" if floor_ms else "-",
                    )
                )
        if args.profile:
            print(profile(sessions, ALL, 30), file=sys.stderr)
        engine.dispose()
    print_table(
        f"Program report for {START} to {END} on {args.backend}: {counts['patients']:,} patients, "
        f"{counts['fills']:,} fills, {counts['attempts']:,} attempts, "
        f"{counts['follow_up_actions']:,} follow-ups (median of up to {args.repeat} runs)",
        ("what", "median ms", "max ms", "runs", "vs floor"),
        rows,
    )
    one = figures["P01"]
    print(
        f"\nP01: {one['patients_called']:,} patients called, {one['patients_reached']:,} reached, "
        f"{one['attempts']:,} attempts, {one['refill_requests']:,} refill requests "
        f"({one['refills_filled']:,} filled), {one['prescriber_calls']:,} prescriber-office "
        f"calls, {one['outside_policy']} outside policy; load {load_s:.0f} s"
    )
    if args.json:
        emit_json(
            {
                "benchmark": "report",
                "backend": args.backend,
                "period": [START.isoformat(), END.isoformat()],
                "counts": counts,
                "floor_ms": {k: round(v, 1) for k, v in floors.items()},
                "parts": results,
                "figures": figures,
                "load_s": round(load_s, 1),
            }
        )
    return 0


def _figures(report: ProgramReport) -> dict[str, int]:
    """A few of the report's totals, to show the load is the quarter the docstring says."""
    secs = report.sections
    return {
        "sections": len(secs),
        "patients_called": sum(s.patients_called for s in secs),
        "patients_reached": sum(s.patients_reached for s in secs),
        "attempts": sum(s.attempts for s in secs),
        "refill_requests": sum(s.refills.requested for s in secs),
        "refills_filled": sum(s.refills.filled for s in secs),
        "prescriber_calls": sum(s.prescriber_calls for s in secs),
        "outside_policy": sum(s.policy.outside for s in secs),
    }


if __name__ == "__main__":
    raise SystemExit(main())
