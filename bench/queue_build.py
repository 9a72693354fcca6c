"""Build the queues from a pharmacy's data: queues.building.build.build_queues against a set-based floor.

    bench/queue_build.py --backend sqlite|postgres --patients 100000 --fills 1000000 [--json]

Generates synthetic patients with phones, chronic and acute prescriptions with fill histories (early and late
refills, gaps), some conditions and immunizations, and one campaign of every kind; bulk-loads them
into a fresh database; then times, on the same data:

- build: the first `build_queues` (every due task created, queue entries written), committed;
- rebuild: `build_queues` again with nothing changed (idempotent: it must create, close and
  rescore nothing);
- floor: one set-based SQL pass over the same fills — each active chronic prescription's run-out
  (latest fill + days supply) and the ones due in the refill window — the least any build must read;
- store floor: the first build's tasks copied, in one `INSERT … SELECT`, into an empty table
  shaped as `tasks` is (its columns, indexes and foreign keys) — the least any first build must
  write, reported beside the floor to show how much of the budget writing alone takes;
- stepwise build and rebuild: what `outreach queue build` runs (a full build with no user named,
  or an admin's: queues.building.stepwise.build_queues_in_steps, with the config's `[build]`
  pacing — `--config FILE`, else OUTREACH_CONFIG or ./config.toml, else the defaults), on a copy
  of the same data made before the first build (SQLite: the file; PostgreSQL: a database made
  from it as a template), so both builds start from the same unbuilt world.

Budget (DESIGN.md): the build within 30 s and within 2x the store floor (the keys
`within_budget`, against 3x the read-only floor, are kept as they were).
"""

from __future__ import annotations

import logging
import random
import re
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from _common import (
    CAMPAIGN_KINDS,
    analyze,
    base_parser,
    bulk_load,
    emit_json,
    fmt,
    is_postgres,
    log,
    print_table,
    ratio,
    scratch_database,
    server_url,
    sync_sequences,
)
from sqlalchemy import Engine, create_engine, make_url, text

from queues.building.build import BuildResult, build_queues
from queues.building.settings import BuildSettings
from queues.building.stepwise import build_queues_in_steps
from queues.settings import QueueSettings
from queues.store.db import make_engine, session_factory, transaction, upgrade
from queues.store.models import Campaign, Pharmacy

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)  # a Wednesday, during the day in every zone
TODAY = date(2026, 12, 2)
BUDGET_S, BUDGET_RATIO = 30.0, 3.0
STORE_BUDGET_RATIO = 2.0  # DESIGN.md: the build within 2x the store floor
PHARMACIES = (  # code, zone, state, ZIP
    ("QTX", "America/Chicago", "TX", "75201"),
    ("QNY", "America/New_York", "NY", "10001"),
    ("QCA", "America/Los_Angeles", "CA", "90012"),
)
# ingredient, PQA class, chronic, usual days supply
DRUGS = (
    ("lisinopril", "RASA", True, 30),
    ("losartan", "RASA", True, 90),
    ("sacubitril", "RASA", True, 30),
    ("atorvastatin", "STATIN", True, 90),
    ("rosuvastatin", "STATIN", True, 30),
    ("metformin", "DIABETES", True, 30),
    ("glipizide", "DIABETES", True, 30),
    ("insulin", None, True, 30),
    ("levothyroxine", None, True, 90),
    ("amlodipine", None, True, 30),
    ("sertraline", None, True, 30),
    ("amoxicillin", None, False, 10),
)
RX_PER_PATIENT = (1, 1, 1, 2, 2, 3, 3, 4, 5)  # mean ~2.4

