"""A whole shift leaves no patient name, birth date, phone number or drug name in any log, nor on
stderr: the console through Pilot with the log at DEBUG (a dial the line refuses, the database
away at Ready and at Save, a wrap-up saved), and the commands an operator runs (queue explain,
an import with a bad row, outbox deliver to a receiver answering 500 with patient data in its
body). Every log file and all stderr is then searched for every patient's first and last name,
birth date in the usual formats, phone numbers (E.164, national digits, written) and drug names."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from textual.widgets import TextArea

from console.app import OutreachApp
from console.cli import main
from console.config import LogSettings, SipSettings, setup_logging
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from console.services.container import Services
from queues.auth import add_user
from queues.store.db import transaction
from queues.store.models import Patient, Phone, Prescription
from tests.e2e.helpers import choose_disposition, login, press, settle, until
from tests.e2e.test_console_call import NOW, sign_in_and_take_patient
from tests.e2e.test_database_away import database_refusing
from tests.outbox_receiver import KEY, running_receiver, seed_actions
from tests.softphone.conftest import SippPeer, sipp  # noqa: F401 (the fixture)
from tests.world import PASSWORD, World, make_world

RUNOUTS = {"Alvarez": 1, "Brown": 3, "Chen": 5}
# A patient only an import file holds (its row is refused): their data must not leak either.
CSV_ONLY = {"first": "Rosalind", "last": "Delgado", "birth": "1961-07-19"}
CSV = (
    "mrn,first_name,last_name,birth_date,zip_code,state,language\n"
    "T0100,Maribel,Quintero,1958-02-11,75201,TX,en\n"
    f"T0101,{CSV_ONLY['first']},{CSV_ONLY['last']},{CSV_ONLY['birth'][:8]}40,75201,TX,en\n"
)
PHONES = "mrn,number,kind,rank\nT0000,+1214555100,mobile,0\n"  # a digit short: refused
CLI_CONFIG = """
[log]
path = "{log}"
level = "DEBUG"
[outbox]
connect_timeout_seconds = 1.0
timeout_seconds = 3.0
first_retry_seconds = 0.05
backoff_cap_seconds = 0.2
max_tries = 2
"""


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Callable[[World], Path]]:
    """Turn on the app's own logging (console.config.setup_logging) at DEBUG into the world's
    log file; pytest's handlers are put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def start(w: World) -> Path:
        settings = dataclasses.replace(
            w.store.settings,
            log=LogSettings(path=str(tmp_path / "outreach.log"), level="DEBUG"),
        )
        setup_logging(settings)
        return Path(settings.log.path)

    yield start
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def _phone_forms(number: str) -> set[str]:
    digits = re.sub(r"\D", "", number)
    national = digits[-10:]
    forms = {number, digits, national}
    if len(national) == 10:
        a, b, c = national[:3], national[3:6], national[6:]
        forms |= {f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"{a} {b} {c}"}
    return forms


def _date_forms(d: date) -> set[str]:
    return {
        d.isoformat(),
        f"{d:%m/%d/%Y}",
        f"{d.month}/{d.day}/{d.year}",
        f"{d:%Y%m%d}",
        f"{d:%d.%m.%Y}",
        repr(d),
        f"{d.year}, {d.month}, {d.day}",
    }


def forbidden(w: World) -> list[re.Pattern[str]]:
    """Every patient's health information in the database, and the import file's, as patterns."""
    words: set[str] = {CSV_ONLY["first"], CSV_ONLY["last"], "Maribel", "Quintero"}
    literal: set[str] = {CSV_ONLY["birth"], "1958-02-11", "+1214555100"}
    with w.store.sessions() as s:
        for p in s.scalars(select(Patient)):
            words |= {p.first_name, p.last_name}
            literal |= _date_forms(p.birth_date)
        for number in s.scalars(select(Phone.number)):
            literal |= _phone_forms(number)
        for rx in s.scalars(select(Prescription)):
            words |= {rx.drug_name, *(rx.drug_name.split()[:1]), rx.ingredient or ""}
    patterns = [re.compile(rf"(?<![\w]){re.escape(x)}(?![\w])") for x in sorted(words) if x]
    patterns += [re.compile(rf"(?<![\d]){re.escape(x)}(?![\d])") for x in sorted(literal)]
    # Drug names in any case ("LISINOPRIL", "lisinopril").
    with w.store.sessions() as s:
        drugs = {n.split()[0] for n in s.scalars(select(Prescription.drug_name))}
    patterns += [re.compile(re.escape(d), re.IGNORECASE) for d in sorted(drugs)]
    return patterns


