"""config.toml, read once into frozen, typed settings.

An unknown key or a value of the wrong type stops the program with the file, the key and what was
expected. OUTREACH_CONFIG names another file; OUTREACH_DATABASE_URL and `--database` override the URL.
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

from console.supervisor_settings import FloorSettings, ReportSettings
from queues.errors import ConfigError
from queues.imports.settings import ImportSettings
from queues.outbox.settings import OutboxSettings
from queues.settings import QueueSettings

DEFAULT_CONFIG = Path("config.toml")


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///var/outreach.db"


@dataclass(frozen=True)
class UiSettings:
    # Automatic logoff after idle time, 45 CFR 164.312(a)(2)(iii).
    idle_lock_minutes: int = 15
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
    password: str = ""
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


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    log: LogSettings = field(default_factory=LogSettings)
    sip: SipSettings = field(default_factory=SipSettings)
    floor: FloorSettings = field(default_factory=FloorSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    imports: ImportSettings = field(default_factory=ImportSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
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
        try:
            with open(chosen, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(source, "(file)", "the file does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, "(syntax)", str(exc)) from None
    settings: Settings = _build(Settings, data, source)
    url = database_url or os.environ.get("OUTREACH_DATABASE_URL")
    if url:
        settings = dataclasses.replace(settings, database=DatabaseSettings(url=url))
    return dataclasses.replace(settings, source=source)


def settings_from_args(config: str | None, database: str | None) -> Settings:
    return load_settings(Path(config) if config else None, database_url=database)


def setup_logging(settings: Settings) -> None:
    """Everything goes to the log file: never to the terminal under the TUI."""
    path = Path(settings.log.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log.level.upper())
