"""Import: a pharmacy's export (CSV files or FHIR bulk NDJSON) through `queues.imports`, against a
store floor, then a 1% re-import, then agents claiming while a full queue build runs.

- import: the files read, upserted and the changed patients' queues built, as `outreach import`
  does (all of a first import's patients are changed, so its build is a full one);
- store floor: the same rows written set-based into the same tables of an empty database made the
  same way (binary COPY on PostgreSQL, one INSERT … SELECT per table over a JSON array on SQLite),
  with the ids read back between tables as any loader must; budget: import ≤ 3× the floor;
- delta: a re-import in which 1% of the patients changed (a new ZIP, a new fill), with the
  rebuild of those patients; budget ≤ 5% of the full import and build;
- claims: agents claiming (as the console does, queues.claims.fast_claimer.Claimer) while
  `outreach queue build` (queues.building.stepwise) rebuilds everyone on a new day, against the
  same claimers with no build; budget p99 ≤ 2× and no "busy" errors. Like for like, one window
  with no build starts on a new day too (a new day's first claims are full claims, build or no
  build): `claim_p99_ratio_vs_new_day`; the ratio against the window before (no day jump) stays
  `claim_p99_ratio` (bench/_build_claims.py).

    python bench/import.py --patients 100000 --fills 1000000 --format csv --backend sqlite --json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import _build_claims
from _common import (
    emit_json,
    fmt,
    log,
    print_table,
    ratio,
    scratch_database,
    server_url,
)
from sqlalchemy import Engine, insert, select, text

import queues.imports.run as import_run
from queues.imports.run import ImportSummary, import_csv, import_fhir
from queues.imports.settings import ImportSettings
from queues.imports.store import FILL_COLUMNS, PATIENT_COLUMNS, RX_COLUMNS
from queues.settings import QueueSettings
from queues.store.bulk import insert_rows
from queues.store.db import make_engine, session_factory, upgrade
from queues.store.models import Campaign, Pharmacy, User

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Chicago
PLACES = (("75201", "TX", "214"), ("77002", "TX", "713"), ("78701", "TX", "512"))
DRUGS = (
    ("Lisinopril 10 MG Oral Tablet", "314076"),
    ("Simvastatin 20 MG Oral Tablet", "312961"),
    ("24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", "860975"),
    ("Atorvastatin 20 MG Oral Tablet", ""),
    ("Amlodipine 5 MG Oral Tablet", ""),
    ("Levothyroxine 75 MCG Oral Tablet", ""),
)
KINDS = ("refill_reminder", "adherence", "vaccine", "diabetes_education", "smoking_cessation")


@dataclass
class World:
    """The synthetic export, as records (for the floor) and as files (for the import)."""

    patients: list[tuple[str, str, str, date, str, str]] = field(default_factory=list)
    prescriptions: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # mrn, rx, name, code
    fills: list[tuple[str, str, str, date, int]] = field(
        default_factory=list
    )  # mrn, rx, id, day, days

    def rows(self) -> int:
        return 2 * len(self.patients) + len(self.prescriptions) + len(self.fills)  # + phones


def make_world(patients: int, fills: int, seed: int = 7) -> World:
    rng = random.Random(seed)
    w = World()
    per_patient = max(1, fills // patients)
    for p in range(patients):
        zip_code, state, _area = PLACES[p % len(PLACES)]
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 45))
        w.patients.append(
            (f"P{p:07d}", f"Given{p % 997}", f"Family{p % 1999}", born, zip_code, state)
        )
        rxs = []
        for r in range(1 + rng.randrange(3)):
            name, code = DRUGS[rng.randrange(len(DRUGS))]
            rx = f"R{p:07d}-{r}"
            rxs.append(rx)
            w.prescriptions.append((f"P{p:07d}", rx, name, code))
        # Monthly fills back from a recent one, so some run out within the refill window.
        last = NOW.date() - timedelta(days=rng.randrange(40))
        for f in range(per_patient):
            rx = rxs[f % len(rxs)]
            day = last - timedelta(days=30 * (f // len(rxs)))
            w.fills.append((f"P{p:07d}", rx, f"F{p:07d}-{f}", day, 30))
    return w


def write_csv(w: World, folder: Path) -> dict[str, Path]:
    files = {k: folder / f"{k}.csv" for k in ("patients", "phones", "prescriptions", "fills")}
    with files["patients"].open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["mrn", "first_name", "last_name", "birth_date", "zip_code", "state"])
        out.writerows(w.patients)
    with files["phones"].open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["mrn", "number", "kind"])
        for n, p in enumerate(w.patients):
            area = PLACES[n % len(PLACES)][2]
            out.writerow([p[0], f"+1{area}555{n % 10000:04d}", "mobile"])
    with files["prescriptions"].open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["mrn", "rx_id", "drug_name", "rxnorm", "refills_left"])
        out.writerows((m, rx, name, code, 3) for m, rx, name, code in w.prescriptions)
    with files["fills"].open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["mrn", "rx_id", "fill_id", "fill_date", "days_supply"])
        out.writerows(w.fills)
    return files


def write_ndjson(w: World, folder: Path) -> Path:
    with (folder / "Patient.ndjson").open("w") as fh:
        for n, (mrn, given, family, born, zip_code, state) in enumerate(w.patients):
            area = PLACES[n % len(PLACES)][2]
            fh.write(
                json.dumps(
                    {
                        "resourceType": "Patient",
                        "id": mrn,
                        "name": [{"family": family, "given": [given]}],
                        "birthDate": born.isoformat(),
                        "address": [{"postalCode": zip_code, "state": state}],
                        "telecom": [
                            {
                                "system": "phone",
                                "value": f"+1{area}555{n % 10000:04d}",
                                "use": "mobile",
                            }
                        ],
                    }
                )
                + "\n"
            )
    with (folder / "MedicationRequest.ndjson").open("w") as fh:
        for mrn, rx, name, code in w.prescriptions:
            concept: dict[str, Any] = {"text": name}
            if code:
                concept["coding"] = [
                    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}
                ]
            fh.write(
                json.dumps(
                    {
                        "resourceType": "MedicationRequest",
                        "id": rx,
                        "status": "active",
                        "intent": "order",
                        "subject": {"reference": f"Patient/{mrn}"},
                        "medicationCodeableConcept": concept,
                        "dispenseRequest": {"numberOfRepeatsAllowed": 3},
                    }
                )
                + "\n"
            )
    with (folder / "MedicationDispense.ndjson").open("w") as fh:
        for mrn, rx, fill_id, day, days in w.fills:
            fh.write(
                json.dumps(
                    {
                        "resourceType": "MedicationDispense",
                        "id": fill_id,
                        "status": "completed",
                        "subject": {"reference": f"Patient/{mrn}"},
                        "medicationCodeableConcept": {"text": "as prescribed"},
                        "authorizingPrescription": [{"reference": f"MedicationRequest/{rx}"}],
                        "whenHandedOver": day.isoformat(),
                        "daysSupply": {"value": days, "unit": "days", "code": "d"},
                    }
                )
                + "\n"
            )
    return folder


def prepare(url: str) -> tuple[Engine, int]:
    engine = make_engine(url, pool_size=20)
    upgrade(engine)
    with session_factory(engine).begin() as s:
        s.execute(text("DELETE FROM campaigns"))
        from datetime import time as dtime

        ph = Pharmacy(
            code="BENCH",
            name="Bench Pharmacy",
            caller_id="+12145550100",
            callback_number="+12145550100",
            timezone="America/Chicago",
            state="TX",
            opens_at=dtime(8),
            closes_at=dtime(20),
        )
        s.add(ph)
        for kind in KINDS:
            s.add(Campaign(pharmacy_id=None, kind=kind, name=kind, script_id=kind, weight=1.0))
        s.flush()
        return engine, ph.id


@dataclass
class Cpu:
    """This process's CPU seconds (every thread's: on SQLite the database's work is in them too)
    for a whole import and for the builds it ran, so the import's own is the difference."""

    total: float = 0.0
    builds: float = 0.0


