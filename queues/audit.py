"""The append-only audit trail (45 CFR 164.312(b)): who viewed, changed or exported what, when.

Every row is sealed into a hash chain by the database as it is inserted (queues/store/chain.py,
migration 0015), whoever writes it: `record` here, the claim's one statement, anything else. So
writers need no help from this module to chain; `verify` walks each chain and names the first row
that was edited, deleted or put out of order, triggers dropped or not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from queues.errors import OutreachError
from queues.store.chain import chain_count, chain_hash
from queues.store.models import AuditEvent
from queues.timeutil import as_utc, sqlite_text, utcnow

__all__ = [
    "ChainCut",
    "ChainHead",
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
    the head of the connection's chain locked until the transaction ends (other connections'
    chains are not held), so flush late and commit soon."""
    session.add(
        AuditEvent(
            at=utcnow(), user_id=user_id, action=action, patient_id=patient_id, detail=detail or {}
        )
    )


@dataclass(frozen=True)
class ChainProblem:
    """The first thing wrong with a chain. `kind`: edited | deleted | out_of_order | unsealed."""

    kind: str
    row_id: int | None
    seq: int | None
    message: str
    chain: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "chain": self.chain,
            "row_id": self.row_id,
            "seq": self.seq,
            "message": self.message,
        }


@dataclass(frozen=True)
class ChainHead:
    """One chain's head: its last sealed row's place and hash (seq 0: nothing sealed yet)."""

    chain: int
    seq: int
    hash: str
    rows: int  # rows walked in this chain

    def as_json(self) -> dict[str, Any]:
        return {"chain": self.chain, "seq": self.seq, "hash": self.hash, "rows": self.rows}


@dataclass(frozen=True)
class ChainReport:
    rows: int
    heads: tuple[ChainHead, ...]
    problem: ChainProblem | None

    @property
    def intact(self) -> bool:
        return self.problem is None

    @property
    def digest(self) -> str:
        """One hash of every head (chain, seq, hash): a short thing to keep elsewhere."""
        text_ = "".join(f"{h.chain}:{h.seq}:{h.hash};" for h in self.heads)
        return hashlib.sha256(text_.encode("ascii")).hexdigest()

    def as_json(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "rows": self.rows,
            "chains": len(self.heads),
            "heads": [h.as_json() for h in self.heads],
            "digest": self.digest,
            "problem": self.problem.as_json() if self.problem else None,
        }


def _columns(session: Session) -> str:
    """The fields as the seal hashed them: `at` and `detail` as stored text."""
    if session.get_bind().dialect.name == "postgresql":
        at, detail = "to_char(at, 'YYYY-MM-DD HH24:MI:SS.US')", "detail::text"
    else:
        at, detail = "at", "detail"
    return f"id, chain, seq, {at}, user_id, action, patient_id, {detail}, prev_hash, hash"


def _walk(
    session: Session,
    chain: int,
    head: tuple[int, str, int, str],
    batch: int,
) -> tuple[int, ChainProblem | None]:
    """One chain walked in order, every hash recomputed: its rows, and its first problem."""
    head_seq, head_hash, base_seq, base_hash = head
    expected_seq, prev_hash, prev_id = base_seq + 1, base_hash, None
    rows = 0
    cols = _columns(session)
    after = base_seq
    while True:
        chunk = session.execute(
            text(
                f"SELECT {cols} FROM audit_events WHERE chain = :chain AND seq > :after "
                "ORDER BY seq LIMIT :n"
            ),
            {"chain": chain, "after": after, "n": batch},
        ).all()
        if not chunk:
            break
        for row_id, _, seq, at, user_id, action, patient_id, detail, row_prev, row_hash in chunk:
            rows += 1
            where = f"audit row {row_id} (seq {seq})"  # its chain is in the problem's JSON
            if seq > expected_seq:
                missing = (
                    f"seq {expected_seq}"
                    if seq == expected_seq + 1
                    else f"seq {expected_seq}-{seq - 1}"
                )
                message = f"{where}: the row(s) before it ({missing}) were deleted"
                return rows, ChainProblem("deleted", row_id, seq, message, chain)
            if row_prev != prev_hash:
                before = f"row {prev_id}" if prev_id is not None else "the chain's start"
                message = (
                    f"{where} does not follow {before}: a row was moved, inserted out of order, "
                    "or the row before it was rewritten"
                )
                return rows, ChainProblem("out_of_order", row_id, seq, message, chain)
            expected = chain_hash(row_id, seq, at, user_id, action, patient_id, detail, row_prev)
            if row_hash != expected:
                message = f"{where} was edited: its fields no longer match its hash"
                return rows, ChainProblem("edited", row_id, seq, message, chain)
            prev_hash, prev_id = row_hash, row_id
            expected_seq = seq + 1
        after = chunk[-1][2]
    if head_seq > expected_seq - 1:
        message = f"the last row(s) of chain {chain} (seq {expected_seq}-{head_seq}) were deleted"
        return rows, ChainProblem("deleted", None, expected_seq, message, chain)
    if head_seq != expected_seq - 1 or head_hash != prev_hash:
        message = f"chain {chain}'s head does not match its last row"
        return rows, ChainProblem("edited", None, head_seq, message, chain)
    return rows, None


