"""config.toml: typed settings; mistakes stop with the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.config import load_settings
from queues.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_shipped_config_is_valid_and_matches_defaults() -> None:
    settings = load_settings(Path(__file__).parents[2] / "config.toml")
    assert settings.queue.lease_seconds == 300
    assert settings.sip.server == ""


def test_unknown_key_names_file_key_and_known_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "[queue]\nlease_secs = 30\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message and "queue.lease_secs" in message
    assert "lease_seconds" in message  # what they probably meant


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not_a_section"):
        load_settings(write(tmp_path, "[not_a_section]\nkey = 1\n"))


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"queue\.lease_seconds: expected an integer, got 'five'"):
        load_settings(write(tmp_path, '[queue]\nlease_seconds = "five"\n'))
    with pytest.raises(ConfigError, match="expected an integer, got True"):
        load_settings(write(tmp_path, "[sip]\nport = true\n"))


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[queue\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_settings(path)


def test_environment_and_flag_override_the_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///from-file.db"\n')
    monkeypatch.setenv("OUTREACH_CONFIG", str(path))
    assert load_settings().database.url == "sqlite:///from-file.db"
    monkeypatch.setenv("OUTREACH_DATABASE_URL", "sqlite:///from-env.db")
    assert load_settings().database.url == "sqlite:///from-env.db"
    assert load_settings(database_url="sqlite:///from-flag.db").database.url == (
        "sqlite:///from-flag.db"
    )