def run_import(
    engine: Engine,
    fmt_: str,
    source: Path | dict[str, Path],
    now: datetime,
    cpu: Cpu | None = None,
) -> tuple[float, list[ImportSummary]]:
    sessions = session_factory(engine)
    queue, settings = QueueSettings(), ImportSettings()
    cpu = cpu if cpu is not None else Cpu()
    build = import_run.build_queues  # type: ignore[attr-defined]

    def timed_build(*args: Any, **kwargs: Any) -> Any:
        # Each import's build runs in its call (its writer thread joined before it returns).
        mark = time.process_time()
        try:
            return build(*args, **kwargs)
        finally:
            cpu.builds += time.process_time() - mark

    import_run.build_queues = timed_build  # type: ignore[attr-defined]
    started, cpu_started = time.perf_counter(), time.process_time()
    out = []
    try:
        if fmt_ == "ndjson":
            assert isinstance(source, Path)
            out.append(import_fhir(sessions, str(source), "BENCH", now, queue, settings))
        else:
            assert isinstance(source, dict)
            for kind in ("patients", "phones", "prescriptions", "fills"):
                out.append(import_csv(sessions, kind, source[kind], "BENCH", now, queue, settings))
    finally:
        import_run.build_queues = build  # type: ignore[attr-defined]
    cpu.total += time.process_time() - cpu_started
    return time.perf_counter() - started, out


