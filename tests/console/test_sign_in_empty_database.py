"""A signed-in command pointed at a database that holds no user at all (one `db upgrade` just
made) says so and names the database, instead of the generic "check your user
name and password" that would send the user after their password. A database with users keeps
the generic refusal: it never tells whether the name or the password was wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.cli import run
from tests.world import PASSWORD, make_world

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def test_a_sign_in_on_a_database_without_users_names_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    # (A file that is not there at all is refused before any sign-in: test_missing_database.)
    assert run("db", "upgrade", "--database", url).returncode == 0
    result = run(
        "pharmacy", "list", "--database", url,
        env={"OUTREACH_USER": "admin", "OUTREACH_PASSWORD": "admin-demo-1"},
    )  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"outreach: the database {url} holds no users: "), result
    assert "users add NAME --role admin" in result.stderr


def test_a_wrong_password_on_a_database_with_users_stays_generic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    make_world(tmp_path, url, NOW, {"Able": 1}).store.close()
    for user, password in (("sue", PASSWORD + "x"), ("nobody", PASSWORD)):
        result = run(
            "pharmacy", "list", "--database", url,
            env={"OUTREACH_USER": user, "OUTREACH_PASSWORD": password},
        )  # fmt: skip
        assert result.returncode == 1
        assert result.stderr.startswith("outreach: Sign-in failed: check your user name"), result
        assert "holds no users" not in result.stderr
