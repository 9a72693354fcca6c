"""bench/import.py's last phase: agents claiming with no build, then while `outreach queue build`
(queues.building.stepwise, in its own process) rebuilds everyone a day later.

Beside the p99s it says where a slow claim came from: how many claims were the one statement and
how many fell to the full claim (queues.claims.fast_claimer), the claims' p99 by what the build was
doing when each began (PostgreSQL: its backend sampled in pg_stat_activity every 50 ms — reading,
writing, or its own Python between statements), the claimers' wait events, and what the build did
to queue_entries and tasks (row versions, HOT updates, dead rows, WAL bytes).

Found 2026-12-07 (figures in bench/README.md, "Claims during a full build"): no lock waits and no
busy errors in any run; the tail over 2x was the full claim (claim_next, 2-5x the one statement's
p99). A build on a new day finds yesterday's admissions run out and stored them last, so every
claim until then was the full one (20k, PostgreSQL: 1,686 of 2,112); it now stores them first,
head of the queue first (273 of 3,120). At 100k PostgreSQL was still 4.56x (1,080 of 7,823 full,
most while the build judges the whole queue before storing any), SQLite 1.97x. Since 7ad55bc it
judges the head first and stores as it goes: 100k PostgreSQL 704 and 377 full claims (2.88x,
2.12x) against 1,694 and 650 (3.63x, 2.58x) run at once; most left came before the build's
process had connected (its start-up, mostly imports: ~3 s at load 7).

Like for like (2026-12-07, helper Y): the budget compares claims during a build with claims with
none, all else equal. The build's window starts on a new day (the claims' clock jumps a day at the
build's spawn), and a new day's first claims find yesterday's admissions run out and are the full
claim until admission ahead (queues.claims.admission_ahead) or the build stores the head's again:
16-23 of them, 41-65 ms p99 at 100k on PostgreSQL, half of the 1% a p99 allows by themselves. Those
are not the build's cost: any new day has them, build or no build. So beside the window before
(at the import's clock, no day jump: `claim_p99_idle_ms`, the ratio `claim_p99_ratio` as before)
and the one after (`claim_p99_idle_after_ms`), a third window with no build starts on a new day
too (`new_day_users`: a day after the import's clock, `claim_p99_new_day_no_build_ms`,
`claims_new_day_no_build_fast_full` shows its full claims), and the build then runs on the day
after that, so its window starts a new day just as that one does; `claim_p99_ratio_vs_new_day` is
during / that window.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _common import log, percentile
from sqlalchemy import Engine

from queues.claims.fast_claimer import Claimer
from queues.errors import DatabaseBusy
from queues.store.db import session_factory

ROOT = Path(__file__).resolve().parent.parent
BUILD_APP = "outreach-bench-queue-build"  # the build's application_name (PGAPPNAME)
SAMPLE_S = 0.05


@dataclass
class ClaimRun:
    latencies: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)  # perf_counter at each timed claim's start
    busy: int = 0
    errors: list[str] = field(default_factory=list)
    fast: int = 0
    full: int = 0
    full_latencies: list[float] = field(default_factory=list)  # the claims that fell to claim_next
    full_started: list[float] = field(default_factory=list)


def claimers(
    engine: Engine,
    users: list[int],
    pharmacy_id: int,
    stop: threading.Event,
    n: int,
    now: datetime,
    pause: float = 0.0,
) -> ClaimRun:
    """`n` agents claiming at `now` until `stop` (or no patient or user is left), each `pause`
    seconds between claims (an agent's claims are a call apart; without it 4 claimers empty a
    100,000 patient queue before a build is half done, and the later steps go unmeasured)."""
    run = ClaimRun()
    lock = threading.Lock()
    pool = iter(users)

    def claimer() -> None:
        sessions = session_factory(engine)
        c = Claimer(engine, sessions)
        c.open()
        try:
            while not stop.is_set():
                with lock:
                    user = next(pool, None)
                if user is None:
                    return
                t0, fulls = time.perf_counter(), c.full
                try:
                    got = c.next(
                        user_id=user, pharmacy_ids=[pharmacy_id], now=now, lease_seconds=600
                    )
                except DatabaseBusy:
                    with lock:
                        run.busy += 1
                    continue
                except Exception as error:  # counted and shown, the run goes on
                    with lock:
                        run.errors.append(type(error).__name__)
                    continue
                if got is None:  # nobody left to claim
                    return
                took = time.perf_counter() - t0
                with lock:
                    run.latencies.append(took)
                    run.started.append(t0)
                    if c.full != fulls:
                        run.full_latencies.append(took)
                        run.full_started.append(t0)
                stop.wait(pause)
        finally:
            with lock:
                run.fast += c.fast
                run.full += c.full
            c.close()

    threads = [threading.Thread(target=claimer) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return run


class _Sampler:
    """PostgreSQL: pg_stat_activity every SAMPLE_S on a connection of its own, until stopped."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.timeline: list[tuple[float, str]] = []  # (perf_counter, what the build was doing)
        self.claim_waits: Counter[str] = Counter()
        self.build_waits: Counter[str] = Counter()
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Sampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        raw = self.engine.raw_connection()
        try:
            conn = raw.driver_connection
            conn.autocommit = True  # type: ignore[union-attr]
            while not self.stop.is_set():
                t = time.perf_counter()
                rows = conn.execute(  # type: ignore[union-attr]
                    "SELECT application_name, state, wait_event_type, wait_event, "
                    "upper(split_part(ltrim(query), ' ', 1)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'"
                ).fetchall()
                self.samples += 1
                doing = "no build connection"
                for app, state, wtype, wevent, verb in rows:
                    wait = f"{wtype}:{wevent}" if wtype else "CPU (no wait)"
                    if app == BUILD_APP:
                        if state == "active":
                            self.build_waits[f"{verb} {wait}"] += 1
                            if doing != "writing":  # the advisory lock's idle session beside it
                                doing = "reading" if verb == "SELECT" else "writing"
                        elif doing == "no build connection":
                            doing = "its Python (between statements)"
                    elif state == "active":
                        self.claim_waits[wait] += 1
                self.timeline.append((t, doing))
                self.stop.wait(SAMPLE_S)
        finally:
            raw.close()

    def doing_at(self, t: float) -> str:
        """What the build was doing at the last sample before `t`."""
        lo, hi = 0, len(self.timeline)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.timeline[mid][0] <= t:
                lo = mid + 1
            else:
                hi = mid
        return self.timeline[lo - 1][1] if lo else "not started"