def store_floor(engine: Engine, pharmacy_id: int, w: World) -> tuple[float, float]:
    """The same rows, written set-based: patients, their ids read back, phones and prescriptions,
    their ids read back, fills; one transaction. Seconds, and this process's CPU seconds."""
    sqlite = engine.dialect.name == "sqlite"

    def v(value: Any) -> Any:
        if sqlite and isinstance(value, date):
            return value.isoformat()
        if sqlite and isinstance(value, bool):
            return int(value)
        return value

    patient_rows = [
        (pharmacy_id, m, g, f, v(b), None, "en", z, s, *(v(False),), None, None, None,
         v(False), None, v(False), v(False), v(False), v(False), v(False))
        for m, g, f, b, z, s in w.patients
    ]  # fmt: skip
    started, cpu_started = time.perf_counter(), time.process_time()
    with engine.begin() as conn:
        insert_rows(
            conn,
            "patients",
            (("pharmacy_id", "int4"), ("mrn", "text"), *PATIENT_COLUMNS,
             ("do_not_call", "bool"), ("med_sync_enrolled", "bool")),
            patient_rows,
        )  # fmt: skip
        ids = dict(
            (m, i) for i, m in conn.execute(text("SELECT id, mrn FROM patients WHERE pharmacy_id = :p"), {"p": pharmacy_id})
        )  # fmt: skip
        insert_rows(
            conn,
            "phones",
            (("patient_id", "int4"), ("number", "text"), ("kind", "text"), ("rank", "int4"),
             ("wrong_number", "bool"), ("do_not_call", "bool")),
            [(ids[p[0]], f"+1214555{n % 10000:04d}", "mobile", 0, v(False), v(False))
             for n, p in enumerate(w.patients)],
        )  # fmt: skip
        insert_rows(
            conn,
            "prescriptions",
            (("patient_id", "int4"), ("source_id", "text"), *RX_COLUMNS),
            [(ids[m], rx, name, "x", code or None, None, v(True), 3, None, None, v(True))
             for m, rx, name, code in w.prescriptions],
        )  # fmt: skip
        rx_ids = dict(
            ((pid, s), i)
            for i, pid, s in conn.execute(
                text("SELECT id, patient_id, source_id FROM prescriptions")
            )
        )
        insert_rows(
            conn,
            "fills",
            (("prescription_id", "int4"), ("source_id", "text"), *FILL_COLUMNS),
            [
                (rx_ids[(ids[m], rx)], fid, v(day), days, 30.0, v(False))
                for m, rx, fid, day, days in w.fills
            ],
        )
    return time.perf_counter() - started, time.process_time() - cpu_started


def changed_world(w: World) -> World:
    """1% of the patients: a new ZIP and a new fill each."""
    step = 100
    out = World(list(w.patients), list(w.prescriptions), list(w.fills))
    for n in range(0, len(out.patients), step):
        mrn, g, f, b, _z, s = out.patients[n]
        out.patients[n] = (mrn, g, f, b, "75202", s)
        out.fills.append(
            (mrn, f"R{n:07d}-0", f"F{n:07d}-new", NOW.date(), 30)
        )  # every patient has -0
    return out


def changes_only(w: World) -> World:
    """Another change to 1% of the patients (a ZIP, a fill), as a file of just those rows (with
    the prescription each new fill is for)."""
    out = World()
    by_id = {p[1]: p for p in w.prescriptions}
    for n in range(50, len(w.patients), 100):
        mrn, g, f, b, _z, s = w.patients[n]
        out.patients.append((mrn, g, f, b, "75203", s))
        out.prescriptions.append(by_id[f"R{n:07d}-0"])
        out.fills.append((mrn, f"R{n:07d}-0", f"F{n:07d}-new2", NOW.date(), 30))
    return out