FLOOR_SQL = {
    "postgresql": """
        SELECT rx.patient_id, rx.id, f.run_out
        FROM prescriptions rx
        JOIN (SELECT prescription_id, max(fill_date + days_supply) AS run_out
              FROM fills GROUP BY prescription_id) f ON f.prescription_id = rx.id
        JOIN patients p ON p.id = rx.patient_id
        WHERE rx.active AND rx.chronic AND NOT p.do_not_call AND NOT p.deceased
          AND f.run_out BETWEEN CAST(:today AS date) - 30 AND CAST(:today AS date) + :window
    """,
    "sqlite": """
        SELECT rx.patient_id, rx.id, f.run_out
        FROM prescriptions rx
        JOIN (SELECT prescription_id, max(julianday(fill_date) + days_supply) AS run_out
              FROM fills GROUP BY prescription_id) f ON f.prescription_id = rx.id
        JOIN patients p ON p.id = rx.patient_id
        WHERE rx.active AND rx.chronic AND NOT p.do_not_call AND NOT p.deceased
          AND f.run_out BETWEEN julianday(:today) - 30 AND julianday(:today) + :window
    """,
}


def fill_world(engine: Engine, patients: int, fills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    sessions = session_factory(engine)
    with transaction(sessions) as s:
        ph_ids = []
        for code, zone, state, _zip in PHARMACIES:
            ph = Pharmacy(
                code=code,
                name=f"{code} Bench Pharmacy",
                caller_id="+12145550100",
                callback_number="+12145550101",
                timezone=zone,
                state=state,
                opens_at=dtime(8),
                closes_at=dtime(20),
                priority=0,
            )
            s.add(ph)
            s.flush()
            ph_ids.append(ph.id)
        for kind in CAMPAIGN_KINDS:
            s.add(Campaign(pharmacy_id=None, kind=kind, name=kind, script_id=kind, weight=1.0))
        first = s.scalar(text("SELECT coalesce(max(id), 0) + 1 FROM patients")) or 1

    pids = range(first, first + patients)
    flags = [rng.random() for _ in pids]
    log(f"loading {patients:,} patients")
    bulk_load(
        engine,
        "patients",
        [
            "id",
            "pharmacy_id",
            "mrn",
            "first_name",
            "last_name",
            "birth_date",
            "language",
            "zip_code",
            "state",
            "caregiver_authorized",
            "do_not_call",
            "deceased",
            "med_sync_enrolled",
            "med_sync_day",
            "tobacco_use",
            "hospice",
            "esrd",
        ],
        (
            (
                pid,
                ph_ids[k % 3],
                f"Q{k:08d}",
                "Test",
                f"Build{k}",
                date(1935 + k % 65, 1 + k % 12, 1 + k % 28),
                "es" if k % 9 == 0 else "en",
                PHARMACIES[k % 3][3],
                PHARMACIES[k % 3][2],
                False,
                flags[k] < 0.01,
                0.01 <= flags[k] < 0.012,
                flags[k] > 0.9,
                1 + k % 28 if flags[k] > 0.9 else None,
                0.2 <= flags[k] < 0.28,
                0.3 <= flags[k] < 0.305,
                0.4 <= flags[k] < 0.405,
            )
            for k, pid in enumerate(pids)
        ),
    )

    # Every patient has a cell in their pharmacy's area code, one in five a home line too, and a few
    # a best time to call: what the build's calling-rule check ahead (queues.claims.admission) reads.
    area = {"QTX": "214", "QNY": "212", "QCA": "213"}
    log(f"loading phones for {patients:,} patients")
    bulk_load(
        engine,
        "phones",
        ["patient_id", "number", "kind", "rank", "best_time", "wrong_number", "do_not_call"],
        (
            row
            for k, pid in enumerate(pids)
            for row in (
                (
                    pid,
                    f"+1{area[PHARMACIES[k % 3][0]]}{2_000_000 + k % 7_000_000:07d}",
                    "mobile",
                    0,
                    "after 5pm" if k % 17 == 0 else None,
                    False,
                    k % 50 == 0,
                ),
                *(
                    [
                        (
                            pid,
                            f"+1{area[PHARMACIES[k % 3][0]]}{3_000_000 + k:07d}",
                            "home",
                            1,
                            None,
                            k % 40 == 5,
                            False,
                        )
                    ]
                    if k % 5 == 0
                    else []
                ),
            )
        ),
    )

    # Prescriptions, then exactly `fills` fills spread over them (at least one each).
    rx_rows: list[tuple[Any, ...]] = []
    for pid in pids:
        for drug in rng.sample(DRUGS, rng.choice(RX_PER_PATIENT)):
            rx_rows.append((len(rx_rows) + 1, pid, drug))
    if fills < len(rx_rows):
        rx_rows = rx_rows[:fills]
    per_rx = [1] * len(rx_rows)
    for _ in range(fills - len(rx_rows)):
        per_rx[rng.randrange(len(rx_rows))] += 1
    log(f"loading {len(rx_rows):,} prescriptions and {fills:,} fills")
    bulk_load(
        engine,
        "prescriptions",
        [
            "id",
            "patient_id",
            "drug_name",
            "ingredient",
            "pqa_class",
            "chronic",
            "refills_left",
            "active",
        ],
        (
            (rid, pid, f"{d[0].title()} tablet", d[0], d[1], d[2], rng.randrange(0, 6), True)
            for rid, pid, d in rx_rows
        ),
    )

    def fill_rows() -> Iterator[tuple[Any, ...]]:
        for (rid, _pid, drug), n in zip(rx_rows, per_rx, strict=False):
            supply = drug[3]
            # The latest fill lands so that run-outs spread from a month ago to two months ahead.
            day = TODAY - timedelta(days=rng.randrange(0, supply + 30))
            for _ in range(n):
                yield (rid, day, supply, float(supply))
                # early refills (negative gap) carry surplus; late ones leave gaps
                day -= timedelta(days=supply + rng.choice((-5, -2, 0, 0, 0, 3, 7, 15, 40)))

    bulk_load(
        engine, "fills", ["prescription_id", "fill_date", "days_supply", "quantity"], fill_rows()
    )
    diabetic = sorted({pid for _rid, pid, drug in rx_rows if drug[1] == "DIABETES"})
    bulk_load(
        engine,
        "conditions",
        ("patient_id", "code", "display"),
        ((pid, "E11.9", "Type 2 diabetes mellitus") for pid in diabetic[::2]),
    )
    bulk_load(
        engine,
        "immunizations",
        ("patient_id", "vaccine", "given_on"),
        (
            (
                pid,
                rng.choice(("zoster", "influenza", "pneumococcal")),
                TODAY - timedelta(days=rng.randrange(30, 900)),
            )
            for pid in pids
            if rng.random() < 0.3
        ),
    )
    sync_sequences(engine, ("patients", "phones", "prescriptions"))
    return {"prescriptions": len(rx_rows), "fills": fills}


def timed_build(engine: Engine) -> tuple[float, Any]:
    sessions = session_factory(engine)
    t0 = time.perf_counter()
    with transaction(sessions) as s:
        result = build_queues(s, NOW)
    return time.perf_counter() - t0, result


class _StepsLog(logging.Handler):
    """The stepwise build's last log line ("full build: done (...)") carries its steps and its
    seconds writing and paused (queues.building.stepwise): kept here, by its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.done: tuple[Any, ...] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("full build: done") and isinstance(record.args, tuple):
            self.done = record.args


def timed_stepwise_build(
    engine: Engine, settings: QueueSettings, pacing: BuildSettings
) -> tuple[float, BuildResult, dict[str, float]]:
    """`outreach queue build` as it runs for an admin or unattended: the full build in steps,
    paced as the config says; its seconds, its result, and its steps' own figures."""
    sessions = session_factory(engine)
    logger = logging.getLogger("queues.building.stepwise")
    handler, level = _StepsLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        t0 = time.perf_counter()
        result = build_queues_in_steps(sessions, NOW, settings, build=pacing)
        seconds = time.perf_counter() - t0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    steps: dict[str, float] = {}
    if handler.done is not None and len(handler.done) >= 6:
        n, writing, paused, _over3, _over8, checkpointing = handler.done[:6]
        steps = {
            "steps": int(n),
            "writing_s": round(float(writing), 3),
            "paused_s": round(float(paused), 3),
            "checkpointing_s": round(float(checkpointing), 3),
        }
    return seconds, result, steps


def copy_unbuilt(engine: Engine, url: str, server: str | None, into: str) -> str:
    """A copy of the database as it is now (no build yet): SQLite's file; on PostgreSQL a
    database made from this one as its template (no connection may be open on it meanwhile)."""
    if not is_postgres(engine):
        engine.dispose()  # the last connection closed: SQLite copies the WAL into the file
        source = make_url(url).database
        assert source is not None
        target = Path(source).with_name(f"{into}.db")
        for suffix in ("", "-wal"):  # a WAL left behind is part of the database: copied with it
            if Path(source + suffix).exists():
                shutil.copyfile(source + suffix, str(target) + suffix)
        return f"sqlite:///{target}"
    engine.dispose()
    assert server is not None
    _on_server(server, f'CREATE DATABASE "{into}" TEMPLATE "{make_url(url).database}"')
    return make_url(server).set(database=into).render_as_string(hide_password=False)


def drop_copy(url: str, server: str | None) -> None:
    if server is None:
        return  # SQLite: the copy is in the scratch directory, removed with it
    _on_server(server, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def _on_server(server: str, sql: str) -> None:
    """One statement outside a transaction (CREATE / DROP DATABASE) on the server's own database."""
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(sql))
    finally:
        admin.dispose()


def floor_pass(engine: Engine) -> tuple[float, int]:
    sql = text(FLOOR_SQL["postgresql" if is_postgres(engine) else "sqlite"])
    window = QueueSettings().refill_window_days
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        t0 = time.perf_counter()
        rows = conn.execute(sql, {"today": TODAY.isoformat(), "window": window}).all()
        return time.perf_counter() - t0, len(rows)


STORE_COPY = "bench_store_floor_tasks"


def _tasks_copy_ddl(conn: Any, postgres: bool) -> list[str]:
    """Statements making an empty table shaped as `tasks`: its columns, indexes, foreign keys."""
    if postgres:
        fks = conn.execute(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'tasks'::regclass AND contype = 'f'"
            )
        ).scalars()
        return [f"CREATE TABLE {STORE_COPY} (LIKE tasks INCLUDING ALL)"] + [
            f"ALTER TABLE {STORE_COPY} ADD {fk}" for fk in fks
        ]
    ddl = conn.execute(
        text("SELECT sql FROM sqlite_master WHERE tbl_name = 'tasks' AND sql IS NOT NULL")
    ).scalars()
    # The table's own statement first, then its indexes; table and index names renamed.
    return sorted(
        (re.sub(r"(?<![a-z])tasks(?![a-z])", STORE_COPY, sql) for sql in ddl),
        key=lambda sql: not sql.startswith("CREATE TABLE"),
    )


