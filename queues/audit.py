"""The append-only audit trail (45 CFR 164.312(b)): who viewed, changed or exported what, when.

Every row is sealed into a hash chain by the database as it is inserted (queues/store/chain.py,
migration 0015), whoever writes it: `record` here, the claim's one statement, anything else. So
writers need no help from this module to chain; `verify` walks the chain and names the first row
that was edited, deleted or put out of order, triggers dropped or not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from queues.errors import OutreachError
from queues.store.chain import GENESIS, chain_hash
from queues.store.models import AuditEvent
from queues.timeutil import as_utc, sqlite_text, utcnow

__all__ = [
    "ChainProblem",
    "ChainReport",
    "PurgeResult",
    "export_rows",
    "purge",
    "record",
    "retention_cutoff",
    "verify_chain",
]

# HIPAA keeps documentation six years (45 CFR 164.316(b)(2)): no purge ever cuts nearer than this.
MIN_RETENTION_YEARS = 6
PURGED = "audit_purged"


def record(
    session: Session,
    action: str,
    *,
    user_id: int | None,
    patient_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to the caller's transaction (identifiers only, never health data).

    The row is chained when it is flushed (the database's seal trigger); on PostgreSQL that holds
    the chain head's row lock until the transaction ends, so flush late and commit soon."""
    session.add(
        AuditEvent(
            at=utcnow(), user_id=user_id, action=action, patient_id=patient_id, detail=detail or {}
        )
    )


@dataclass(frozen=True)
class ChainProblem:
    """The first thing wrong with the chain. `kind`: edited | deleted | out_of_order | unsealed."""

    kind: str
    row_id: int | None
    seq: int | None
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "row_id": self.row_id, "seq": self.seq, "message": self.message}


@dataclass(frozen=True)
class ChainReport:
    rows: int
    first_seq: int | None
    last_seq: int | None
    head_seq: int
    head_hash: str
    problem: ChainProblem | None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def as_json(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "rows": self.rows,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "problem": self.problem.as_json() if self.problem else None,
        }


def _columns(session: Session) -> str:
    """The fields as the seal hashed them: `at` and `detail` as stored text."""
    if session.get_bind().dialect.name == "postgresql":
        at, detail = "to_char(at, 'YYYY-MM-DD HH24:MI:SS.US')", "detail::text"
    else:
        at, detail = "at", "detail"
    return f"id, seq, {at}, user_id, action, patient_id, {detail}, prev_hash, hash"


def verify_chain(session: Session, batch: int = 5000) -> ChainReport:
    """Walk the chain in order, recomputing every hash; the first problem found, or none."""
    head = session.execute(
        text("SELECT seq, hash, base_seq, base_hash FROM audit_chain WHERE id = 1")
    ).one_or_none()
    if head is None:
        no_head = ChainProblem("deleted", None, None, "the chain's head row is missing")
        return ChainReport(0, None, None, 0, GENESIS, no_head)
    head_seq, head_hash, base_seq, base_hash = int(head[0]), str(head[1]), int(head[2]), head[3]
    expected_seq, prev_hash, prev_id = base_seq + 1, str(base_hash), None
    rows, first_seq, last_seq = 0, None, None
    problem: ChainProblem | None = None
    cols = _columns(session)
    after = base_seq
    while problem is None:
        chunk = session.execute(
            text(f"SELECT {cols} FROM audit_events WHERE seq > :after ORDER BY seq LIMIT :n"),
            {"after": after, "n": batch},
        ).all()
        if not chunk:
            break
        for row_id, seq, at, user_id, action, patient_id, detail, row_prev, row_hash in chunk:
            rows += 1
            first_seq = seq if first_seq is None else first_seq
            where = f"audit row {row_id} (seq {seq})"
            if seq > expected_seq:
                missing = (
                    f"seq {expected_seq}"
                    if seq == expected_seq + 1
                    else f"seq {expected_seq}-{seq - 1}"
                )
                problem = ChainProblem(
                    "deleted",
                    row_id,
                    seq,
                    f"{where}: the row(s) before it ({missing}) were deleted",
                )
                break
            if row_prev != prev_hash:
                before = f"row {prev_id}" if prev_id is not None else "the chain's start"
                problem = ChainProblem(
                    "out_of_order",
                    row_id,
                    seq,
                    f"{where} does not follow {before}: a row was moved, inserted out of order, "
                    "or the row before it was rewritten",
                )
                break
            expected = chain_hash(row_id, seq, at, user_id, action, patient_id, detail, row_prev)
            if row_hash != expected:
                problem = ChainProblem(
                    "edited",
                    row_id,
                    seq,
                    f"{where} was edited: its fields no longer match its hash",
                )
                break
            prev_hash, prev_id, last_seq = row_hash, row_id, seq
            expected_seq = seq + 1
        after = chunk[-1][1]
    if problem is None:
        unsealed = session.execute(
            text(
                "SELECT id FROM audit_events WHERE seq IS NULL OR hash IS NULL ORDER BY id LIMIT 1"
            )
        ).scalar()
        if unsealed is not None:
            problem = ChainProblem(
                "unsealed",
                int(unsealed),
                None,
                f"audit row {unsealed} is outside the chain: it was inserted with the seal removed",
            )
    if problem is None and base_seq > 0:
        problem = _base_on_record(session, base_seq, str(base_hash))
    if problem is None and (head_seq != expected_seq - 1 or head_hash != prev_hash):
        if head_seq > expected_seq - 1:
            message = f"the last row(s) of the chain (seq {expected_seq}-{head_seq}) were deleted"
            problem = ChainProblem("deleted", None, expected_seq, message)
        else:
            problem = ChainProblem(
                "edited", None, head_seq, "the chain's head does not match its last row"
            )
    return ChainReport(rows, first_seq, last_seq, head_seq, head_hash, problem)


