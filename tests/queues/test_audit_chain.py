"""The audit log's hash chains: every row sealed by the database, whoever writes it; `verify_chain`
names the first row edited, deleted, moved or forged — with the append-only triggers dropped for
the tampering, and put back or not (SQLite and PostgreSQL). On PostgreSQL each connection writes
to its own chain's head (one of 32), so two consoles' audited actions never wait on one row."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from queues.audit import ChainReport, record, verify_chain
from queues.store.chain import GENESIS, POSTGRES_CHAINS, chain_count, chain_of_backend
from queues.store.db import (
    alembic_config,
    make_engine,
    reading,
    session_factory,
    transaction,
    upgrade,
)
from tests.queues.test_migrations import downgrade


def write(sessions: sessionmaker[Session], n: int, user_id: int = 1) -> None:
    for k in range(n):
        with transaction(sessions) as session:
            record(session, "view_patient", user_id=user_id, patient_id=k, detail={"k": k})


def write_on_one_connection(engine: Engine, n: int, user_id: int = 1) -> None:
    """n audited actions, each its own transaction, on one connection: one chain (PostgreSQL)."""
    with engine.connect() as conn:
        for k in range(n):
            with Session(bind=conn) as session:
                record(session, "view_patient", user_id=user_id, patient_id=k, detail={"k": k})
                session.commit()


def verify(sessions: sessionmaker[Session]) -> ChainReport:
    with reading(sessions) as session:
        return verify_chain(session, batch=3)  # small batches: the walk crosses their edges


def ids(engine: Engine) -> list[int]:
    """The rows in chain order (the tamper tests write to one chain)."""
    with engine.connect() as conn:
        chains = conn.execute(text("SELECT DISTINCT chain FROM audit_events")).scalars().all()
        assert len(chains) == 1, chains
        return list(conn.execute(text("SELECT id FROM audit_events ORDER BY seq")).scalars())


def sealed(report: ChainReport) -> int:
    return sum(head.seq for head in report.heads)


def test_rows_from_every_writer_are_chained(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    write(sessions, 4)
    # A statement that is not the ORM (as the claim's own statement writes its row) is sealed too.
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_events (at, user_id, action, patient_id, detail) "
                "VALUES ('2026-12-02 16:00:00.000000', 2, 'claim', 9, '{}')"
            )
        )
    write(sessions, 2)
    report = verify(sessions)
    assert report.intact, report.problem
    assert report.rows == sealed(report) == 7
    assert [h.chain for h in report.heads] == list(range(1, chain_count(engine.dialect.name) + 1))


def _drop_guards(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
            conn.execute(text("DROP TRIGGER audit_events_seal ON audit_events"))
        else:
            for name in ("audit_events_no_update", "audit_events_no_delete", "audit_events_seal"):
                conn.execute(text(f"DROP TRIGGER {name}"))


def _put_guards_back(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON "
                    "audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
                )
            )
        else:
            for verb in ("UPDATE", "DELETE"):
                conn.execute(
                    text(
                        f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON "
                        "audit_events BEGIN SELECT RAISE(ABORT, 'append-only'); END"
                    )
                )


def _edit(conn: Connection, row: list[int]) -> None:
    conn.execute(text("UPDATE audit_events SET action = 'login' WHERE id = :id"), {"id": row[3]})


def _delete(conn: Connection, row: list[int]) -> None:
    conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": row[3]})


def _move(conn: Connection, row: list[int]) -> None:
    # Rows 4 and 5 of the chain trade places.
    conn.execute(text("UPDATE audit_events SET seq = -1 WHERE id = :id"), {"id": row[3]})
    conn.execute(text("UPDATE audit_events SET seq = 4 WHERE id = :id"), {"id": row[4]})
    conn.execute(text("UPDATE audit_events SET seq = 5 WHERE id = :id"), {"id": row[3]})


def _move_to_another_chain(conn: Connection, row: list[int]) -> None:
    # Row 4 taken out of its chain into another one's (a chain with no head on SQLite).
    conn.execute(
        text(
            "UPDATE audit_events SET chain = CASE WHEN chain > 1 THEN chain - 1 ELSE 2 END "
            "WHERE id = :id"
        ),
        {"id": row[3]},
    )


def _replace(conn: Connection, row: list[int]) -> None:
    # Row 4 deleted and a forged row put in its place, with its place and predecessor copied.
    old = conn.execute(
        text("SELECT chain, seq, prev_hash, hash FROM audit_events WHERE id = :id"),
        {"id": row[3]},
    ).one()
    conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": row[3]})
    conn.execute(
        text(
            "INSERT INTO audit_events (at, user_id, action, patient_id, detail, chain, seq, "
            "prev_hash, hash) VALUES ('2026-12-02 16:00:00.000000', 1, 'view_patient', 3, '{}', "
            ":c, :s, :p, :h)"
        ),
        {"c": old[0], "s": old[1], "p": old[2], "h": old[3]},
    )


def _delete_last(conn: Connection, row: list[int]) -> None:
    conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": row[-1]})


def _forge(conn: Connection, row: list[int]) -> None:
    conn.execute(
        text(
            "INSERT INTO audit_events (at, user_id, action, patient_id, detail) "
            "VALUES ('2026-12-02 16:00:00.000000', 1, 'login', NULL, '{}')"
        )
    )


@pytest.mark.parametrize(
    "guards_back", [False, True], ids=["triggers-dropped", "triggers-put-back"]
)
@pytest.mark.parametrize(
    ("tamper", "kind", "named"),
    [
        (_edit, "edited", 3),
        (_delete, "deleted", 4),
        (_move, "out_of_order", 4),
        (_move_to_another_chain, "deleted", None),
        (_replace, "edited", None),
        (_delete_last, "deleted", None),
        (_forge, "unsealed", None),
    ],
    ids=["edited", "deleted", "reordered", "other-chain", "replaced", "last-deleted", "forged"],
)
def test_verify_names_the_first_tampered_row(
    engine: Engine,
    sessions: sessionmaker[Session],
    tamper: Callable[[Connection, list[int]], None],
    kind: str,
    named: int | None,
    guards_back: bool,
) -> None:
    write_on_one_connection(engine, 8)
    before = ids(engine)
    assert verify(sessions).intact
    _drop_guards(engine)
    with engine.begin() as conn:
        tamper(conn, before)
    if guards_back:
        _put_guards_back(engine)
    report = verify(sessions)
    assert report.problem is not None
    assert report.problem.kind == kind, report.problem
    if named is not None:
        assert report.problem.row_id == before[named], report.problem
    assert "audit row" in report.problem.message or "chain" in report.problem.message


def test_the_triggers_refuse_edits_and_a_row_cannot_bring_its_own_hash(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    write(sessions, 2)
    for statement in (
        "UPDATE audit_events SET action = 'login'",
        "DELETE FROM audit_events",
        "DELETE FROM audit_chain",
    ):
        with (
            pytest.raises(Exception, match=r"append-only|keeps its rows"),
            engine.begin() as conn,
        ):
            conn.execute(text(statement))
    # A writer's own seq/hash are overwritten (PostgreSQL) or refused (SQLite): never trusted.
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_events (at, user_id, action, patient_id, detail, seq, hash) "
                    "VALUES ('2026-12-02 16:00:00.000000', 1, 'login', NULL, '{}', 99, 'x')"
                )
            )
    except Exception as exc:
        assert "append-only" in str(exc)
    assert verify(sessions).intact


def test_two_consoles_writing_at_once_still_chain(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def console(user_id: int) -> None:
        try:
            start.wait()
            write(sessions, 60, user_id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=console, args=(u,)) for u in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = verify(sessions)
    assert report.intact, report.problem
    assert report.rows == sealed(report) == 240


def test_upgrade_seals_the_rows_already_in_the_log(db_url: str) -> None:
    engine = make_engine(db_url)
    script = ScriptDirectory.from_config(alembic_config(db_url))
    chained = next(r for r in script.walk_revisions() if "hash-chained" in (r.doc or ""))
    try:
        upgrade(engine)
        downgrade(engine, str(chained.down_revision))
        with engine.begin() as conn:
            for k in range(3):
                conn.execute(
                    text(
                        "INSERT INTO audit_events (at, user_id, action, patient_id, detail) "
                        "VALUES (:at, 1, 'login', :k, '{\"k\": 1}')"
                    ),
                    {"at": f"2026-12-0{k + 1} 10:00:00.000000", "k": k},
                )
        upgrade(engine)
        sessions = session_factory(engine)
        write(sessions, 2)
        report = verify(sessions)
        assert report.intact, report.problem
        assert report.rows == 5
        with engine.connect() as conn:
            first = conn.execute(
                text("SELECT id, prev_hash FROM audit_events WHERE chain = 1 AND seq = 1")
            ).one()
        assert tuple(first) == (1, GENESIS)  # the rows already there, in id order, in chain 1
    finally:
        engine.dispose()


def test_a_deleted_head_is_named(engine: Engine, sessions: sessionmaker[Session]) -> None:
    write_on_one_connection(engine, 3)
    with engine.begin() as conn:
        chain = conn.execute(text("SELECT DISTINCT chain FROM audit_events")).scalar_one()
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_chain_keep ON audit_chain"))
        else:
            conn.execute(text("DROP TRIGGER audit_chain_keep"))
        conn.execute(text("DELETE FROM audit_chain WHERE id = :id"), {"id": chain})
    report = verify(sessions)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.chain) == ("deleted", chain), report.problem
    assert f"chain(s) {chain} " in report.problem.message


def _connections_on_two_chains(url: str) -> list[psycopg.Connection]:
    """Two connections whose rows go to different chains (opened until two differ)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    opened: list[psycopg.Connection] = []
    by_chain: dict[int, psycopg.Connection] = {}
    while len(by_chain) < 2 and len(opened) < 4 * POSTGRES_CHAINS:
        conn = psycopg.connect(dsn)
        opened.append(conn)
        by_chain.setdefault(chain_of_backend(conn.info.backend_pid), conn)
    for conn in opened:
        if conn not in by_chain.values():
            conn.close()
    return list(by_chain.values())


def test_postgres_consoles_on_different_chains_do_not_wait_for_each_other(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        upgrade(engine)
        first, second = _connections_on_two_chains(pg_url)
        insert = (
            "INSERT INTO audit_events (at, user_id, action, patient_id, detail) "
            "VALUES (now(), %s, 'claim', 7, '{}')"
        )
        try:
            first.execute(insert, (1,))  # its chain's head locked until it commits
            # Any wait for a lock fails at once: with one head for everybody this insert waited.
            second.execute("SET lock_timeout = '50ms'")
            second.execute(insert, (2,))
            second.commit()
            first.commit()
        finally:
            first.close()
            second.close()
        sessions = session_factory(engine)
        report = verify(sessions)
        assert report.intact, report.problem
        used = [h.chain for h in report.heads if h.seq]
        assert len(used) == 2 and len(report.heads) == POSTGRES_CHAINS
    finally:
        engine.dispose()