def store_floor(engine: Engine) -> tuple[float, int]:
    """Seconds to write the stored tasks again, set-based, into an empty table shaped as `tasks`
    (foreign keys checked: queues.store.db turns them on for SQLite): the part of a first build no implementation can leave out."""
    postgres = is_postgres(engine)
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE bench_task_rows AS SELECT * FROM tasks"))
        for sql in _tasks_copy_ddl(conn, postgres):
            conn.execute(text(sql))
        conn.commit()
        try:
            t0 = time.perf_counter()
            rows = conn.execute(text(f"INSERT INTO {STORE_COPY} SELECT * FROM bench_task_rows"))
            conn.commit()
            return time.perf_counter() - t0, rows.rowcount
        finally:
            conn.execute(text(f"DROP TABLE {STORE_COPY}"))
            conn.execute(text("DROP TABLE bench_task_rows"))
            conn.commit()


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="the stepwise build's [build] pacing and [queue] settings from this file "
        "(default: OUTREACH_CONFIG, else ./config.toml, else the defaults)",
    )
    args = parser.parse_args(argv)
    if args.patients < 1 or args.fills < 1:
        parser.error("--patients and --fills must be at least 1")
    server = server_url(args) if args.backend == "postgres" else None
    from console.config import load_settings  # as `outreach queue build` reads it

    config = load_settings(args.config)
    pacing, queue_settings = config.build, config.queue

    with scratch_database(args.backend, server) as url:
        engine = make_engine(url, pool_size=2)
        upgrade(engine)
        t0 = time.perf_counter()
        sizes = fill_world(engine, args.patients, args.fills, args.seed)
        load_s = time.perf_counter() - t0
        analyze(engine)
        copy_name = f"{Path(make_url(url).database or 'bench').stem}_steps"
        log("a copy of the unbuilt data for the stepwise build")
        steps_url = copy_unbuilt(engine, url, server, copy_name)
        try:
            engine = make_engine(url, pool_size=2)
            log("floor: one set-based SQL pass over the fills")
            floor_s, floor_rows = floor_pass(engine)
            log("build_queues: first build")
            build_s, first = timed_build(engine)
            log("build_queues: rebuild, nothing changed")
            rebuild_s, again = timed_build(engine)
            floor2_s, _ = floor_pass(engine)  # again, after the build, so caches are alike
            log("store floor: the first build's tasks written again in one INSERT … SELECT")
            store_s, stored = store_floor(engine)
            engine.dispose()
            steps_engine = make_engine(steps_url, pool_size=2)
            log(
                "stepwise build (outreach queue build): first build, paced "
                f"{pacing.write_pause_ratio:g}x, at most {pacing.max_write_pause_ms} ms, while "
                "someone works (nobody here: no pause)"
            )
            sw_build_s, sw_first, sw_first_steps = timed_stepwise_build(
                steps_engine, queue_settings, pacing
            )
            log("stepwise build: rebuild, nothing changed")
            sw_rebuild_s, sw_again, sw_again_steps = timed_stepwise_build(
                steps_engine, queue_settings, pacing
            )
            steps_engine.dispose()
        finally:
            drop_copy(steps_url, server)

    floor_best = min(floor_s, floor2_s)
    idempotent = (again.created, again.reopened, again.closed, again.updated) == (0, 0, 0, 0)
    sw_idempotent = (sw_again.created, sw_again.reopened, sw_again.closed, sw_again.updated) == (
        0,
        0,
        0,
        0,
    )
    sw_same = (sw_first.created, sw_first.open_tasks, sw_first.queued_patients) == (
        first.created,
        first.open_tasks,
        first.queued_patients,
    )
    result: dict[str, Any] = {
        "backend": args.backend,
        "patients": args.patients,
        "prescriptions": sizes["prescriptions"],
        "fills": sizes["fills"],
        "load_s": round(load_s, 2),
        "build_s": round(build_s, 3),
        "rebuild_s": round(rebuild_s, 3),
        "floor_sql_s": round(floor_best, 3),
        "floor_rows": floor_rows,
        "ratio_build_vs_floor": ratio(build_s, floor_best),
        "ratio_rebuild_vs_floor": ratio(rebuild_s, floor_best),
        "store_floor_s": round(store_s, 3),
        "store_floor_rows": stored,
        "ratio_store_floor_vs_floor": ratio(store_s, floor_best),
        "build_phases_s": first.phases,
        "rebuild_phases_s": again.phases,
        "open_tasks": first.open_tasks,
        "queued_patients": first.queued_patients,
        "rebuild_idempotent": idempotent,
        "rebuild_changes": again.describe(),
        "within_budget": build_s <= BUDGET_S
        and rebuild_s <= BUDGET_S
        and build_s <= BUDGET_RATIO * floor_best
        and rebuild_s <= BUDGET_RATIO * floor_best,
        # What `outreach queue build` runs (the stepwise build, paced), on a copy of the same data.
        "ratio_build_vs_store_floor": ratio(build_s, store_s),
        "stepwise_write_pause_ratio": pacing.write_pause_ratio,
        "stepwise_max_write_pause_ms": pacing.max_write_pause_ms,
        "stepwise_build_s": round(sw_build_s, 3),
        "stepwise_rebuild_s": round(sw_rebuild_s, 3),
        "stepwise_build_steps": sw_first_steps,
        "stepwise_rebuild_steps": sw_again_steps,
        "stepwise_build_phases_s": sw_first.phases,
        "stepwise_rebuild_phases_s": sw_again.phases,
        "ratio_stepwise_build_vs_store_floor": ratio(sw_build_s, store_s),
        "ratio_stepwise_rebuild_vs_store_floor": ratio(sw_rebuild_s, store_s),
        "ratio_stepwise_build_vs_floor": ratio(sw_build_s, floor_best),
        "stepwise_open_tasks": sw_first.open_tasks,
        "stepwise_queued_patients": sw_first.queued_patients,
        "stepwise_same_as_build_queues": sw_same,
        "stepwise_rebuild_idempotent": sw_idempotent,
        "stepwise_rebuild_changes": sw_again.describe(),
        "stepwise_within_budget": sw_build_s <= BUDGET_S
        and sw_rebuild_s <= BUDGET_S
        and sw_build_s <= STORE_BUDGET_RATIO * store_s
        and sw_rebuild_s <= STORE_BUDGET_RATIO * store_s,
    }
    print_table(
        f"build queues — {args.backend}, {args.patients:,} patients, "
        f"{sizes['prescriptions']:,} prescriptions, {args.fills:,} fills",
        ("pass", "seconds", "x floor", "result"),
        [
            [
                "build_queues (first)",
                fmt(build_s, 2),
                fmt(result["ratio_build_vs_floor"], 2),
                first.describe(),
            ],
            [
                "build_queues (rebuild)",
                fmt(rebuild_s, 2),
                fmt(result["ratio_rebuild_vs_floor"], 2),
                again.describe(),
            ],
            ["floor: one SQL pass", fmt(floor_best, 2), "1.00", f"{floor_rows:,} refills due"],
            [
                "stepwise (queue build, first)",
                fmt(sw_build_s, 2),
                fmt(ratio(sw_build_s, floor_best), 2),
                sw_first.describe(),
            ],
            [
                "stepwise (queue build, rebuild)",
                fmt(sw_rebuild_s, 2),
                fmt(ratio(sw_rebuild_s, floor_best), 2),
                sw_again.describe(),
            ],
            [
                "store floor: INSERT … SELECT",
                fmt(store_s, 2),
                fmt(result["ratio_store_floor_vs_floor"], 2),
                f"{stored:,} tasks written again (not part of the budget)",
            ],
        ],
    )
    for name, phases in (
        ("build", first.phases),
        ("rebuild", again.phases),
        ("stepwise build", sw_first.phases),
        ("stepwise rebuild", sw_again.phases),
    ):
        print(f"{name} steps (s): " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
    for name, figures in (("stepwise build", sw_first_steps), ("stepwise rebuild", sw_again_steps)):
        print(f"{name} write steps: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    print(
        f"budget (build_queues): <= {BUDGET_S:.0f} s and <= {BUDGET_RATIO:.0f}x the floor — "
        f"{'met' if result['within_budget'] else 'MISSED'}; rebuild idempotent: {idempotent}; "
        f"data loaded in {load_s:.1f} s"
    )
    print(
        f"budget (outreach queue build, paced {pacing.write_pause_ratio:g}x / "
        f"{pacing.max_write_pause_ms} ms while someone works; nobody here): <= {BUDGET_S:.0f} s and <= "
        f"{STORE_BUDGET_RATIO:.0f}x the store floor — "
        f"{'met' if result['stepwise_within_budget'] else 'MISSED'} "
        f"({fmt(result['ratio_stepwise_build_vs_store_floor'], 2)}x); "
        f"rebuild idempotent: {sw_idempotent}; same tasks as build_queues: {sw_same}"
    )
    if args.json:
        emit_json(result)
    return 0 if idempotent and sw_idempotent and sw_same else 1


if __name__ == "__main__":
    sys.exit(main())
