"""config.toml, read once into frozen, typed settings.

An unknown key, a value of the wrong type or out of range, an unknown theme or log level, a URL the
product cannot open, or a secret written in the file stops the program with the file, the key and
what was expected. OUTREACH_CONFIG names another file; OUTREACH_DATABASE_URL and `--database` override the URL.
"""

from __future__ import annotations

import dataclasses
import logging
import logging.handlers
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.serve.settings import RANGES as SERVE_RANGES
from console.serve.settings import ServeSettings, check_serve
from console.supervisor_settings import FloorSettings, ReportSettings
from queues.building.settings import BuildSettings
from queues.errors import ConfigError
from queues.imports.settings import ImportSettings
from queues.outbox.settings import OutboxSettings
from queues.settings import QueueSettings

DEFAULT_CONFIG = Path("config.toml")


@dataclass(frozen=True)
class DatabaseSettings:
    # Never with a password: it comes from the variable `password_env` names, or `password_file`.
    url: str = "sqlite:///var/outreach.db"
    password_env: str = "OUTREACH_DATABASE_PASSWORD"
    password_file: str = ""


@dataclass(frozen=True)
class AuthSettings:
    # Roles that must sign in with a one-time code too (TOTP; `outreach users totp NAME`).
    totp_required_roles: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UiSettings:
    # Automatic logoff after idle time, 45 CFR 164.312(a)(2)(iii).
    idle_lock_minutes: int = 15
    # Locked this long, the console gives its patient back to the queue (the draft is kept).
    lock_release_minutes: int = 5
    theme: str = "textual-dark"
    # Wrap-ups not yet confirmed by the database are kept here (0600) until they are saved.
    drafts_path: str = "var/drafts"
    keymap: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LogSettings:
    path: str = "var/outreach.log"
    level: str = "INFO"


@dataclass(frozen=True)
class SipSettings:
    """Empty `server`: no SIP account, the console dials in manual mode."""

    server: str = ""
    port: int = 5060
    username: str = ""
    # Never in the file: the password comes from the variable `password_env` names, or from
    # `password_file` (readable by its owner only). `password` is what they gave.
    password: str = ""
    password_env: str = "OUTREACH_SIP_PASSWORD"
    password_file: str = ""
    registrar: str = ""
    local_ip: str = "127.0.0.1"
    local_port: int = 0
    dial_timeout_seconds: int = 45
    # The pharmacy's number shown to the patient (From and P-Asserted-Identity); a call may name
    # its own pharmacy's number, this is the default (and what `outreach call test` uses).
    caller_id: str = ""
    display_name: str = ""
    # Some PBXs authenticate with an id other than the extension (3CX "authentication ID").
    auth_username: str = ""
    register_expires: int = 300
    # false: never open a sound device (the console still signals calls, and says audio is off).
    audio: bool = True
    # udp | tcp | tls. tls verifies the server's certificate (and name) against tls_ca_file, or
    # the system's CAs when it is empty; a sips: URI always goes over TLS.
    transport: str = "udp"
    tls_ca_file: str = ""
    # off | optional (SRTP offered, plain RTP taken) | required (SRTP keyed by SDES or no call).
    srtp: str = "off"
    # Where the pharmacy's number goes: p-asserted-identity | remote-party-id (From stays the
    # account's user, which a proxy authenticates) | from-user (a trunk that takes it in From).
    caller_id_mode: str = "p-asserted-identity"