_TABLE_STATS = (
    "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup, "
    "coalesce(last_autovacuum::text, '') FROM pg_stat_user_tables "
    "WHERE relname IN ('queue_entries', 'tasks')"
)


def _pg_counters(engine: Engine) -> tuple[dict[str, tuple[Any, ...]], int]:
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
        stats = {r[0]: tuple(r[1:]) for r in conn.exec_driver_sql(_TABLE_STATS)}
        lsn = int(conn.exec_driver_sql("SELECT pg_current_wal_lsn() - '0/0'").scalar_one())
    return stats, lsn


def _fast_only(run: ClaimRun) -> list[float]:
    full = Counter(run.full_latencies)
    out = []
    for lat in run.latencies:
        if full[lat]:
            full[lat] -= 1
        else:
            out.append(lat)
    return out


def _fast_started(run: ClaimRun) -> list[float]:
    """When each one-statement claim began."""
    full = Counter(run.full_started)
    out = []
    for t in run.started:
        if full[t]:
            full[t] -= 1
        else:
            out.append(t)
    return out


def _p99_ms(values: list[float]) -> float:
    return round(percentile(sorted(values), 99) * 1000, 2)


_PHASE_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO queues\.building\.stepwise full build: (.*)$"
)


def _build_config(folder: Path, write_pause_ratio: float | None = None) -> tuple[Path, Path]:
    """The project's config.toml (the same queue settings the claimers' admission key is made
    from) with the log in `folder`: the build logs each phase's start there (stepwise._log);
    with `write_pause_ratio`, its [build] pause after each write step set to that."""
    log_path = folder / "build.log"
    text = (ROOT / "config.toml").read_text()
    text, n = re.subn(r'(?m)^path = "var/outreach.log"', f'path = "{log_path}"', text)
    if n != 1:
        raise SystemExit("bench: config.toml has no [log] path to replace")
    if write_pause_ratio is not None:
        text, n = re.subn(
            r"(?m)^write_pause_ratio = .*$", f"write_pause_ratio = {write_pause_ratio!r}", text
        )
        if n != 1:
            raise SystemExit("bench: config.toml has no [build] write_pause_ratio to replace")
    config = folder / "config.toml"
    config.write_text(text)
    return config, log_path


