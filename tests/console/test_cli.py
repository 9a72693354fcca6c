"""The `outreach` command as a user runs it, on a real SQLite file: in this process through
`console.cli.main` (tests/cli.py), and as a real process where the process is the point (`python
-m console` starts, a reader that leaves early)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from queues.store.db import make_engine, session_factory, upgrade
from queues.store.models import AuditEvent, Pharmacy, User
from tests import cli
from tests.world import make_world

ROOT = Path(__file__).parents[2]


def outreach(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """`outreach ARGS` in this process (tests/cli.py): exit status, stdout, stderr."""
    return cli.run(*args, stdin=stdin, env=env, cwd=cwd)


def outreach_process(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """`python -m console ARGS`: a real process, for what only a process shows."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OUTREACH_DATABASE_URL", "OUTREACH_USER", "OUTREACH_PASSWORD")
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )


def test_help_lists_the_commands() -> None:
    result = outreach_process("--help")  # `python -m console` starts and exits 0
    assert result.returncode == 0
    for command in ("demo", "console", "db", "users", "queue"):
        assert command in result.stdout


def test_db_upgrade_then_users_add_reads_password_from_stdin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    assert outreach("db", "upgrade", "--database", url).returncode == 0
    engine = make_engine(url)
    with session_factory(engine).begin() as s:
        s.add(
            Pharmacy(
                code="FL1",
                name="Gulf Pharmacy",
                caller_id="+13055550100",
                callback_number="+13055550101",
                timezone="America/New_York",
                state="FL",
                opens_at=__import__("datetime").time(9),
                closes_at=__import__("datetime").time(18),
            )
        )
    # The site's first user is its admin, added without a sign-in (there is no one to sign in).
    first = outreach(
        "users", "add", "root", "--role", "admin", "--database", url, stdin="root-password-1\n"
    )
    assert first.returncode == 0, first.stderr
    assert "added admin root for every pharmacy" in first.stdout
    admin = {"OUTREACH_USER": "root", "OUTREACH_PASSWORD": "root-password-1"}
    result = outreach(
        "users",
        "add",
        "maria",
        "--role",
        "agent",
        "--pharmacy",
        "FL1",
        "--database",
        url,
        stdin="s3cret-enough\n",
        env=admin,
    )
    assert result.returncode == 0, result.stderr
    with session_factory(engine)() as s:
        root = s.scalar(select(User).where(User.username == "root"))
        user = s.scalar(select(User).where(User.username == "maria"))
        assert root is not None and user is not None and user.role == "agent"
        assert [p.code for p in user.pharmacies] == ["FL1"]
        assert user.password_hash.startswith("$argon2id$")
        added = s.scalars(select(AuditEvent).where(AuditEvent.action == "user_added")).all()
        # audited as the admin who added maria (the first admin as themselves)
        assert [(e.user_id, e.detail["added_user_id"]) for e in added] == [
            (root.id, root.id),
            (root.id, user.id),
        ]
    # An unknown pharmacy is named and nothing is written.
    bad = outreach(
        "users",
        "add",
        "tom",
        "--role",
        "agent",
        "--pharmacy",
        "ZZ9",
        "--database",
        url,
        stdin="s3cret-enough\n",
        env=admin,
    )
    assert bad.returncode != 0 and "ZZ9" in bad.stderr
    # Once a user exists, nobody adds another without signing in as an admin.
    anon = outreach(
        "users", "add", "evil", "--role", "admin", "--database", url, stdin="s3cret-enough\n"
    )
    assert anon.returncode == 1 and "sign in first" in anon.stderr
    assert "Traceback" not in anon.stderr
    agent = outreach(
        "users",
        "add",
        "evil",
        "--role",
        "admin",
        "--database",
        url,
        stdin="s3cret-enough\n",
        env={"OUTREACH_USER": "maria", "OUTREACH_PASSWORD": "s3cret-enough"},
    )
    assert agent.returncode == 1
    assert "maria is an agent; to add users you must be an admin" in agent.stderr
    with session_factory(engine)() as s:
        assert s.scalar(select(User).where(User.username.in_(["tom", "evil"]))) is None
    engine.dispose()


def test_the_first_user_of_a_site_must_be_an_admin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'first.db'}"
    assert outreach("db", "upgrade", "--database", url).returncode == 0  # a new site's database
    result = outreach(
        "users", "add", "ana", "--role", "agent", "--pharmacy", "X", "--database", url,
        stdin="s3cret-enough\n",
    )  # fmt: skip
    assert result.returncode == 1
    assert "the first user of a site must be an admin" in result.stderr


def test_queue_stats_json_counts_what_the_database_holds(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    url = f"sqlite:///{tmp_path / 'w.db'}"
    make_world(tmp_path, url, datetime.now(UTC), {"A": 1, "B": 2, "C": 3}).services.close()
    result = outreach("queue", "stats", "--json", "--database", url)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["pharmacies"] == 1 and stats["patients"] == 3
    assert stats["tasks_open"] == 3 and stats["tasks_claimed"] == 0
    assert stats["tasks_done"] == 0 and stats["attempts"] == 0


def test_unreachable_database_names_url_without_password() -> None:
    # The password comes from the environment (a URL on the command line may not hold one).
    url = "postgresql+psycopg://clerk@127.0.0.1:1/outreach"
    # a real process: exit status and stderr as the terminal gets them, no traceback there
    result = outreach_process(
        "queue", "stats", "--database", url, env={"OUTREACH_DATABASE_PASSWORD": "pw_must_not_show"}
    )
    assert result.returncode != 0
    assert "pw_must_not_show" not in result.stderr + result.stdout
    assert "127.0.0.1:1/outreach" in result.stderr and "Traceback" not in result.stderr


def test_a_password_on_the_command_line_is_refused_without_showing_it() -> None:
    url = "postgresql+psycopg://clerk:pw_must_not_show@127.0.0.1:1/outreach"
    result = outreach("queue", "stats", "--database", url)
    assert result.returncode != 0
    assert "pw_must_not_show" not in result.stderr + result.stdout
    assert "password may not be written here" in result.stderr


def test_unknown_config_key_stops_with_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[not_a_section]\nkey = 1\n")
    result = outreach(
        "queue",
        "stats",
        "--database",
        f"sqlite:///{tmp_path / 'x.db'}",
        env={"OUTREACH_CONFIG": str(bad)},
    )
    assert result.returncode != 0
    assert str(bad) in result.stderr and "not_a_section" in result.stderr


def test_migrations_are_idempotent_and_create_every_table(tmp_path: Path) -> None:
    from queues.store.models import Base

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    upgrade(engine)
    from sqlalchemy import inspect

    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    engine.dispose()


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    """`outreach queue stats | head -3`: head leaves after three lines; the command stops
    quietly instead of printing a BrokenPipeError traceback."""
    url = f"sqlite:///{tmp_path / 'site.db'}"
    assert outreach("db", "upgrade", "--database", url).returncode == 0
    from queues.store.db import transaction
    from tests.conftest import add_pharmacy

    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:  # a site without pharmacies is refused
        add_pharmacy(session)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if k != "OUTREACH_DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "queue", "stats", "--database", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the command writes a line
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141
    assert err == ""
