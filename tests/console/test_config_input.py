"""Bad config input: every mistake is a ConfigError naming the file and the key — never a
traceback — and secrets come from the environment or an owner-only file, never the config."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.cli import main
from console.config import RANGES, load_settings, setup_logging
from queues.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OUTREACH_DATABASE_URL", "OUTREACH_CONFIG", "OUTREACH_DATABASE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ("[queue]\nlease_seconds = 0\n", "queue.lease_seconds", "expected 30 to 3600, got 0"),
        ("[sip]\nport = 99999\n", "sip.port", "expected 1 to 65535, got 99999"),
        ("[ui]\nidle_lock_minutes = 0\n", "ui.idle_lock_minutes", "expected 1 to 30, got 0"),
        ("[ui]\nidle_lock_minutes = -1\n", "ui.idle_lock_minutes", "got -1"),
        ("[ui]\nidle_lock_minutes = 600\n", "ui.idle_lock_minutes", "got 600"),
        ('[ui]\ntheme = "no-such-theme"\n', "ui.theme", "unknown theme 'no-such-theme'"),
        ('[log]\nlevel = "LOUD"\n', "log.level", "expected one of DEBUG, INFO"),
        ('[database]\nurl = "not a url"\n', "database.url", "is not a database URL"),
        ('[database]\nurl = "mysql://u@h/db"\n', "database.url", "mysql:// is not supported"),
        (
            '[database]\nurl = "postgresql+psycopg://u:hunter2@h/db"\n',
            "database.url",
            "a password may not be written here",
        ),
        ('[sip]\npassword = "hunter2"\n', "sip.password", "may not be written in the config"),
        ('[auth]\ntotp_required_roles = ["boss"]\n', "auth.totp_required_roles", "'boss'"),
        ("[audit]\nretention_years = 1\n", "audit.retention_years", "expected 6 to 100"),
    ],
)
def test_a_value_out_of_range_or_unknown_names_file_and_key(
    tmp_path: Path, text: str, key: str, says: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value)
    assert err.value.key == key
    assert says in str(err.value)
    assert "hunter2" not in str(err.value)


def test_binary_bytes_and_a_directory_are_named(tmp_path: Path) -> None:
    binary = tmp_path / "config.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_settings(binary)
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(tmp_path)


def test_a_log_path_that_is_a_directory_is_named(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, f'[log]\npath = "{tmp_path}"\n'))
    with pytest.raises(ConfigError) as err:
        setup_logging(settings)
    assert err.value.key == "log.path" and "is a directory" in str(err.value)


def test_the_command_line_says_it_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for text in ('[log]\nlevel = "LOUD"\n', '[database]\nurl = "not a url"\n'):
        path = write(tmp_path, text)
        assert main(["queue", "stats", "--config", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"outreach: {path}: ") and "Traceback" not in err
    # A password on the command line would show in `ps`.
    assert main(["queue", "stats", "--database", "postgresql+psycopg://u:pw@127.0.0.1/x"]) == 1
    assert "--database: a password may not be written here" in capsys.readouterr().err


def test_secrets_come_from_the_environment_or_an_owner_only_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "db.pass"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    path = write(
        tmp_path,
        f'[database]\nurl = "postgresql+psycopg://outreach@db.internal/outreach"\n'
        f'password_file = "{secret}"\n',
    )
    with pytest.raises(ConfigError, match="can be read by others") as err:
        load_settings(path)
    assert err.value.key == "database.password_file"
    secret.chmod(0o600)
    assert ":s3cret@" in load_settings(path).database.url
    monkeypatch.setenv("OUTREACH_DATABASE_PASSWORD", "from-env")
    assert ":from-env@" in load_settings(path).database.url
    # The SIP password: the variable the config names.
    sip = write(tmp_path, '[sip]\nserver = "pbx.internal"\npassword_env = "MY_SIP_PW"\n')
    monkeypatch.setenv("MY_SIP_PW", "sip-secret")
    assert load_settings(sip).sip.password == "sip-secret"


def test_files_the_product_writes_are_for_its_user_only(tmp_path: Path) -> None:
    folder = tmp_path / "var"
    path = write(tmp_path, f'[log]\npath = "{folder / "outreach.log"}"\n')
    old = os.umask(0o022)
    try:
        setup_logging(load_settings(path))
        logging.getLogger("test").warning("a line")
    finally:
        os.umask(old)
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()
    assert (folder.stat().st_mode & 0o777) == 0o700
    assert ((folder / "outreach.log").stat().st_mode & 0o777) == 0o600


# -- fuzzing: whatever the file holds, a clear error or settings, never a traceback ------------

SECTIONS = {
    "database": ["url", "password_env", "password_file"],
    "queue": [k.split(".")[1] for k in RANGES if k.startswith("queue.")]
    + ["calling_window_start", "calling_window_end", "no_calls_on_sundays"],
    "ui": ["idle_lock_minutes", "lock_release_minutes", "theme", "keymap"],
    "log": ["level"],
    "sip": ["server", "port", "local_port", "password", "audio", "register_expires"],
    "auth": ["totp_required_roles"],
    "audit": ["retention_years"],
    "nonsense": ["x"],
}
SCALARS = (
    st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["sqlite:///x.db", "mysql://a@b/c", "textual-dark", "INFO", "08:00"])
)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


@st.composite
def documents(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), unique=True, max_size=4)):
        lines.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from(SECTIONS[section]), unique=True, max_size=3)):
            value = draw(SCALARS | st.lists(SCALARS, max_size=3))
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=documents())
def test_fuzzed_documents_give_settings_or_a_config_error(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    try:
        load_settings(path)
    except ConfigError as exc:
        assert str(path) in str(exc) or exc.path in ("environment", "command line")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_fuzzed_bytes_give_settings_or_a_config_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(raw)
    try:
        load_settings(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