def verify_chain(session: Session, batch: int = 5000) -> ChainReport:
    """Walk every chain in order, recomputing every hash; the first problem found, or none.

    The chains are walked one after another (1, 2, …); the problem reported is the first one in
    the first chain that has one."""
    stored = {
        int(k): (int(seq), str(h), int(base_seq), str(base_hash))
        for k, seq, h, base_seq, base_hash in session.execute(
            text("SELECT id, seq, hash, base_seq, base_hash FROM audit_chain ORDER BY id")
        )
    }
    expected = range(1, chain_count(session.get_bind().dialect.name) + 1)
    problem: ChainProblem | None = None
    missing = [k for k in expected if k not in stored]
    if missing:
        which = ", ".join(str(k) for k in missing)
        problem = ChainProblem(
            "deleted", None, None, f"the head row of chain(s) {which} is missing", missing[0]
        )
    rows, heads = 0, []
    for chain, head in stored.items():
        walked, found = _walk(session, chain, head, batch)
        if found is None and head[2] > 0:
            found = _base_on_record(session, chain, head[2], head[3])
        rows += walked
        heads.append(ChainHead(chain, head[0], head[1], walked))
        if found is not None and problem is None:
            problem = found
    if problem is None:
        outside = session.execute(
            text(
                "SELECT id, chain FROM audit_events WHERE seq IS NULL OR hash IS NULL "
                "OR chain IS NULL OR chain NOT IN (SELECT id FROM audit_chain) ORDER BY id LIMIT 1"
            )
        ).first()
        if outside is not None:
            row_id = int(outside[0])
            how = (
                "it was inserted with the seal removed"
                if outside[1] is None
                else f"its chain {outside[1]} has no head"
            )
            problem = ChainProblem(
                "unsealed", row_id, None, f"audit row {row_id} is outside the chains: {how}"
            )
    return ChainReport(rows, tuple(heads), problem)