def add_users(engine: Engine, count: int) -> list[int]:
    with engine.begin() as conn:
        conn.execute(
            insert(User),
            [
                {
                    "username": f"bench{i}",
                    "display_name": "b",
                    "role": "agent",
                    "password_hash": "x",
                    "active": True,
                }
                for i in range(count)
            ],
        )
        return list(
            conn.execute(
                select(User.id).where(User.username.like("bench%")).order_by(User.id)
            ).scalars()
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("csv", "ndjson"), default="csv")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database", metavar="URL", help="PostgreSQL server for scratch databases")
    parser.add_argument("--claimers", type=int, default=4)
    parser.add_argument(
        "--claim-pause-ms", type=float, default=25.0, help="each claimer's pause between claims"
    )
    parser.add_argument(
        "--only",
        choices=("build-claims", "import"),
        help="build-claims: the import, then only the claims phase (no store floor, no "
        "re-imports); import: the store floor, the import and the re-imports (no claims)",
    )
    parser.add_argument(
        "--claims-a-day-behind",
        action="store_true",
        help="claims during the build at the import's clock, a day behind the build's (as "
        "before 2026-12-07: the build's admissions, dated the next day, are no use to them)",
    )
    parser.add_argument(
        "--build-write-pause-ratio",
        type=float,
        help="the build's [build] write_pause_ratio (default: config.toml's)",
    )
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args(argv)
    only_claims = args.only == "build-claims"
    only_import = args.only == "import"
    server = server_url(args) if args.backend == "postgres" else None

    log(f"making {args.patients:,} patients / {args.fills:,} fills ({args.format})")
    world = make_world(args.patients, args.fills)
    delta = changed_world(world)
    with tempfile.TemporaryDirectory(prefix="outreach-import-") as tmp:
        full_dir, delta_dir = Path(tmp, "full"), Path(tmp, "delta")
        full_dir.mkdir()
        delta_dir.mkdir()
        write = write_ndjson if args.format == "ndjson" else write_csv
        full_src, delta_src = write(world, full_dir), write(delta, delta_dir)
        only_dir = Path(tmp, "only")
        only_dir.mkdir()
        only_src = write(changes_only(world), only_dir)

        floor_s = floor_cpu = 0.0
        if not only_claims:
            with scratch_database(args.backend, server) as url:
                engine, pharmacy_id = prepare(url)
                log("store floor")
                floor_s, floor_cpu = store_floor(engine, pharmacy_id, world)
                engine.dispose()
        with scratch_database(args.backend, server) as url:
            engine, pharmacy_id = prepare(url)
            log("full import (and the build of everyone it changed)")
            full_cpu, delta_cpu = Cpu(), Cpu()
            full_s, summaries = run_import(engine, args.format, full_src, NOW, full_cpu)
            build_s = sum(v for s in summaries for k, v in s.phases.items() if k != "store")
            store_s = sum(s.phases.get("store", 0) for s in summaries)
            import_s = full_s - build_s
            log(f"full: {full_s:.1f} s (store {store_s:.1f} s, builds {build_s:.1f} s)")
            delta_s = only_s = 0.0
            delta_summaries: list[ImportSummary] = []
            if not only_claims:
                log("re-import with 1% changed, and its rebuild")
                delta_s, delta_summaries = run_import(
                    engine, args.format, delta_src, NOW, delta_cpu
                )
                log("an import of only the changed rows (another 1%), and its rebuild")
                only_s, _ = run_import(engine, args.format, only_src, NOW)
            claims: dict[str, Any] = {}
            claim_rows: list[tuple[str, str, str, str]] = []
            if not only_import:
                # At most a fifth of the patients claimed with no build, so that at a small
                # --patients the queue is not empty before the build starts; during the build a
                # user for every patient, so the claims end with the build or an empty queue,
                # not when the users run out (at 20,000 they ran out mid-build at 100k patients).
                idle_claims = min(20_000, args.patients // 5)
                # and as many again for each of two more windows with no build: one on a new
                # day before the build (like for like: the build's window starts a new day too),
                # one after it
                users = add_users(engine, 3 * idle_claims + args.patients)
                claims, claim_rows = _build_claims.measure(
                    engine,
                    url,
                    users[: idle_claims + args.patients],
                    pharmacy_id,
                    claimers_n=args.claimers,
                    pause=args.claim_pause_ms / 1000,
                    idle_window=max(3.0, min(20.0, build_s)),
                    idle_claims=idle_claims,
                    now=NOW,
                    at_build_clock=not args.claims_a_day_behind,
                    write_pause_ratio=args.build_write_pause_ratio,
                    after_users=users[
                        idle_claims + args.patients : 2 * idle_claims + args.patients
                    ],
                    new_day_users=users[2 * idle_claims + args.patients :],
                )
            engine.dispose()

    rows_total = world.rows()
    sqlite = args.backend == "sqlite"
    import_cpu = full_cpu.total - full_cpu.builds
    result = {
        "backend": args.backend,
        "format": args.format,
        "patients": args.patients,
        "fills": args.fills,
        "seconds": round(full_s, 3),
        "import_seconds_without_build": round(import_s, 3),
        "build_seconds_in_import": round(build_s, 3),
        "rows_per_s": round(rows_total / import_s),
        "store_floor_s": round(floor_s, 3),
        "ratio_vs_store_floor": ratio(import_s, floor_s),
        # The same ratio in this process's CPU seconds (SQLite only: its database works in this
        # process; PostgreSQL's server does not): steadier than wall time on a shared machine
        # whose load moves between the floor and the import.
        "import_cpu_s": round(import_cpu, 3) if sqlite else None,
        "store_floor_cpu_s": round(floor_cpu, 3) if sqlite else None,
        "cpu_ratio_vs_store_floor": ratio(import_cpu, floor_cpu) if sqlite else None,
        "delta_seconds": round(delta_s, 3),
        "delta_ratio_vs_full": ratio(delta_s, full_s),
        # The same ratio in this process's CPU seconds, builds in (SQLite only, as above: its
        # database and the builds' writer thread work in this process).
        "delta_cpu_s": round(delta_cpu.total, 3) if sqlite else None,
        "full_cpu_s": round(full_cpu.total, 3) if sqlite else None,
        "delta_cpu_ratio_vs_full": ratio(delta_cpu.total, full_cpu.total) if sqlite else None,
        "changes_only_seconds": round(only_s, 3),
        "changes_only_ratio_vs_full": ratio(only_s, full_s),
        "delta_rebuilt_patients": sum(s.rebuilt_patients for s in delta_summaries),
        # Each file is one transaction (store and rebuild): on SQLite the write lock is held as
        # long, and claims wait for it.
        "full_longest_transaction_s": round(max(sum(s.phases.values()) for s in summaries), 3),
        "delta_longest_transaction_s": round(
            max((sum(s.phases.values()) for s in delta_summaries), default=0.0), 3
        ),
        **claims,
    }
    print_table(
        f"import: {args.patients:,} patients, {args.fills:,} fills, {args.format}, {args.backend}",
        ("what", "seconds", "figure", "budget"),
        [
            ("import (read + upsert)", fmt(import_s, 2), f"{result['rows_per_s']:,} rows/s", ""),
            ("store floor (same rows, set-based)", fmt(floor_s, 2), f"{fmt(result['ratio_vs_store_floor'], 2)}× floor", "≤ 3×"),
            *([("CPU: import / store floor (this process)", f"{import_cpu:.2f} / {floor_cpu:.2f}", f"{fmt(result['cpu_ratio_vs_store_floor'], 2)}× floor", "")] if sqlite else []),
            ("build of the imported patients", fmt(build_s, 2), "", ""),
            ("re-import of the whole export, 1% changed, with rebuild", fmt(delta_s, 2), f"{fmt((result['delta_ratio_vs_full'] or 0) * 100, 1)}% of full", "≤ 5%"),
            *([("CPU: re-import of the whole export / full import with builds", f"{delta_cpu.total:.2f} / {full_cpu.total:.2f}", f"{fmt((result['delta_cpu_ratio_vs_full'] or 0) * 100, 1)}% of full", "")] if sqlite else []),
            ("import of only the changed 1%, with rebuild", fmt(only_s, 2), f"{fmt((result['changes_only_ratio_vs_full'] or 0) * 100, 1)}% of full", "≤ 5%"),
            ("longest import transaction: full / re-import of the whole export", f"{result['full_longest_transaction_s']:.2f} / {result['delta_longest_transaction_s']:.2f}", "the write lock, on SQLite", ""),
            *claim_rows,
        ],
    )  # fmt: skip
    if args.json:
        emit_json(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