def leaks(text: str, patterns: list[re.Pattern[str]]) -> list[str]:
    found = []
    for line in text.splitlines():
        for p in patterns:
            if p.search(line):
                found.append(f"{p.pattern!r} in: {line[:300]}")
    return found


def outreach(
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    url: str,
    user: str,
    password: str,
    *args: str,
) -> tuple[int, str]:
    """`outreach ARGS` as `user` (the CLI's own main, in this process: its logging set up from
    the config, at DEBUG); its exit status and stderr."""
    config = tmp_path / "cli.toml"
    config.write_text(CLI_CONFIG.format(log=tmp_path / "cli.log"))
    for name in [k for k in os.environ if k.startswith("OUTREACH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OUTREACH_USER", user)
    monkeypatch.setenv("OUTREACH_PASSWORD", password)
    monkeypatch.setenv("OUTREACH_OUTBOX_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    capfd.readouterr()
    rc = main([*args, "--database", url, "--config", str(config)])
    return rc, capfd.readouterr().err


@pytest.mark.sip
async def test_a_whole_shift_leaves_no_health_information_in_any_log(
    tmp_path: Path,
    pg_url: str,
    sipp: Callable[..., SippPeer],  # noqa: F811
    debug_log: Callable[[World], Path],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = make_world(tmp_path, pg_url, NOW, RUNOUTS)
    log = debug_log(w)
    # 1. A dial the line refuses (503): recorded by the console as a line failure.
    peer = sipp("uas_reject_503.xml")
    sip = SipSettings(server="127.0.0.1", port=peer.port, audio=False)
    store = dataclasses.replace(w.store, settings=dataclasses.replace(w.store.settings, sip=sip))
    app = OutreachApp(Services(store))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await sign_in_and_take_patient(pilot)
        await until(pilot, lambda: screen.softphone is not None, "the softphone")
        await pilot.press("d")
        await until(pilot, lambda: screen.offer is None, "the line failure to be recorded")
        await settle(pilot)
    # 2. By hand: the database away at Ready and at Save, then a wrap-up saved.
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        with database_refusing(pg_url):
            await press(pilot, "r")
        await press(pilot, "r")
        await press(pilot, "d")
        await press(pilot, "c")
        await press(pilot, "w")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        await choose_disposition(pilot, "completed")
        wrap.query_one("#notes", TextArea).text = "Refill picked up on Friday"
        await settle(pilot)
        with database_refusing(pg_url):
            await press(pilot, "ctrl+s")
            assert isinstance(app.screen, WrapUpScreen)  # not saved yet: kept
        await press(pilot, "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, WorkspaceScreen), "the save")
    shift_stderr = capfd.readouterr().err
    # 3. The operator's commands: explain, an import with bad rows, outbox deliver (500s).
    with transaction(w.store.sessions) as s:
        add_user(s, "root", "root-password-1", "admin", [])
    csv, phones = tmp_path / "patients.csv", tmp_path / "phones.csv"
    csv.write_text(CSV)
    phones.write_text(PHONES)
    stderr: list[str] = []
    with running_receiver() as receiver:
        keys = seed_actions(w.store.sessions, receiver.url, 2, code="TX2")
        receiver.plan = {k: ["500", "500", "500"] for k in keys}
        for user, password, *args in (
            ("ana", PASSWORD, "queue", "explain", str(w.patients["Alvarez"])),
            ("sue", PASSWORD, "import", "csv", "patients", str(csv), "--pharmacy", "TX1"),
            ("sue", PASSWORD, "import", "csv", "phones", str(phones), "--pharmacy", "TX1"),
            ("root", "root-password-1", "outbox", "deliver", "--json"),
        ):
            rc, err = outreach(monkeypatch, capfd, tmp_path, pg_url, user, password, *args)
            assert "Traceback" not in err, err
            stderr.append(f"$ outreach {' '.join(args)} (exit {rc})\n{err}")
        assert receiver.requests, "the receiver was never asked"
    patterns = forbidden(w)
    # The search finds what it looks for (a phone number, a name, a birth date, a drug).
    for planted in ("to 2145551000 ", "Pat Alvarez,", "born 04/01/1955", "LISINOPRIL"):
        assert leaks(planted, patterns), planted
    logs = sorted(p for p in tmp_path.rglob("*.log*") if not p.name.startswith("sipp_"))
    assert log in logs and (tmp_path / "cli.log") in logs
    assert "DEBUG" in log.read_text()  # the log really was at DEBUG
    found: list[str] = []
    for path in logs:
        found += [f"{path.name}: {x}" for x in leaks(path.read_text(errors="replace"), patterns)]
    for text in (shift_stderr, *stderr):
        found += [f"stderr: {x}" for x in leaks(text, patterns)]
    assert found == [], "\n".join(found[:40])
