"""`outreach queue stats` at 100,000 patients / 1,000,000 fills: its counts of queue entries, and plans.

    python bench/queue_stats.py --backend sqlite|postgres [--patients N] [--fills N]
        [--passed-over PERCENT] [--repeat N] [--plans] [--json]

The world is bench/queue_build.py's (synthetic patients, prescriptions and fills), built once with
`build_queues`; then some patients are held as consoles hold them (a lease: `holder_id`,
`available_at` = the lease's expiry), a few of them with the lease run out. Times (medians of
--repeat), on that data:

- "claimable now" and "queued" as they were counted before (one `count(*)` on `status = 'open'`,
  which migration 0022's partial waiting index no longer serves), the same with the waiting index
  as it was before 0022 made beside it, and once more without it at the end (the run's drift);
  and the index-backed form tried (entries nobody holds through ix_queue_entries_waiting, held
  ones through ix_queue_entries_holder). `queue_stats` now takes both numbers from the
  breakdown's read of every open entry; the results must equal the counts before (exit 1 if not);
- the whole of `queue_stats` in-process, alone and followed by the two counts it ran up to
  0447349 (alternated), its breakdown alone, and `outreach queue stats` as a command (a process
  each, its start-up included). Before/after a change of queues.floor.stats: run this file with
  PYTHONPATH naming a copy of the earlier `queues` (`git archive REV queues console`).

`--plans` prints to stderr the plan (EXPLAIN / EXPLAIN QUERY PLAN) of each count.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    analyze,
    base_parser,
    bulk_load,
    emit_json,
    fmt,
    log,
    print_table,
    ratio,
    scratch_database,
    server_url,
)
from queue_build import NOW, fill_world
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from queues.building.build import build_queues
from queues.floor import stats
from queues.store.db import make_engine, session_factory, transaction, upgrade
from queues.store.models import QueueEntry

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def hold(engine: Engine, agents: int, expired: int, seed: int) -> dict[str, int]:
    """`agents` consoles each hold one patient (lease 4 minutes ahead); `expired` more holds whose
    lease ran out a minute ago (a console killed: claimable again, its holder not yet cleared)."""
    rng = random.Random(seed)
    with engine.connect() as conn:
        first = 1 + int(conn.execute(text("SELECT coalesce(max(id), 0) FROM users")).scalar() or 0)
    bulk_load(
        engine,
        "users",
        ("id", "username", "display_name", "role", "password_hash", "active"),
        ((first + i, f"bagent{i:03d}", f"Agent {i}", "agent", "-", True) for i in range(agents)),
    )
    with engine.connect() as conn:
        open_ids = [
            r[0]
            for r in conn.execute(
                text("SELECT patient_id FROM queue_entries WHERE status = 'open'")
            )
        ]
    held = rng.sample(open_ids, agents + expired)
    with engine.begin() as conn:
        for n, pid in enumerate(held):
            lapsed = n >= agents
            expires = NOW + (timedelta(minutes=-1) if lapsed else timedelta(minutes=4))
            conn.execute(
                text(
                    "UPDATE queue_entries SET holder_id = :h, lease_token = :t, claimed_at = :c,"
                    " lease_expires_at = :e, available_at = :e WHERE patient_id = :p"
                ),
                {
                    "h": first + n % agents,
                    "t": str(uuid.uuid4()),
                    "c": (NOW - timedelta(minutes=5)).replace(tzinfo=None),
                    "e": expires.replace(tzinfo=None),
                    "p": pid,
                },
            )
    return {"held": agents, "held_lapsed": expired}


def pass_over(engine: Engine, percent: int) -> int:
    """`percent` of the entries nobody holds passed over as a claim passes them (evening: their
    calling window shut until morning, or a daily cap): the worst case of the breakdown, whose
    other entries are read one by one."""
    with engine.begin() as conn:
        done = conn.execute(
            text(
                "UPDATE queue_entries SET available_at = :until, claimed_at = NULL,"
                " blocked_reason = CASE WHEN patient_id % 7 = 0 THEN 'daily_cap'"
                " ELSE 'federal_window' END"
                " WHERE holder_id IS NULL AND status = 'open' AND patient_id % 100 < :percent"
            ),
            {"until": (NOW + timedelta(hours=14)).replace(tzinfo=None), "percent": percent},
        )
    return int(done.rowcount or 0)


def old_statement(now: datetime | None) -> Any:
    """A count as `queue_stats` ran it before: one `count(*)` on `status = 'open'` (and
    `available_at <= now` for "claimable now")."""
    where = [QueueEntry.status == "open"]
    if now is not None:
        where.append(QueueEntry.available_at <= now)
    return select(func.count()).select_from(QueueEntry).where(*where)


def old_claimable(s: Session) -> int:
    return int(s.scalar(old_statement(NOW)) or 0)


def old_queued(s: Session) -> int:
    return int(s.scalar(old_statement(None)) or 0)


def two_part(now: datetime | None) -> tuple[Any, Any]:
    """The index-backed alternative tried (not kept): the entries nobody holds through
    ix_queue_entries_waiting (a range on `available_at`), the held ones through
    ix_queue_entries_holder, summed."""
    not_held = [QueueEntry.status == "open", QueueEntry.holder_id.is_(None)]
    held = [QueueEntry.holder_id.is_not(None), QueueEntry.status == "open"]
    if now is not None:
        not_held.append(QueueEntry.available_at <= now)
        held.append(QueueEntry.available_at <= now)
    count = select(func.count()).select_from(QueueEntry)
    return count.where(*not_held), count.where(*held)


def two_part_count(s: Session, now: datetime | None) -> int:
    return sum(int(s.scalar(q) or 0) for q in two_part(now))


# ix_queue_entries_waiting as it was before migration 0022 (made beside the new one for a
# "before 0022" figure, then dropped).
PRE_0022 = {
    "postgresql": "CREATE INDEX ix_bench_waiting_pre_0022 ON queue_entries (available_at, "
    "pharmacy_id) INCLUDE (holder_id, lease_expires_at, blocked_reason) WHERE status = 'open'",
    "sqlite": "CREATE INDEX ix_bench_waiting_pre_0022 ON queue_entries (available_at, "
    "pharmacy_id) WHERE status = 'open'",
}


def median_ms(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def explain(s: Session, stmt: Any) -> str:
    compiled = stmt.compile(dialect=s.get_bind().dialect, compile_kwargs={"literal_binds": True})
    if s.get_bind().dialect.name == "postgresql":
        rows = s.execute(text(f"EXPLAIN {compiled}")).all()
        return "\n".join(r[0] for r in rows)
    rows = s.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
    return "\n".join(str(r[-1]) for r in rows)


def command_ms(url: str, repeat: int) -> float:
    """`outreach queue stats` as a command, a process each time (start-up included)."""
    env = {**os.environ, "OUTREACH_DATABASE_URL": url}
    exe = str(Path(sys.executable).parent / "outreach")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(
            [exe, "queue", "stats"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
        )
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--plans", action="store_true")
    parser.add_argument(
        "--passed-over",
        type=int,
        default=0,
        metavar="PERCENT",
        help="pass over this share of the entries nobody holds (default 0)",
    )
    args = parser.parse_args(argv)
    server = server_url(args) if args.backend == "postgres" else None
    with scratch_database(args.backend, server) as url:
        engine = make_engine(url, pool_size=2)
        upgrade(engine)
        log(f"world: {args.patients:,} patients, {args.fills:,} fills")
        sizes = fill_world(engine, args.patients, args.fills, args.seed)
        sessions = session_factory(engine)
        log("build_queues")
        with transaction(sessions) as s:
            build_queues(s, NOW)
        sizes.update(hold(engine, args.agents, args.agents // 10, args.seed))
        if args.passed_over:
            sizes["passed_over"] = pass_over(engine, args.passed_over)
        analyze(engine)
        results: dict[str, Any] = {"backend": args.backend, "patients": args.patients, **sizes}
        with session_factory(engine)() as s:
            counts: dict[str, Callable[[], int]] = {
                "claimable now: the count before (status = 'open')": lambda: old_claimable(s),
                "claimable now: two index reads (tried)": lambda: two_part_count(s, NOW),
                "queued: the count before (status = 'open')": lambda: old_queued(s),
                "queued: two index reads (tried)": lambda: two_part_count(s, None),
            }
            rows = []
            for label, fn in counts.items():
                ms, value = median_ms(fn, args.repeat)
                rows.append((label, fmt(ms, 2), f"{value:,}"))
                results[label] = {"ms": round(ms, 3), "count": value}

            def before() -> object:  # queue_stats, then the two counts it ran up to 0447349
                return (stats.queue_stats(s, NOW), old_queued(s), old_claimable(s))

            whole = stats.queue_stats(s, NOW)  # a first run each, untimed (caches warm)
            before()
            now_times: list[float] = []
            before_times: list[float] = []
            for r in range(args.repeat):  # alternated, each first every other time
                pair: list[tuple[list[float], Callable[[], object]]] = [
                    (now_times, lambda: stats.queue_stats(s, NOW)),
                    (before_times, before),
                ]
                for times, run in pair if r % 2 == 0 else pair[::-1]:
                    times.append(median_ms(run, 1)[0])
            whole_ms, before_ms = statistics.median(now_times), statistics.median(before_times)
            breakdown_ms, _ = median_ms(lambda: stats.due_breakdown(s, NOW), args.repeat)
            rows.append(("queue_stats now (in-process)", fmt(whole_ms, 1), ""))
            rows.append(("queue_stats, then the two counts", fmt(before_ms, 1), ""))
            rows.append(("  of it due_breakdown", fmt(breakdown_ms, 1), ""))
            results["queue_stats_ms"] = round(whole_ms, 2)
            results["queue_stats_before_ms"] = round(before_ms, 2)
            results["due_breakdown_ms"] = round(breakdown_ms, 2)
            results["queue_stats_before_vs_now"] = ratio(before_ms, whole_ms)
            results["stats"] = whole.as_json()
            old = (
                results["queued: the count before (status = 'open')"]["count"],
                results["claimable now: the count before (status = 'open')"]["count"],
            )
            same = (whole.patients_queued, whole.patients_claimable_now) == old
            results["same_counts"] = same
            named = {
                "claimable now, before": old_statement(NOW),
                "queued, before": old_statement(None),
                "claimable now, nobody holding (tried)": two_part(NOW)[0],
                "claimable now, held (tried)": two_part(NOW)[1],
                "queued, nobody holding (tried)": two_part(None)[0],
                "queued, held (tried)": two_part(None)[1],
            }
            if args.plans:
                for label, stmt in named.items():
                    print(f"--- {label}\n{explain(s, stmt)}", file=sys.stderr)
            s.rollback()
            s.execute(text(PRE_0022[engine.dialect.name]))
            s.commit()
            analyze(engine, vacuum=False)
            for label, old_count in (
                ("claimable now: the count before, with the pre-0022 index", old_claimable),
                ("queued: the count before, with the pre-0022 index", old_queued),
            ):
                ms, value = median_ms(partial(old_count, s), args.repeat)
                rows.append((label, fmt(ms, 2), f"{value:,}"))
                results[label] = {"ms": round(ms, 3), "count": value}
            if args.plans:
                for label in ("claimable now, before", "queued, before"):
                    plan = explain(s, named[label])
                    print(f"--- {label}, pre-0022 index\n{plan}", file=sys.stderr)
            s.rollback()
            s.execute(text("DROP INDEX ix_bench_waiting_pre_0022"))
            s.commit()
            analyze(engine, vacuum=False)
            for label, old_count in (  # the same as the first, measured last: the run's drift
                ("claimable now: the count before, again (drift)", old_claimable),
                ("queued: the count before, again (drift)", old_queued),
            ):
                ms, value = median_ms(partial(old_count, s), args.repeat)
                rows.append((label, fmt(ms, 2), f"{value:,}"))
                results[label] = {"ms": round(ms, 3), "count": value}
            s.rollback()
        engine.dispose()
        cmd_ms = command_ms(url, max(3, args.repeat // 2))
        rows.append(("outreach queue stats (a process)", fmt(cmd_ms, 1), ""))
        results["command_ms"] = round(cmd_ms, 1)
    print_table(
        f"queue stats, {args.backend}, {args.patients:,} patients / {sizes['fills']:,} fills",
        ("what", "ms (median)", "count"),
        rows,
    )
    if args.json:
        emit_json(results)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