def export_rows(session: Session, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """The rows with `start <= at < end`, in chain order, as they are stored (with their hashes,
    so an export can be checked against the chain later)."""
    if session.get_bind().dialect.name == "postgresql":
        bounds: dict[str, Any] = {
            "start": as_utc(start).replace(tzinfo=None),
            "end": as_utc(end).replace(tzinfo=None),
        }
    else:
        bounds = {"start": sqlite_text(start), "end": sqlite_text(end)}
    result = session.execute(
        text(
            f"SELECT {_columns(session)} FROM audit_events "
            "WHERE at >= :start AND at < :end ORDER BY seq"
        ),
        bounds,
    )
    for row_id, seq, at, user_id, action, patient_id, detail, prev_hash, row_hash in result:
        yield {
            "seq": seq,
            "id": row_id,
            "at": at,
            "user_id": user_id,
            "action": action,
            "patient_id": patient_id,
            "detail": json.loads(detail) if detail else {},
            "prev_hash": prev_hash,
            "hash": row_hash,
        }


def _base_on_record(session: Session, base_seq: int, base_hash: str) -> ChainProblem | None:
    """A chain that starts after row 1 must say why: the purge that moved its base is a row of the
    kept chain, naming that base (so rows cut off any other way show as deleted)."""
    for (detail,) in session.execute(
        text("SELECT detail FROM audit_events WHERE action = :a AND seq > :base ORDER BY seq DESC"),
        {"a": PURGED, "base": base_seq},
    ):
        found = json.loads(detail) if isinstance(detail, str) else detail
        if found.get("base_seq") == base_seq and found.get("base_hash") == base_hash:
            return None
    return ChainProblem(
        "deleted",
        None,
        base_seq,
        f"the chain starts after seq {base_seq}, and no purge on record moved it there: "
        f"rows up to seq {base_seq} were deleted",
    )


def retention_cutoff(now: datetime, years: int) -> datetime:
    """The time `years` years before `now` (Feb 29 → Feb 28): rows older than it may go."""
    if years < MIN_RETENTION_YEARS:
        raise ValueError(f"retention of {years} years: at least {MIN_RETENTION_YEARS}")
    now = as_utc(now)
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed (or, dry, would remove): the chain's oldest rows, all before `cutoff`."""

    cutoff: datetime
    rows: int
    base_seq: int  # the chain starts after this seq (the last row removed)
    base_hash: str
    first_kept_seq: int | None
    dry_run: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "rows": self.rows,
            "base_seq": self.base_seq,
            "base_hash": self.base_hash,
            "first_kept_seq": self.first_kept_seq,
            "dry_run": self.dry_run,
        }


class ChainBroken(OutreachError):
    """A purge refused: the chain does not verify, and purging would erase the evidence."""


def purge(
    session: Session,
    *,
    retention_years: int,
    user_id: int | None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PurgeResult:
    """Remove the oldest rows of the chain, those older than the retention, and move the chain's
    base past them, so `verify_chain` still passes; the purge is itself a row of the chain.

    Only a run of rows from the start of the chain goes (a row younger than the cutoff keeps every
    row after it). The chain is verified first: a broken chain is never purged (ChainBroken). In
    the caller's transaction; the database lets a row be deleted only once the base is past it
    (migration 0016)."""
    now = as_utc(now or utcnow())
    cutoff = retention_cutoff(now, retention_years)
    report = verify_chain(session)
    if report.problem is not None:
        raise ChainBroken(
            f"the audit chain does not verify ({report.problem.message}); nothing was purged: "
            "export the log and find out what happened first"
        )
    head = session.execute(text("SELECT base_seq, base_hash FROM audit_chain WHERE id = 1")).one()
    base_seq, base_hash = int(head[0]), str(head[1])
    if session.get_bind().dialect.name == "postgresql":
        bound: Any = cutoff.replace(tzinfo=None)
    else:
        bound = sqlite_text(cutoff)
    first_young = session.execute(
        text("SELECT min(seq) FROM audit_events WHERE seq > :base AND at >= :cutoff"),
        {"base": base_seq, "cutoff": bound},
    ).scalar()
    last_old = session.execute(
        text(
            "SELECT seq, hash FROM audit_events WHERE seq > :base"
            + (" AND seq < :young" if first_young is not None else "")
            + " ORDER BY seq DESC LIMIT 1"
        ),
        {"base": base_seq, "young": first_young},
    ).one_or_none()
    if last_old is None:
        return PurgeResult(cutoff, 0, base_seq, base_hash, report.first_seq, dry_run)
    new_seq, new_hash = int(last_old[0]), str(last_old[1])
    rows = new_seq - base_seq  # the chain verified: every seq from base+1 on is there
    result = PurgeResult(cutoff, rows, new_seq, new_hash, first_young, dry_run)
    if dry_run:
        return result
    session.execute(
        text("UPDATE audit_chain SET base_seq = :seq, base_hash = :hash WHERE id = 1"),
        {"seq": new_seq, "hash": new_hash},
    )
    session.execute(text("DELETE FROM audit_events WHERE seq <= :seq"), {"seq": new_seq})
    record(
        session,
        PURGED,
        user_id=user_id,
        detail={
            "cutoff": cutoff.isoformat(),
            "retention_years": retention_years,
            "rows": rows,
            "previous_base_seq": base_seq,
            "base_seq": new_seq,
            "base_hash": new_hash,
        },
    )
    session.flush()
    return result
