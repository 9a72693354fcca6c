"""Engines and sessions for SQLite (file, WAL) and PostgreSQL, and Alembic upgrades."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from queues.errors import DatabaseBusy, DatabaseUnavailable
from queues.store import chain

if TYPE_CHECKING:  # Alembic (~35 MB) is imported by the upgrade alone
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def safe_url(url: str) -> str:
    """The URL as it may be shown or logged: never with its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: show only its scheme
        return url.split(":", 1)[0] + ":…"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
    # The audit log's seal trigger hashes each new row with it (queues/store/chain.py).
    dbapi_connection.create_function(chain.SQL_FUNCTION, 8, chain.chain_hash, deterministic=True)


# The execution option reading() sets: a transaction that only reads.
READ_ONLY = "outreach_read_only"


def _sqlite_begin(conn: Any) -> None:
    # A transaction that may write takes the write lock at BEGIN, so two claimers never both read
    # the same head row and then race to upgrade their read locks (SQLite's deadlock-prone
    # default). One that only reads takes no lock at all: in WAL mode it reads its snapshot while a
    # writer works, so the floor and a patient's context stay readable during a long queue build.
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


# A pooled server connection idle longer than this is pinged at checkout (a restarted server or a
# dropped link then costs one reconnect, not a failed claim); a busy one is not, since a SELECT 1
# per checkout was a whole extra round trip per claim.
IDLE_PING_SECONDS = 10.0


def _mark_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    last = record.info.get("checked_in_at")
    if last is None or time.monotonic() - last < IDLE_PING_SECONDS:
        return
    try:
        cur = dbapi_connection.cursor()
        cur.execute("SELECT 1")
        cur.close()
        dbapi_connection.rollback()
    except Exception as exc:  # the pool drops this connection and connects afresh
        raise DisconnectionError(str(exc)) from exc


def _owner_only(path: Path) -> None:
    """An SQLite file made before the product set its umask (0644) becomes 0600, its WAL too."""
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if part.stat().st_uid == os.getuid() and part.stat().st_mode & 0o077:
                part.chmod(0o600)
        except OSError:
            continue  # not there yet: SQLite creates it under the umask


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for `url`, checked by one round trip so a bad URL fails here, plainly."""
    parsed = make_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                # Patient data: a folder and a file for the user the product runs as.
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                _owner_only(Path(parsed.database))
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "isolation_level": None},
                hide_parameters=True,  # an error's text must not carry a patient's data into a log
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                connect_args={"connect_timeout": 10},
                hide_parameters=True,
            )
            event.listen(engine, "checkin", _mark_checkin)
            event.listen(engine, "checkout", _ping_if_idle)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, SQLAlchemyError, OSError) as exc:
        raise DatabaseUnavailable(safe_url(url), _first_line(exc)) from None
    return engine


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    msg = str(orig).strip().splitlines()
    return msg[0] if msg else type(orig).__name__


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error. A database that cannot
    answer raises DatabaseUnavailable (see _unanswered)."""
    with _unanswered(factory), factory() as session, session.begin():
        yield session


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads (nothing is committed), its failures reported as transaction's are.
    On SQLite it takes no lock: it reads a snapshot even while another connection writes."""
    with _unanswered(factory), factory() as session:
        session.connection(execution_options={READ_ONLY: True})
        yield session


@contextmanager
def _unanswered(factory: sessionmaker[Session]) -> Iterator[None]:
    """A server that went away, a refused connection, an SQLite file locked past busy_timeout:
    DatabaseUnavailable, an OutreachError that screens and commands report plainly (the URL
    without its password, the driver's first line, never the statement's values) instead of an
    exception they do not expect. Integrity and programming errors pass through as they are."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        if not _unreachable(exc):
            raise  # a deadlock, a timeout, a missing table: the caller's to see as it is
        bind = factory.kw.get("bind")
        where = safe_url(bind.url.render_as_string(hide_password=False)) if bind else "database"
        error = DatabaseBusy if sqlite_busy(exc.orig) else DatabaseUnavailable
        raise error(where, _first_line(exc)) from exc


# SQLite result codes that mean the file cannot be used now, not that a statement is wrong.
_SQLITE_UNUSABLE = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
}


def _unreachable(exc: OperationalError | InterfaceError) -> bool:
    """The database cannot answer (connection refused or dropped, server shutting down, file
    locked or unusable), as opposed to a statement it refused."""
    if isinstance(exc, InterfaceError) or exc.connection_invalidated:
        return True
    code = _sqlite_code(exc.orig)
    if code is not None:
        return code in _SQLITE_UNUSABLE
    state = getattr(exc.orig, "sqlstate", None)
    # No SQLSTATE: the client could not connect or lost the link; 08: connection exception;
    # 57P0x: the server is shutting down or not accepting connections; 53300: too many.
    return state is None or state.startswith(("08", "57P")) or state == "53300"


def sqlite_busy(error: BaseException | None) -> bool:
    """SQLite's 'database is locked': another connection held the write lock past busy_timeout."""
    return _sqlite_code(error) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _sqlite_code(error: BaseException | None) -> int | None:
    """The primary result code of an sqlite3 error (extended codes carry it in the low byte)."""
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# `revision = "0020"` / `down_revision = "0019"` at the start of a line of a migration file.
_REVISION_LINE = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+?)\s*$""", re.M)
_QUOTED = re.compile(r"""(["'])\w+\1""")  # a quoted revision id


def newest_revision() -> str | None:
    """The one head of the migration history, read from the version files' `revision` and
    `down_revision` lines without importing Alembic (~8 MiB a console would carry all day to
    learn that nothing is to be done); None when that is not plain (no files, a line it cannot
    read, a merge, two heads): then `upgrade` asks Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        revision, down = found.get("revision", ""), found.get("down_revision", "")
        if not _QUOTED.fullmatch(revision) or not (down == "None" or _QUOTED.fullmatch(down)):
            return None
        revisions.add(revision[1:-1])
        if down != "None":
            parents.add(down[1:-1])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def at_newest_revision(engine: Engine) -> bool:
    """The database is stamped with the newest migration: one query, no Alembic."""
    newest = newest_revision()
    if newest is None:
        return False
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        stamped = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    return stamped == [newest]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations on the engine's database (idempotent). A database already at the newest
    revision is left as it is without loading Alembic (a console opens one every start)."""
    if revision == "head" and at_newest_revision(engine):
        return
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
