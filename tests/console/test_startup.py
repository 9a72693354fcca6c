"""What an agent's console loads to start: on a database at the newest migration, with a SIP
account but no SRTP and no outbox key, neither Alembic, httpx, libsrtp nor the supervisor's floor
and reports are imported (together ~18 MiB a console would hold all day; bench/next_patient.py
measures the memory), nor the queue build (a supervisor's campaign controls rebuild queues) and
pyotp (accounts with a second factor only): ~0.45 MiB more. Without a SIP server, not the SIP
user agent either (console.softphone loads its errors, events and permit only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from queues.store.db import make_engine, upgrade

PROBE = """
import sys
from console.config import DatabaseSettings, LogSettings, Settings, SipSettings, UiSettings
from console.services.container import build_services
import console.app, console.screens.login, console.screens.workspace, console.screens.wrap_up

work = sys.argv[2]
settings = Settings(
    database=DatabaseSettings(url=sys.argv[1]),
    ui=UiSettings(drafts_path=work + "/drafts"),
    log=LogSettings(path=work + "/outreach.log"),
    sip=SipSettings(server="127.0.0.1", port=5060, audio=False),
)
services = build_services(settings)
assert services.outbox_courier() is None
services.close()
unwanted = (
    "alembic", "httpx", "pylibsrtp", "queues.reports", "console.services.floor",
    "queues.building.build", "pyotp",
)
print(" ".join(sorted(m for m in unwanted if m in sys.modules)))
"""


def test_an_agents_console_loads_no_alembic_httpx_libsrtp_or_floor_to_start(
    tmp_path: Path, sqlite_url: str
) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    engine.dispose()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no OUTREACH_OUTBOX_KEY
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, sqlite_url, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == []


MANUAL_DIAL_PROBE = """
import sys
from console.config import DatabaseSettings, LogSettings, Settings, UiSettings
from console.services.container import build_services
import console.app, console.screens.login, console.screens.workspace, console.screens.wrap_up

work = sys.argv[2]
settings = Settings(  # no [sip] server: the agent dials by hand
    database=DatabaseSettings(url=sys.argv[1]),
    ui=UiSettings(drafts_path=work + "/drafts"),
    log=LogSettings(path=work + "/outreach.log"),
)
services = build_services(settings)
assert services.phone_line(lambda event: None) is None
services.close()
print(" ".join(sorted(m for m in sys.modules if m.startswith("console.softphone"))))
"""


def test_a_manual_dial_console_loads_no_sip_stack(tmp_path: Path, sqlite_url: str) -> None:
    """Without a [sip] server the console draws the softphone's states and catches its error,
    but never loads the SIP user agent itself (~0.6 MiB traced, 1.6 MiB RSS at start)."""
    engine = make_engine(sqlite_url)
    upgrade(engine)
    engine.dispose()
    probe = subprocess.run(
        [sys.executable, "-c", MANUAL_DIAL_PROBE, sqlite_url, str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == [
        "console.softphone",
        "console.softphone.errors",
        "console.softphone.events",
        "console.softphone.permit",
    ]