def _build_phases(log_path: Path, wall_minus_perf: float) -> list[tuple[float, str]]:
    """(perf_counter, phase) for each phase the build logged, in this process's clock."""
    out: list[tuple[float, str]] = []
    if not log_path.exists():
        return out
    for line in log_path.read_text().splitlines():
        m = _PHASE_LINE.match(line)
        if m:
            wall = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((wall - wall_minus_perf, re.sub(r" \(.*", "", m.group(2))))
    return out


_STEPS_LINE = re.compile(
    r"full build: done \((\d+) steps(?:; ([\d.]+) s writing, ([\d.]+) s paused)?"
    r"(?: after the writes; steps over 3 ms: (\d+), over 8 ms: (\d+))?"
    r"(?:; ([\d.]+) s checkpointing the WAL)?"
)


def _build_steps(log_path: Path) -> dict[str, Any]:
    """The build's write steps, and (since 8b918bb) its seconds writing and paused after them."""
    if not log_path.exists():
        return {}
    m = _STEPS_LINE.search(log_path.read_text())
    if m is None:
        return {}
    out: dict[str, Any] = {"build_steps": int(m.group(1))}
    if m.group(2) is not None:
        out["build_writing_s"] = float(m.group(2))
        out["build_paused_s"] = float(m.group(3))
    if m.group(4) is not None:
        out["build_steps_over_3_8_ms"] = [int(m.group(4)), int(m.group(5))]
    if m.group(6) is not None:
        out["build_checkpointing_s"] = float(m.group(6))
    return out


def _phase_at(phases: list[tuple[float, str]], t: float) -> str:
    name = "spawned, not started"
    for at, what in phases:
        if at <= t:
            name = what
    return name


def _by_phase(
    run: ClaimRun, phases: list[tuple[float, str]], slow_s: float
) -> dict[str, dict[str, Any]]:
    """Per build phase (at each claim's start): claims, full claims, p99, and the claims over
    `slow_s` (2x the idle p99) by path."""
    full = Counter(zip(run.full_started, run.full_latencies, strict=True))
    groups: dict[str, list[tuple[float, bool]]] = {}
    for t, lat in zip(run.started, run.latencies, strict=True):
        is_full = full[(t, lat)] > 0
        if is_full:
            full[(t, lat)] -= 1
        groups.setdefault(_phase_at(phases, t), []).append((lat, is_full))
    order = ["spawned, not started"] + [name for _, name in phases]
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(groups, key=lambda n: order.index(n) if n in order else len(order)):
        claims = groups[name]
        out[name] = {
            "claims": len(claims),
            "full": sum(f for _, f in claims),
            "p99_ms": _p99_ms([lat for lat, _ in claims]),
            "slow_one_statement": sum(lat > slow_s and not f for lat, f in claims),
            "slow_full": sum(lat > slow_s and f for lat, f in claims),
        }
    return out