@dataclass(frozen=True)
class AuditSettings:
    # How long audit rows are kept at the least (HIPAA's six years, 45 CFR 164.316(b)(2)).
    retention_years: int = 6


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    build: BuildSettings = field(default_factory=BuildSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    log: LogSettings = field(default_factory=LogSettings)
    sip: SipSettings = field(default_factory=SipSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    floor: FloorSettings = field(default_factory=FloorSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    imports: ImportSettings = field(default_factory=ImportSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    source: str = field(default="(defaults)", compare=False)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _describe(tp: Any) -> str:
    if tp in _TYPE_NAMES:
        return _TYPE_NAMES[tp]
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return f"a list of {_describe(typing.get_args(tp)[0])}s"
    if origin is dict:
        return f"a table of {_describe(typing.get_args(tp)[1])}s"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp))


def _check(value: Any, tp: Any, path: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(tp):
            try:
                return _check(value, arm, path, key)
            except ConfigError:
                continue
        raise ConfigError(path, key, f"expected {_describe(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ConfigError(path, key, f"expected a table [{key}], got {value!r}")
        return _build(tp, value, path, key + ".")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, key, f"expected {_describe(tp)}, got {value!r}")
        _, vt = typing.get_args(tp)
        return {k: _check(v, vt, path, f"{key}.{k}") for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(path, key, f"expected {_describe(tp)}, got {value!r}")
        (it, *_) = typing.get_args(tp)
        items = [_check(v, it, path, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is type(None):
        if value is not None:
            raise ConfigError(path, key, "expected nothing")
        return None
    # bool is an int in Python; a config "port = true" is still a mistake.
    ok = isinstance(value, tp) and not (tp in (int, float) and isinstance(value, bool))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ConfigError(path, key, f"expected {_describe(tp)}, got {value!r}")
    return value


def _build(cls: type[Any], data: dict[str, Any], path: str, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(path, prefix + key, f"unknown key; expected one of: {known}")
        kwargs[key] = _check(value, hints[key], path, prefix + key)
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a settings class's own check (queue times) names no file
        raise ConfigError(path, exc.key, exc.expected) from None


def load_settings(path: Path | None = None, *, database_url: str | None = None) -> Settings:
    """Settings from `path` (or OUTREACH_CONFIG, or ./config.toml when it exists)."""
    env_path = os.environ.get("OUTREACH_CONFIG")
    chosen = path or (Path(env_path) if env_path else None)
    data: dict[str, Any] = {}
    source = "(defaults)"
    if chosen is None and DEFAULT_CONFIG.exists():
        chosen = DEFAULT_CONFIG
    if chosen is not None:
        source = str(chosen)
        data = _read_toml(chosen, source)
    settings: Settings = _build(Settings, data, source)
    _check_values(settings, source)
    database = settings.database
    if database.url != DatabaseSettings.url:
        _check_url(database.url, source, "database.url", in_file=True)
    if os.environ.get("OUTREACH_DATABASE_URL"):
        url = os.environ["OUTREACH_DATABASE_URL"]
        _check_url(url, "environment", "OUTREACH_DATABASE_URL", in_file=False)
        database = dataclasses.replace(database, url=url)
    if database_url:
        _check_url(database_url, "command line", "--database", in_file=True)
        database = dataclasses.replace(database, url=database_url)
    database = dataclasses.replace(database, url=_with_password(database, source))
    sip = settings.sip
    if sip.password:
        raise ConfigError(
            source,
            "sip.password",
            "a password may not be written in the config: put it in the variable "
            f"{sip.password_env} (sip.password_env) or a file only you can read (sip.password_file)",
        )
    if sip.server:
        secret = read_secret(sip.password_env, sip.password_file, source, "sip.password_file")
        sip = dataclasses.replace(sip, password=secret or "")
    return dataclasses.replace(settings, database=database, sip=sip, source=source)


def _read_toml(chosen: Path, source: str) -> dict[str, Any]:
    try:
        raw = chosen.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, "(file)", "the file does not exist") from None
    except IsADirectoryError:
        raise ConfigError(source, "(file)", "is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(source, "(file)", f"cannot be read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            source, "(file)", f"is not UTF-8 text (byte {exc.start} cannot be read)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc)) from None


# Where a value is sensible (inclusive). The lock cannot be switched off: it has a floor.
RANGES: dict[str, tuple[int, int]] = {
    "queue.lease_seconds": (30, 3600),
    "queue.max_attempts": (1, 50),
    "queue.refill_window_days": (0, 90),
    "queue.pre_sync_days": (0, 30),
    "queue.callback_grace_minutes": (0, 1440),
    "queue.daily_attempt_cap": (1, 10),
    "queue.weekly_attempt_cap": (1, 50),
    "queue.same_subject_cap_24h": (1, 10),
    "queue.no_answer_retry_hours": (0, 168),
    "queue.no_answer_max_attempts": (1, 50),
    "queue.busy_retry_minutes": (1, 1440),
    "ui.idle_lock_minutes": (1, 30),
    "ui.lock_release_minutes": (1, 60),
    "sip.port": (1, 65535),
    "sip.local_port": (0, 65535),
    "sip.dial_timeout_seconds": (5, 300),
    "sip.register_expires": (60, 86400),
    "audit.retention_years": (6, 100),
    **SERVE_RANGES,
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _check_values(settings: Settings, source: str) -> None:
    for key, (low, high) in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(settings, section), name)
        if not low <= value <= high:
            raise ConfigError(source, key, f"expected {low} to {high}, got {value}")
    for key, value, allowed in (
        ("sip.transport", settings.sip.transport, ("udp", "tcp", "tls")),
        ("sip.srtp", settings.sip.srtp, ("off", "optional", "required")),
        (
            "sip.caller_id_mode",
            settings.sip.caller_id_mode,
            ("p-asserted-identity", "remote-party-id", "from-user"),
        ),
    ):
        if value not in allowed:
            raise ConfigError(source, key, f"expected one of {', '.join(allowed)}, got {value!r}")
    check_serve(settings.serve, source)
    ca = settings.sip.tls_ca_file
    if ca and not Path(ca).is_file():
        raise ConfigError(source, "sip.tls_ca_file", f"no such file: {ca}")
    if settings.log.level.upper() not in LOG_LEVELS:
        raise ConfigError(
            source,
            "log.level",
            f"expected one of {', '.join(LOG_LEVELS)}, got {settings.log.level!r}",
        )
    for key, value in (
        ("log.path", settings.log.path),
        ("ui.drafts_path", settings.ui.drafts_path),
    ):
        if not value.strip() or "\0" in value:
            raise ConfigError(source, key, f"expected a file path, got {value!r}")
    from textual.theme import BUILTIN_THEMES  # only when a command runs, never for --help

    if settings.ui.theme not in BUILTIN_THEMES:
        raise ConfigError(
            source,
            "ui.theme",
            f"unknown theme {settings.ui.theme!r}; expected one of {', '.join(sorted(BUILTIN_THEMES))}",
        )
    from queues.views.user import ROLES

    for role in settings.auth.totp_required_roles:
        if role not in ROLES:
            raise ConfigError(
                source, "auth.totp_required_roles", f"{role!r} is not one of {', '.join(ROLES)}"
            )


_SCHEMES = ("sqlite", "postgresql")


def _check_url(url: str, source: str, key: str, *, in_file: bool) -> None:
    """A database URL the product can open: sqlite:///FILE or postgresql+psycopg://HOST/NAME; a
    password in it only where no one else can read it (the environment)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        shown = url.split(":", 1)[0] if ":" in url else url
        raise ConfigError(
            source,
            key,
            f"{shown[:40]!r} is not a database URL; expected sqlite:///FILE or "
            "postgresql+psycopg://USER@HOST:5432/NAME",
        ) from None
    if parsed.get_backend_name() not in _SCHEMES or parsed.get_driver_name() not in (
        "pysqlite",
        "psycopg",
    ):
        raise ConfigError(
            source,
            key,
            f"{parsed.drivername}:// is not supported; expected sqlite:///FILE or "
            "postgresql+psycopg://USER@HOST:5432/NAME",
        )
    if parsed.get_backend_name() == "sqlite" and not parsed.database:
        raise ConfigError(source, key, "expected sqlite:///FILE (a file, not memory)")
    if in_file and parsed.password:
        raise ConfigError(
            source,
            key,
            "a password may not be written here (it shows in `ps` and in files others read): "
            "put it in the variable database.password_env names (OUTREACH_DATABASE_PASSWORD by "
            "default) or a file only you can read (database.password_file)",
        )


def _with_password(database: DatabaseSettings, source: str) -> str:
    """The URL with the password from the environment or the owner-only file, if one is set."""
    secret = read_secret(
        database.password_env, database.password_file, source, "database.password_file"
    )
    if not secret or not database.url.startswith("postgresql"):
        return database.url
    from sqlalchemy.engine import make_url

    parsed = make_url(database.url)
    if parsed.password:
        return database.url
    return parsed.set(password=secret).render_as_string(hide_password=False)


def read_secret(env: str, path: str, source: str, key: str) -> str | None:
    """A secret from the environment variable `env`, else from the file at `path` — which must
    be readable by its owner only (0600 or 0400), as ssh insists for its keys."""
    value = os.environ.get(env) if env else None
    if value:
        return value
    if not path:
        return None
    try:
        st = os.stat(path)
        if st.st_mode & 0o077:
            raise ConfigError(
                source,
                key,
                f"{path} can be read by others (mode {st.st_mode & 0o777:o}): "
                f"run `chmod 600 {path}`",
            )
        with open(path, encoding="utf-8") as fh:
            return fh.readline().strip()
    except ConfigError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(source, key, f"cannot read {path}: {why}") from None


def settings_from_args(config: str | None, database: str | None) -> Settings:
    return load_settings(Path(config) if config else None, database_url=database)


def private_files() -> None:
    """Files the product writes from now on (database, log, drafts, reports) are 0600, its new
    folders 0700: what they hold is for the user the product runs as."""
    os.umask(0o077)


def private_folder(path: Path) -> None:
    """Make `path` (and its missing parents) a folder only its owner can enter."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid == os.getuid():
        path.chmod(0o700)


def setup_logging(settings: Settings) -> None:
    """Everything goes to the log file: never to the terminal under the TUI."""
    path = Path(settings.log.path)
    try:
        private_folder(path.parent)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3)
        path.chmod(0o600)
    except OSError as exc:
        why = "is a directory" if path.is_dir() else (exc.strerror or type(exc).__name__)
        raise ConfigError(
            settings.source, "log.path", f"cannot write the log {path}: {why}"
        ) from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log.level.upper())
