"""Shared helpers for the benchmarks: arguments, scratch databases, bulk loading, tables, JSON.

A benchmark prints a readable table, or with `--json` one JSON object as its last line; every
ratio it reports is against a floor measured in the same run on the same database.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, create_engine, make_url, text  # noqa: E402

PG_ENV = "OUTREACH_TEST_DATABASE_URL"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:55432/postgres"


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), required=True)
    parser.add_argument(
        "--database",
        metavar="URL",
        help=f"PostgreSQL server to create a scratch database on (default: ${PG_ENV})",
    )
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    return parser


def log(message: str) -> None:
    """Progress goes to stderr, so stdout stays the table (or the JSON line)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def server_url(args: argparse.Namespace) -> str:
    url = args.database or os.environ.get(PG_ENV, "")
    if not url:
        raise SystemExit(
            f"error: --backend postgres needs --database URL or ${PG_ENV} (e.g. {DEFAULT_PG})"
        )
    return str(url)


@contextmanager
def scratch_database(backend: str, server: str | None) -> Iterator[str]:
    """A fresh, empty database URL: an SQLite file in a temporary directory, or a new PostgreSQL
    database on `server`; both are removed afterwards, even when the benchmark fails."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="outreach-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    assert server is not None
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def libpq_url(url: str) -> str:
    """An SQLAlchemy PostgreSQL URL as psycopg's own connect() takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def sqlite_synchronous(engine: Engine) -> str:
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    with engine.connect() as conn:
        return names.get(int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one()), "?")


def _sqlite_value(kind: type) -> Callable[[Any], Any] | None:
    # The text forms SQLAlchemy itself writes, so the ORM reads bulk-loaded rows back unchanged.
    if kind is datetime:
        return lambda v: v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if kind is date:
        return lambda v: v.isoformat()
    if kind is dtime:
        return lambda v: v.strftime("%H:%M:%S.%f")
    if kind is dict or kind is list:
        return json.dumps
    return None


def _pg_value(kind: type) -> Callable[[Any], Any] | None:
    if kind is datetime:  # timestamp without time zone, naive UTC (queues.timeutil)
        return lambda v: v.astimezone(UTC).replace(tzinfo=None)
    if kind is dict or kind is list:
        return json.dumps
    return None


def bulk_load(
    engine: Engine, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert many rows fast: COPY on PostgreSQL, one executemany transaction on SQLite.
    Values are Python objects (date, aware datetime, time, dict for JSON, bool, None)."""
    postgres = is_postgres(engine)
    it = iter(rows)
    first = next(it, None)
    if first is None:
        return 0
    convert = [
        (_pg_value if postgres else _sqlite_value)(type(v)) if v is not None else None
        for v in first
    ]
    fix = [(i, f) for i, f in enumerate(convert) if f is not None]

    def converted() -> Iterator[Sequence[Any]]:
        for row in _chain(first, it):
            if fix:
                row = list(row)
                for i, f in fix:
                    if row[i] is not None:
                        row[i] = f(row[i])
            yield row

    count = 0
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        if postgres:
            with driver.cursor() as cur:
                cols = ", ".join(columns)
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in converted():
                        copy.write_row(row)
                        count += 1
            driver.commit()
        else:
            marks = ", ".join("?" for _ in columns)
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            driver.execute("BEGIN")
            batch: list[Sequence[Any]] = []
            for row in converted():
                batch.append(row)
                if len(batch) >= 50_000:
                    driver.executemany(sql, batch)
                    count += len(batch)
                    batch.clear()
            driver.executemany(sql, batch)
            count += len(batch)
            driver.execute("COMMIT")
    finally:
        raw.close()
    return count


# Every campaign kind the queue builder knows, for a bench world with all of them.
CAMPAIGN_KINDS = (
    "refill_reminder",
    "pre_sync_check",
    "post_dispense",
    "med_sync_enrollment",
    "adherence",
    "vaccine",
    "diabetes_education",
    "smoking_cessation",
)
# The pharmacies table's columns a bench fills, the id included.
PHARMACY_COLUMNS = (
    "id",
    "code",
    "name",
    "caller_id",
    "callback_number",
    "timezone",
    "state",
    "opens_at",
    "closes_at",
    "priority",
)
# The tasks table's columns a bench fills (the id left to the database).
TASK_COLUMNS = (
    "patient_id",
    "campaign_id",
    "subject",
    "reason",
    "status",
    "due_on",
    "priority_parts",
    "created_at",
    "score",
)
PLAIN_PATIENT_COLUMNS = (
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
    "tobacco_use",
    "hospice",
    "esrd",
)
PlainPatient = tuple[int, int, str, str, date, str, str, str]


def load_plain_patients(engine: Engine, rows: Iterable[PlainPatient]) -> int:
    """Bench patients first-named "Test" with none of the flags set (no caregiver, callable, alive,
    not in med sync, no tobacco, no hospice, no ESRD), from (id, pharmacy_id, mrn, last_name,
    birth_date, language, zip_code, state)."""
    return bulk_load(
        engine,
        "patients",
        PLAIN_PATIENT_COLUMNS,
        (
            (pid, ph, mrn, "Test", last, born, lang, zip_code, state) + (False,) * 7
            for pid, ph, mrn, last, born, lang, zip_code, state in rows
        ),
    )


def _chain(first: Sequence[Any], rest: Iterator[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    yield first
    yield from rest


def sync_sequences(engine: Engine, tables: Sequence[str]) -> None:
    """After loading explicit ids on PostgreSQL, move each id sequence past them."""
    if not is_postgres(engine):
        return
    with engine.begin() as conn:
        for table in tables:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
            )


def analyze(engine: Engine, vacuum: bool = True) -> None:
    """Fresh planner statistics (and, on PostgreSQL, dead rows cleared) before a timed phase."""
    if is_postgres(engine):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if vacuum else "ANALYZE")
    else:
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("ANALYZE")  # type: ignore[union-attr]
        finally:
            raw.close()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(title)
    for n, r in enumerate(cells):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=False))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def emit_json(result: dict[str, Any]) -> None:
    print(json.dumps(result, sort_keys=False), flush=True)


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"