def measure(
    engine: Engine,
    url: str,
    users: list[int],
    pharmacy_id: int,
    *,
    claimers_n: int,
    pause: float,
    idle_window: float,
    idle_claims: int,
    now: datetime,
    at_build_clock: bool = True,
    write_pause_ratio: float | None = None,
    after_users: list[int] | None = None,
    new_day_users: list[int] | None = None,
) -> tuple[dict[str, Any], list[tuple[str, str, str, str]]]:
    """Claims at `now` with no build, then during a full build a day later: the JSON keys and
    table rows. With `at_build_clock` the claims during the build are at the build's clock, as a
    console's is: yesterday's admissions have run out, so a claim is the full one until the build
    stores the patient's again. Without it they stay a day behind the build, which no console
    is: the admissions the build stores are dated the next day, and no claim can use them.

    With `new_day_users`, a window with no build a day after `now` comes between them (it starts
    a new day: its first claims are the full ones any new day has), and the build runs a day
    after that window, so both start a new day alike."""
    postgres = engine.dialect.name == "postgresql"
    build_day = now + timedelta(days=2 if new_day_users else 1)

    def no_build(who: list[int], at: datetime) -> tuple[ClaimRun, _Sampler | None]:
        """Claims for `idle_window` seconds with no build, sampled as the claims during the build
        are, so both pay for the sampler alike."""
        stop = threading.Event()
        timer = threading.Timer(idle_window, stop.set)
        timer.start()
        sampled = _Sampler(engine) if postgres else None
        if sampled is not None:
            sampled.__enter__()
        got = claimers(engine, who, pharmacy_id, stop, claimers_n, at, pause)
        timer.cancel()
        if sampled is not None:
            sampled.__exit__()
        return got, sampled

    log("claims with no build")
    idle, idle_sampler = no_build(users[:idle_claims], now)
    new_day = None
    if new_day_users:
        log("claims with no build on a new day (a day later)")
        new_day, _ = no_build(new_day_users, now + timedelta(days=1))
    log("claims during a full build (outreach queue build, on a new day)")
    stop = threading.Event()
    run: dict[str, Any] = {}
    before = _pg_counters(engine) if postgres else None

    folder = tempfile.TemporaryDirectory(prefix="outreach-bench-build-log-")
    config, log_path = _build_config(Path(folder.name), write_pause_ratio)
    wall_minus_perf = time.time() - time.perf_counter()

    def build() -> None:
        # `outreach queue build` in its own process, as a site runs it beside the consoles: the
        # claimers here share no GIL with its rules.
        t0 = run["spawned"] = time.perf_counter()
        later = build_day.isoformat()
        done = subprocess.run(
            [sys.executable, "-m", "console", "queue", "build", "--database", url,
             "--now", later],
            capture_output=True, text=True, cwd=ROOT, check=False,
            env={**os.environ, "PGAPPNAME": BUILD_APP, "OUTREACH_CONFIG": str(config)},
        )  # fmt: skip
        run["seconds"] = time.perf_counter() - t0
        run["said"] = (done.stdout + done.stderr).strip().splitlines()[-1:]
        stop.set()

    sampler = _Sampler(engine) if postgres else None
    if sampler is not None:
        sampler.__enter__()
    builder = threading.Thread(target=build)
    builder.start()
    during_now = build_day if at_build_clock else build_day - timedelta(days=1)
    during = claimers(engine, users[idle_claims:], pharmacy_id, stop, claimers_n, during_now, pause)
    builder.join()
    if sampler is not None:
        sampler.__exit__()
    # A second window with no build, after it, at the build's clock, as long as the first: the
    # budget's ratio stays against the window before; this one shows how far one 20 s window's
    # p99 moves on its own (a diagnostic: both windows pooled, and each alone).
    idle_after = None
    if after_users:
        log("claims with no build, after it")
        idle_after, _ = no_build(after_users, during_now)

    idle_p99 = percentile(sorted(idle.latencies), 99) * 1000
    during_p99 = percentile(sorted(during.latencies), 99) * 1000
    phases = _build_phases(log_path, wall_minus_perf)
    steps = _build_steps(log_path)
    folder.cleanup()
    by_phase = (
        _by_phase(during, [(run["spawned"], "spawned, not started"), *phases], 2 * idle_p99 / 1000)
        if "spawned" in run
        else {}
    )
    result: dict[str, Any] = {
        "claims_during_build_clock": "the build's"
        if at_build_clock
        else "a day before the build's",
        "full_build_seconds": round(run.get("seconds", 0.0), 3),
        "full_build_said": run.get("said", []),
        "build_write_pause_ratio": write_pause_ratio,  # None: config.toml's
        **steps,
        "claims_idle": len(idle.latencies),
        "claims_during_build": len(during.latencies),
        "claims_idle_fast_full": [idle.fast, idle.full],
        "claims_during_fast_full": [during.fast, during.full],
        "claim_p99_during_build_ms": round(during_p99, 2),
        "claim_p99_idle_ms": round(idle_p99, 2),
        "claim_p99_ratio": round(during_p99 / idle_p99, 3) if idle_p99 else None,
        "claim_p50_during_build_ms": round(percentile(sorted(during.latencies), 50) * 1000, 2),
        "claim_p50_idle_ms": round(percentile(sorted(idle.latencies), 50) * 1000, 2),
        "claim_p99_fast_only_idle_ms": _p99_ms(_fast_only(idle)),
        "claim_p99_fast_only_during_build_ms": _p99_ms(_fast_only(during)),
        "claim_p99_full_only_during_build_ms": _p99_ms(during.full_latencies),
        "busy_errors": sum(r.busy for r in (idle, new_day, during, idle_after) if r),
        "other_errors": [e for r in (idle, new_day, during, idle_after) if r for e in r.errors],
        # Where the claims during the build fell, by the build's phase at each claim's start
        # (its log; "spawned, not started": its process starting, before it logged anything).
        "build_phases_s": [
            [name, round(at - run["spawned"], 3)] for at, name in phases if "spawned" in run
        ],
        "claims_by_build_phase": by_phase,
        "slow_claims_over_2x_idle_p99": [
            sum(v["slow_one_statement"] for v in by_phase.values()),
            sum(v["slow_full"] for v in by_phase.values()),
        ],
    }
    if idle_after is not None and idle_after.latencies:
        after_p99 = percentile(sorted(idle_after.latencies), 99) * 1000
        both_p99 = percentile(sorted(idle.latencies + idle_after.latencies), 99) * 1000
        result.update({
            "claims_idle_after": len(idle_after.latencies),
            "claims_idle_after_fast_full": [idle_after.fast, idle_after.full],
            "claim_p99_idle_after_ms": round(after_p99, 2),
            "claim_p99_idle_both_ms": round(both_p99, 2),
            "claim_p99_ratio_vs_after": round(during_p99 / after_p99, 3) if after_p99 else None,
            "claim_p99_ratio_vs_both": round(during_p99 / both_p99, 3) if both_p99 else None,
        })  # fmt: skip
    if new_day is not None and new_day.latencies:
        new_day_p99 = percentile(sorted(new_day.latencies), 99) * 1000
        result.update({
            "claims_new_day_no_build": len(new_day.latencies),
            "claims_new_day_no_build_fast_full": [new_day.fast, new_day.full],
            "claim_p99_new_day_no_build_ms": round(new_day_p99, 2),
            "claim_p99_fast_only_new_day_no_build_ms": _p99_ms(_fast_only(new_day)),
            "claim_p99_full_only_new_day_no_build_ms": _p99_ms(new_day.full_latencies),
            "claim_p99_ratio_vs_new_day": (
                round(during_p99 / new_day_p99, 3) if new_day_p99 else None
            ),
        })  # fmt: skip
        # As for the build's window below: the new day's first claims (until the first that
        # found its head admitted, by admission ahead here) apart from the rest of the window.
        new_day_fast = _fast_started(new_day)
        if new_day_fast:
            first = min(new_day_fast)
            result["new_day_full_claims_before_first_one_statement"] = sum(
                t < first for t in new_day.full_started
            )
            result["claim_p99_new_day_from_first_one_statement_ms"] = _p99_ms(
                [
                    lat
                    for t, lat in zip(new_day.started, new_day.latencies, strict=True)
                    if t >= first
                ]
            )
    rows = [
        ("claim p99, no build", "", f"{idle_p99:.2f} ms ({len(idle.latencies):,} claims; "
         f"{idle.fast:,} one statement, {idle.full:,} full)", ""),
        ("claim p99, during a full build", f"{result['full_build_seconds']:.2f}",
         f"{during_p99:.2f} ms ({len(during.latencies):,} claims; {during.fast:,} one "
         f"statement, {during.full:,} full)", "≤ 2× idle"),
        *(
            [
                ("claim p99, no build, on a new day (like for like)", "",
                 f"{result['claim_p99_new_day_no_build_ms']:.2f} ms "
                 f"({result['claims_new_day_no_build']:,} claims; {new_day.fast:,} one "
                 f"statement, {new_day.full:,} full, p99 "
                 f"{result['claim_p99_full_only_new_day_no_build_ms']:.2f} ms); during / this "
                 f"{result['claim_p99_ratio_vs_new_day']}×; from its first one-statement claim "
                 f"(after {result.get('new_day_full_claims_before_first_one_statement', '?')} "
                 f"full) p99 {result.get('claim_p99_new_day_from_first_one_statement_ms', '?')} "
                 "ms", "≤ 2×"),
            ]
            if new_day is not None and "claim_p99_new_day_no_build_ms" in result
            else []
        ),
        ("  one-statement claims only: no build / during", "",
         f"p99 {result['claim_p99_fast_only_idle_ms']:.2f} / "
         f"{result['claim_p99_fast_only_during_build_ms']:.2f} ms", ""),
        ("  full claims during the build (claim_next)", "",
         f"p99 {result['claim_p99_full_only_during_build_ms']:.2f} ms", ""),
        *(
            [
                ("claim p99, no build, after it (a diagnostic)", "",
                 f"{result['claim_p99_idle_after_ms']:.2f} ms ({result['claims_idle_after']:,} "
                 f"claims); both windows pooled {result['claim_p99_idle_both_ms']:.2f} ms: "
                 f"during / after {result['claim_p99_ratio_vs_after']}×, during / both "
                 f"{result['claim_p99_ratio_vs_both']}×", ""),
            ]
            if "claim_p99_idle_after_ms" in result
            else []
        ),
        ("busy errors", "", str(result["busy_errors"]), "0"),
        ("  the build's write steps: steps / writing / paused", "",
         f"{steps.get('build_steps', '?')} / {steps.get('build_writing_s', '?')} s / "
         f"{steps.get('build_paused_s', '?')} s", ""),
    ]  # fmt: skip
    starts = dict(reversed([(name, at) for name, at in result["build_phases_s"]]))
    for name, v in by_phase.items():
        rows.append((
            f"  while the build was: {name}", f"{starts.get(name, 0.0):.2f}",
            f"{v['claims']:,} claims ({v['full']:,} full), p99 {v['p99_ms']:.2f} ms; over 2x idle "
            f"p99: {v['slow_one_statement']:,} one statement, {v['slow_full']:,} full", "",
        ))  # fmt: skip
    spawned = run.get("spawned")
    fast_started = _fast_started(during)
    if spawned is not None and fast_started:
        # The first claim that found its head admitted again by the build, from the build's
        # spawn: until then every claim was the full one (yesterday's admissions had run out).
        first_fast = min(fast_started)
        result["first_one_statement_claim_s"] = round(first_fast - spawned, 3)
        result["full_claims_before_first_one_statement"] = sum(
            t < first_fast for t in during.full_started
        )
        # A diagnostic, not the budget's figure: the claims from then on, so the start-up of the
        # build's process (and the clock's jump at its spawn) is seen apart from the build.
        from_then = [
            lat for t, lat in zip(during.started, during.latencies, strict=True) if t >= first_fast
        ]
        result["claim_p99_from_first_one_statement_ms"] = _p99_ms(from_then)
        rows.append(
            (
                "  first one-statement claim after the build's spawn",
                f"{first_fast - spawned:.2f}",
                f"{result['full_claims_before_first_one_statement']:,} full claims before it",
                "",
            )
        )
        rows.append(
            (
                "  claims from then on (a diagnostic)",
                "",
                f"p99 {result['claim_p99_from_first_one_statement_ms']:.2f} ms "
                f"({len(from_then):,} claims)",
                "",
            )
        )
    if sampler is not None and before is not None:
        after = _pg_counters(engine)
        if spawned is not None:
            # When the build's process first showed in pg_stat_activity (its start-up: the
            # interpreter, its imports, the config) and first wrote, from its spawn.
            seen = [t for t, d in sampler.timeline if d != "no build connection"]
            wrote = [t for t, d in sampler.timeline if d == "writing"]
            if seen:
                result["build_connected_s"] = round(seen[0] - spawned, 3)
                result["full_claims_before_build_connected"] = sum(
                    t < seen[0] for t in during.full_started
                )
            if wrote:
                result["build_first_write_s"] = round(wrote[0] - spawned, 3)
                result["full_claims_before_build_first_write"] = sum(
                    t < wrote[0] for t in during.full_started
                )
            rows.append(
                (
                    "  build connected / first wrote, from its spawn",
                    f"{result.get('build_connected_s', 0):.2f} / "
                    f"{result.get('build_first_write_s', 0):.2f}",
                    f"full claims before: {result.get('full_claims_before_build_connected', 0):,}"
                    f" / {result.get('full_claims_before_build_first_write', 0):,}",
                    "",
                )
            )
        by_doing: dict[str, list[float]] = {}
        for t0, lat in zip(during.started, during.latencies, strict=True):
            by_doing.setdefault(sampler.doing_at(t0), []).append(lat)
        fulls: Counter[str] = Counter(sampler.doing_at(t0) for t0 in during.full_started)
        result["full_claims_by_build_doing"] = dict(fulls)
        if during.full_started and sampler.timeline:
            # When the claims began to fall to claim_next, in seconds from the first sample.
            result["first_full_claim_s"] = round(
                min(during.full_started) - sampler.timeline[0][0], 1
            )
            result["build_sampled_s"] = round(sampler.timeline[-1][0] - sampler.timeline[0][0], 1)
        result["claim_p99_by_build_doing_ms"] = {
            k: [len(v), round(percentile(sorted(v), 99) * 1000, 2)] for k, v in by_doing.items()
        }
        doing = Counter(d for _, d in sampler.timeline)
        result["build_doing_samples"] = dict(doing)  # a sample each SAMPLE_S: about its seconds
        result["claimer_wait_events"] = dict(sampler.claim_waits.most_common(8))
        if idle_sampler is not None:
            result["claimer_wait_events_idle"] = dict(idle_sampler.claim_waits.most_common(8))
        result["build_wait_events"] = dict(sampler.build_waits.most_common(8))
        result["server_wal_bytes_during_build"] = after[1] - before[1]
        result["build_table_stats"] = {
            name: {
                "inserted": after[0][name][0] - before[0][name][0],
                "updated": after[0][name][1] - before[0][name][1],
                "hot_updated": after[0][name][2] - before[0][name][2],
                "dead_after": after[0][name][3],
                "last_autovacuum": after[0][name][4],
            }
            for name in after[0]
        }
        for k, (n, p99) in sorted(result["claim_p99_by_build_doing_ms"].items()):
            rows.append((f"  claims while the build was {k}", "", f"p99 {p99:.2f} ms ({n:,})", ""))
        rows.append(
            (
                "  WAL written during the build (the whole server's: shared)",
                "",
                f"{after[1] - before[1]:,} bytes",
                "",
            )
        )
    return result, rows
