"""`outreach outbox deliver` as a user runs it: a real process, a real database (SQLite and
PostgreSQL), a real receiver on 127.0.0.1. Killed with SIGKILL in the middle of a send and run
again, it loses nothing and the receiver acts on each action once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from queues.auth import add_user
from queues.store.db import make_engine, reading, session_factory, transaction, upgrade
from queues.store.models import AuditEvent, FollowUpAction
from tests.outbox_receiver import KEY, running_receiver, seed_actions

ROOT = Path(__file__).parents[2]
# The claim of a killed deliverer runs out after 2 × (connect + 2 × timeout) = 9 s here; the
# read timeout must outlast the moment between the receiver taking the request and the kill.
CONFIG = """
[log]
path = "{log}"
[outbox]
connect_timeout_seconds = 0.5
timeout_seconds = 2.0
first_retry_seconds = 0.05
backoff_cap_seconds = 0.2
poll_seconds = 0.2
"""


def command(db_url: str, tmp_path: Path, *args: str) -> list[str]:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(log=tmp_path / "outreach.log"))
    return [
        sys.executable,
        "-m",
        "console",
        "outbox",
        "deliver",
        *args,
        "--database",
        db_url,
        "--config",
        str(config),
    ]


ADMIN, ADMIN_PASSWORD = "root", "root-password-1"


def add_admin(db_url: str) -> None:
    """The site's admin, whom the deliverer runs as (an admin's command: every pharmacy)."""
    engine = make_engine(db_url)
    upgrade(engine)
    with transaction(session_factory(engine)) as s:
        add_user(s, ADMIN, ADMIN_PASSWORD, "admin", [])
    engine.dispose()


def environment(key: str | None = KEY, signed_in: bool = True) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OUTREACH_OUTBOX_KEY", "OUTREACH_USER", "OUTREACH_PASSWORD")
    }
    env.pop("OUTREACH_DATABASE_URL", None)
    if key is not None:
        env["OUTREACH_OUTBOX_KEY"] = key
    if signed_in:
        env |= {"OUTREACH_USER": ADMIN, "OUTREACH_PASSWORD": ADMIN_PASSWORD}
    return env


def test_deliver_sends_what_is_due_and_ends_with_the_counts(db_url: str, tmp_path: Path) -> None:
    add_admin(db_url)
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    with running_receiver() as receiver:
        keys = seed_actions(sessions, receiver.url, 4)
        seed_actions(sessions, None, 1, code="TX2")  # no endpoint yet
        receiver.plan = {keys[0]: ["503"], keys[1]: ["404"]}
        done = subprocess.run(
            command(db_url, tmp_path, "--json"),
            env=environment(),
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
    with reading(sessions) as s:
        runs = s.scalars(select(AuditEvent).where(AuditEvent.action == "outbox_delivered")).all()
        admin_id = s.scalar(select(AuditEvent.user_id).where(AuditEvent.action == "login"))
    engine.dispose()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "delivered": 2,
        "retrying": 1,
        "dead": 1,
        "pending": 1,
    }
    assert receiver.bad_signatures == []
    assert [(r.user_id, r.detail["delivered"]) for r in runs] == [(admin_id, 2)]  # as the admin


def test_without_a_sign_in_nothing_is_sent(sqlite_url: str, tmp_path: Path) -> None:
    add_admin(sqlite_url)
    done = subprocess.run(
        [*command(sqlite_url, tmp_path), "--json"],
        env=environment(signed_in=False),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "outreach: sign in first: give --user NAME (or set OUTREACH_USER)\n"


def test_without_the_signing_key_nothing_is_sent_and_it_says_why(
    sqlite_url: str, tmp_path: Path
) -> None:
    add_admin(sqlite_url)
    done = subprocess.run(
        command(sqlite_url, tmp_path),
        env=environment(key=None),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("outreach: OUTREACH_OUTBOX_KEY is not set")
    assert "Traceback" not in done.stderr
    # A script asking for --json still gets what waits, with nothing delivered.
    asked = subprocess.run(
        [*command(sqlite_url, tmp_path), "--json"],
        env=environment(key=None),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert asked.returncode == 1
    last = json.loads(asked.stdout.strip().splitlines()[-1])
    assert last["delivered"] == 0 and set(last) == {"delivered", "retrying", "dead", "pending"}


def wait_for(ready: object, what: str, limit: float = 90.0) -> None:
    """Poll `ready()` until it holds; the limit only stops a broken run from hanging."""
    assert callable(ready)
    deadline = time.monotonic() + limit
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_midway_and_run_again_nothing_is_lost_and_nothing_is_doubled(
    db_url: str, tmp_path: Path
) -> None:
    add_admin(db_url)
    engine = make_engine(db_url)
    sessions = session_factory(engine)

    def delivered() -> int:
        with reading(sessions) as s:
            return int(
                s.scalar(select(func.count()).where(FollowUpAction.status == "delivered")) or 0
            )

    with running_receiver() as receiver:
        keys = seed_actions(sessions, receiver.url, 20)
        # The sixth is taken in by the pharmacy, and the sender is killed before the answer.
        receiver.plan = {keys[5]: ["hold"], keys[2]: ["500"], keys[9]: ["drop"]}
        first = subprocess.Popen(
            command(db_url, tmp_path, "--loop", "--json"),
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        try:
            assert receiver.holding.wait(90), "the deliverer never reached the sixth action"
            os.kill(first.pid, signal.SIGKILL)
            first.wait(30)
        finally:
            if first.poll() is None:
                first.kill()
            first.communicate()
        receiver.release.set()
        assert first.returncode == -signal.SIGKILL
        assert 0 < delivered() < 20  # killed midway

        second = subprocess.Popen(
            command(db_url, tmp_path, "--loop", "--json"),
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        try:
            wait_for(lambda: delivered() == 20, "every action delivered after the rerun")
            second.send_signal(signal.SIGTERM)
            out, err = second.communicate(timeout=60)
        finally:
            if second.poll() is None:
                second.kill()
    engine.dispose()
    assert second.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["retrying"] == summary["dead"] == summary["pending"] == 0
    assert receiver.delivered_once == set(keys)  # every action arrived...
    assert receiver.requests[keys[5]] == 2  # ...the one in flight at the kill twice...
    assert receiver.acted == dict.fromkeys(keys, 1)  # ...and acted on once (then a 409)
    assert receiver.bad_signatures == []
    assert receiver.overlaps == []