def export_rows(session: Session, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """The rows with `start <= at < end`, in chain order, as they are stored (with their chain,
    place and hashes, so an export can be checked against the chains later)."""
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
            "WHERE at >= :start AND at < :end ORDER BY chain, seq"
        ),
        bounds,
    )
    for row_id, chain, seq, at, user_id, action, patient_id, detail, prev_hash, row_hash in result:
        yield {
            "chain": chain,
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


def _base_on_record(
    session: Session, chain: int, base_seq: int, base_hash: str
) -> ChainProblem | None:
    """A chain that starts after its row 1 must say why: the latest purge, a row of the kept log,
    names every chain's base (so rows cut off any other way show as deleted)."""
    for (detail,) in session.execute(
        text("SELECT detail FROM audit_events WHERE action = :a ORDER BY id DESC"), {"a": PURGED}
    ):
        found = json.loads(detail) if isinstance(detail, str) else detail
        named = (found.get("bases") or {}).get(str(chain)) or {}
        if named.get("seq") == base_seq and named.get("hash") == base_hash:
            return None
    return ChainProblem(
        "deleted",
        None,
        base_seq,
        f"chain {chain} starts after seq {base_seq}, and no purge on record moved it there: "
        f"rows up to seq {base_seq} were deleted",
        chain,
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
class ChainCut:
    """One chain in a purge: the rows it lost (or, dry, would lose) and where it now starts."""

    chain: int
    rows: int
    base_seq: int  # the chain starts after this seq (the last row removed)
    base_hash: str
    first_kept_seq: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "rows": self.rows,
            "base_seq": self.base_seq,
            "base_hash": self.base_hash,
            "first_kept_seq": self.first_kept_seq,
        }


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed (or, dry, would remove): each chain's oldest rows, all before
    `cutoff`. `chains`: every chain that has rows or was purged before."""

    cutoff: datetime
    chains: tuple[ChainCut, ...]
    dry_run: bool

    @property
    def rows(self) -> int:
        return sum(cut.rows for cut in self.chains)

    def as_json(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "rows": self.rows,
            "chains": [cut.as_json() for cut in self.chains],
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
    """Remove the oldest rows of each chain, those older than the retention, and move the chain's
    base past them, so `verify_chain` still passes; the purge is itself a row of the log, naming
    every chain's base.

    Only a run of rows from the start of a chain goes (a row younger than the cutoff keeps every
    row after it in its chain). The chains are verified first: a broken one is never purged
    (ChainBroken). In the caller's transaction; the database lets a row be deleted only once its
    chain's base is past it (migration 0016)."""
    now = as_utc(now or utcnow())
    cutoff = retention_cutoff(now, retention_years)
    report = verify_chain(session)
    if report.problem is not None:
        raise ChainBroken(
            f"the audit chain does not verify ({report.problem.message}); nothing was purged: "
            "export the log and find out what happened first"
        )
    if session.get_bind().dialect.name == "postgresql":
        bound: Any = cutoff.replace(tzinfo=None)
    else:
        bound = sqlite_text(cutoff)
    cuts: list[ChainCut] = []
    heads = session.execute(text("SELECT id, base_seq, base_hash FROM audit_chain ORDER BY id"))
    for chain, base, base_hash in heads.all():
        where = {"chain": chain, "base": base}
        first_kept = session.execute(
            text("SELECT min(seq) FROM audit_events WHERE chain = :chain AND seq > :base"), where
        ).scalar()
        if first_kept is None and not base:
            continue  # nothing ever written to this chain
        first_young = session.execute(
            text(
                "SELECT min(seq) FROM audit_events "
                "WHERE chain = :chain AND seq > :base AND at >= :cutoff"
            ),
            {**where, "cutoff": bound},
        ).scalar()
        last_old = session.execute(
            text(
                "SELECT seq, hash FROM audit_events WHERE chain = :chain AND seq > :base"
                + (" AND seq < :young" if first_young is not None else "")
                + " ORDER BY seq DESC LIMIT 1"
            ),
            {**where, "young": first_young},
        ).one_or_none()
        if last_old is None:
            cuts.append(ChainCut(chain, 0, int(base), str(base_hash), first_kept))
        else:
            new_seq = int(last_old[0])  # the chain verified: every seq from base+1 on is there
            cuts.append(ChainCut(chain, new_seq - base, new_seq, str(last_old[1]), first_young))
    result = PurgeResult(cutoff, tuple(cuts), dry_run)
    if dry_run or result.rows == 0:
        return result
    for cut in cuts:
        if cut.rows:
            session.execute(
                text("UPDATE audit_chain SET base_seq = :seq, base_hash = :hash WHERE id = :chain"),
                {"seq": cut.base_seq, "hash": cut.base_hash, "chain": cut.chain},
            )
            session.execute(
                text("DELETE FROM audit_events WHERE chain = :chain AND seq <= :seq"),
                {"seq": cut.base_seq, "chain": cut.chain},
            )
    record(
        session,
        PURGED,
        user_id=user_id,
        detail={
            "cutoff": cutoff.isoformat(),
            "retention_years": retention_years,
            "rows": result.rows,
            "bases": {
                str(cut.chain): {"seq": cut.base_seq, "hash": cut.base_hash, "rows": cut.rows}
                for cut in cuts
                if cut.base_seq
            },
        },
    )
    session.flush()
    return result
