"""Access on the command line: every command that reads or changes patient data, users or
pharmacies signs a user in, acts only on that user's pharmacies (an admin's: every one), and is
audited as them. One database for the module: pharmacy TX1 (agents ana and ben, supervisor sue,
patients Able and Baker) and pharmacy OK1 (agent bo, supervisor ola, patient Other), and an
admin, root, assigned to none. The commands run in this process (console.cli.main)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from console.cli import main
from queues.auth import hash_password
from queues.store.db import make_engine, session_factory, transaction
from queues.store.models import AuditEvent, Patient, Pharmacy, User
from tests.world import PASSWORD, _patient, make_world

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # 10:00 in Dallas and Oklahoma City
OTHER_MRN = "T0007"  # OK1's patient; TX1's are T0000 and T0001
FIXTURE = Path(__file__).parents[1] / "fixtures" / "fhir-bulk-10-patients"
SIGN_IN_FIRST = "outreach: sign in first: give --user NAME (or set OUTREACH_USER)\n"


@dataclass(frozen=True)
class Site:
    url: str
    folder: Path
    sessions: sessionmaker[Session]
    able: int  # TX1
    other: int  # OK1

    def user_id(self, name: str) -> int:
        with self.sessions() as s:
            found = s.scalar(select(User.id).where(User.username == name))
        assert found is not None
        return found

    def audit(self, action: str) -> list[AuditEvent]:
        with self.sessions() as s:
            query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            return list(s.scalars(query))

    def count(self, model: type[Pharmacy] | type[User] | type[Patient]) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("access")
    url = f"sqlite:///{folder / 'site.db'}"
    world = make_world(folder, url, NOW, {"Able": 1, "Baker": 3})
    world.services.close()
    engine = make_engine(url)
    sessions = session_factory(engine)
    hashed = hash_password(PASSWORD)
    with transaction(sessions) as s:
        ok1 = Pharmacy(
            code="OK1",
            name="Sooner Pharmacy",
            caller_id="+14055550100",
            callback_number="+14055550101",
            timezone="America/Chicago",
            state="OK",
            opens_at=time(8),
            closes_at=time(20),
        )
        s.add(ok1)
        s.flush()
        other = _patient(s, ok1.id, 7, "Other", NOW.date(), 2)
        for name, role, pharmacies in (
            ("bo", "agent", [ok1]),
            ("ola", "supervisor", [ok1]),
            ("root", "admin", []),
        ):
            s.add(
                User(
                    username=name,
                    display_name=name.title(),
                    role=role,
                    password_hash=hashed,
                    pharmacies=pharmacies,
                )
            )
    yield Site(url, folder, sessions, world.patients["Able"], other)
    engine.dispose()


@pytest.fixture
def run(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Runner]:
    monkeypatch.chdir(site.folder)  # var/outreach.log lands in the module's folder
    monkeypatch.delenv("OUTREACH_DATABASE_URL", raising=False)
    yield Runner(site, monkeypatch, capsys)


class Runner:
    """`outreach ARGS --database SITE` as `user` (None: nobody signed in)."""

    def __init__(
        self, site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.site, self.monkeypatch, self.capsys = site, monkeypatch, capsys

    def __call__(self, user: str | None, *args: str, stdin: str = "q\n") -> tuple[int, str, str]:
        import io

        if user is None:
            self.monkeypatch.delenv("OUTREACH_USER", raising=False)
        else:
            self.monkeypatch.setenv("OUTREACH_USER", user)
        self.monkeypatch.setenv("OUTREACH_PASSWORD", PASSWORD)
        self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        self.capsys.readouterr()
        rc = main([*args, "--database", self.site.url])
        out, err = self.capsys.readouterr()
        return rc, out, err


def period() -> tuple[str, ...]:
    return ("--from", "2026-11-01", "--to", "2026-12-01")


def patients_csv(folder: Path, mrn: str) -> Path:
    path = folder / f"patients-{mrn}.csv"
    path.write_text(
        "mrn,first_name,last_name,birth_date,zip_code,state\n"
        f"{mrn},Sam,Sample,1950-01-02,73102,OK\n",
        encoding="utf-8",
    )
    return path


def every_guarded_command(site: Site) -> list[tuple[str, ...]]:
    csv = str(patients_csv(site.folder, "N0001"))
    return [
        ("queue", "explain", str(site.able)),
        ("report", "--pharmacy", "all", *period(), "--format", "csv"),
        ("import", "csv", "patients", csv, "--pharmacy", "TX1"),
        ("import", "fhir", str(FIXTURE), "--pharmacy", "TX1"),
        ("pharmacy", "add", "ZZ1", "--name", "Z", "--timezone", "America/Chicago",
         "--caller-id", "+13165550100"),
        ("pharmacy", "set", "TX1", "--priority", "3"),
        ("pharmacy", "list"),
        ("outbox", "deliver"),
        ("users", "add", "evil", "--role", "admin"),
        ("users", "totp", "ana"),
        ("scripts", "try", "refill_reminder", "--patient", str(site.able)),
        ("audit", "verify"),
        ("audit", "export", "--from", "2026-01-01", "--to", "2026-12-31"),
        ("audit", "purge", "--dry-run"),
    ]  # fmt: skip


def test_every_guarded_command_refuses_without_a_sign_in(site: Site, run: Runner) -> None:
    before = (site.count(Pharmacy), site.count(User), site.count(Patient))
    for args in every_guarded_command(site):
        rc, out, err = run(None, *args, stdin="s3cret-enough\n")
        assert (rc, out, err) == (1, "", SIGN_IN_FIRST), args
    assert (site.count(Pharmacy), site.count(User), site.count(Patient)) == before


def test_without_a_sign_in_only_the_exceptions_run(site: Site, run: Runner) -> None:
    rc, out, _ = run(None, "queue", "stats", "--json")
    assert rc == 0 and '"patients": 3' in out  # counts only, every pharmacy
    rc, out, _ = run(None, "db", "upgrade")
    assert rc == 0
    rc, out, _ = run(None, "scripts", "try", "refill_reminder")  # the synthetic sample patient
    assert rc == 0 and "Answers:" in out
    rc, out, _ = run(None, "queue", "build", "--now", NOW.isoformat())  # the scheduled rebuild
    assert rc == 0 and "tasks due" in out
    built = site.audit("queue_built")[-1]
    assert built.user_id is None and built.detail["unattended"] is True
    assert built.detail["pharmacies"] == "all"


def test_an_agent_explains_their_own_patient_and_never_another_pharmacys(
    site: Site, run: Runner
) -> None:
    rc, out, err = run("ana", "queue", "explain", str(site.able))
    assert rc == 0, err
    assert out.startswith(f"patient {site.able} (MRN T0000) at TX1")
    for key in (str(site.other), OTHER_MRN):
        rc, out, err = run("ana", "queue", "explain", key, "--json")
        assert (rc, out) == (1, "")
        assert err == (
            f"outreach: no patient {key!r} in your pharmacies (TX1); give the patient id or the MRN\n"
        )
    rc, out, err = run("bo", "queue", "explain", OTHER_MRN)  # OK1's own agent
    assert rc == 0 and f"(MRN {OTHER_MRN}) at OK1" in out, err
    rc, out, err = run("root", "queue", "explain", OTHER_MRN)  # an admin: every pharmacy
    assert rc == 0 and "at OK1" in out, err
    views = [(e.user_id, e.patient_id) for e in site.audit("explain")][-3:]
    assert views == [
        (site.user_id("ana"), site.able),
        (site.user_id("bo"), site.other),
        (site.user_id("root"), site.other),
    ]


def test_an_agent_tries_a_script_on_their_own_patient_only(site: Site, run: Runner) -> None:
    rc, out, err = run("ana", "scripts", "try", "refill_reminder", "--patient", str(site.other))
    assert (rc, out) == (1, "")
    assert err == f"outreach: patient {site.other} is not in your pharmacies\n"
    rc, out, err = run("ana", "scripts", "try", "refill_reminder", "--patient", str(site.able))
    assert rc == 0 and "Answers:" in out, err
    view = site.audit("view_patient")[-1]
    assert (view.user_id, view.patient_id) == (site.user_id("ana"), site.able)


def test_reports_are_a_supervisors_for_their_own_pharmacies(site: Site, run: Runner) -> None:
    out_file = site.folder / "report.csv"
    base = ("report", *period(), "--format", "csv", "--out", str(out_file))
    rc, _, err = run("ana", *base, "--pharmacy", "TX1")
    assert rc == 1 and err == "outreach: Only supervisors and admins can run reports.\n"
    rc, _, err = run("sue", *base, "--pharmacy", "OK1")
    assert rc == 1 and err == "outreach: sue is not assigned to pharmacy OK1.\n"
    assert not out_file.exists()
    rc, _, err = run("sue", *base, "--pharmacy", "all")  # all of hers
    assert rc == 0, err
    assert {row.split(",")[0] for row in out_file.read_text().splitlines()[1:]} == {"TX1"}
    rc, _, err = run("root", *base, "--pharmacy", "all")  # an admin assigned to none: every one
    assert rc == 0, err
    assert {row.split(",")[0] for row in out_file.read_text().splitlines()[1:]} == {"OK1", "TX1"}
    exports = [(e.user_id, e.detail["by"]) for e in site.audit("export")][-2:]
    assert exports == [(site.user_id("sue"), "sue"), (site.user_id("root"), "root")]
    refused = [e.user_id for e in site.audit("export_refused")][-2:]
    assert refused == [site.user_id("ana"), site.user_id("sue")]


def test_imports_are_an_admins_or_the_pharmacys_supervisors(site: Site, run: Runner) -> None:
    csv = str(patients_csv(site.folder, "N0002"))
    before = site.count(Patient)
    rc, out, err = run("ana", "import", "csv", "patients", csv, "--pharmacy", "TX1")
    assert (rc, out) == (1, "")
    assert err == "outreach: ana is an agent; to import data you must be a supervisor or an admin\n"
    rc, out, err = run("sue", "import", "csv", "patients", csv, "--pharmacy", "OK1")
    assert (rc, out, err) == (1, "", "outreach: sue is not assigned to pharmacy OK1\n")
    rc, out, err = run("sue", "import", "fhir", str(FIXTURE), "--pharmacy", "OK1")
    assert (rc, out, err) == (1, "", "outreach: sue is not assigned to pharmacy OK1\n")
    assert site.count(Patient) == before
    rc, out, err = run("ola", "import", "csv", "patients", csv, "--pharmacy", "OK1")
    assert rc == 0, err
    assert site.count(Patient) == before + 1
    done = site.audit("data_imported")[-1]
    assert done.user_id == site.user_id("ola")
    assert done.detail == {
        "pharmacy": "OK1",
        "what": "csv patients",
        "patients_created": 1,
        "patients_updated": 0,
        "rejected": 0,
    }


def test_pharmacies_are_an_admins_and_a_new_one_is_theirs_at_once(site: Site, run: Runner) -> None:
    add = ("pharmacy", "add", "NM1", "--name", "Land of Enchantment Rx",
           "--timezone", "America/Denver", "--caller-id", "+15055550100")  # fmt: skip
    rc, _, err = run("sue", *add)
    assert (rc, err) == (
        1,
        "outreach: sue is a supervisor; to add pharmacies you must be an admin\n",
    )
    rc, _, err = run("sue", "pharmacy", "set", "TX1", "--priority", "5")
    assert rc == 1 and "to change pharmacies you must be an admin" in err
    rc, _, err = run("ana", "pharmacy", "list")
    assert rc == 1 and "to list pharmacies you must be a supervisor or an admin" in err
    rc, out, err = run("sue", "pharmacy", "list", "--json")
    assert rc == 0 and '"code": "TX1"' in out and "OK1" not in out, err
    rc, _, err = run("root", *add)
    assert rc == 0, err
    rc, _, err = run("root", "pharmacy", "set", "NM1", "--priority", "1")
    assert rc == 0, err
    csv = str(patients_csv(site.folder, "N0003"))
    rc, _, err = run("root", "import", "csv", "patients", csv, "--pharmacy", "NM1")
    assert rc == 0, err  # an admin reaches the pharmacy nobody is assigned to yet
    root = site.user_id("root")
    assert [(e.user_id, e.detail["pharmacy"]) for e in site.audit("pharmacy_added")] == [
        (root, "NM1")
    ]
    changed = site.audit("pharmacy_changed")[-1]
    assert (changed.user_id, changed.detail) == (root, {"pharmacy": "NM1", "set": ["priority"]})


def test_a_supervisors_queue_build_is_theirs_and_audited(site: Site, run: Runner) -> None:
    rc, _, err = run("ana", "queue", "build", "--now", NOW.isoformat())
    assert rc == 1
    assert (
        err
        == "outreach: ana is an agent; to build the queues you must be a supervisor or an admin\n"
    )
    rc, out, err = run("sue", "queue", "build", "--now", NOW.isoformat())
    assert rc == 0 and "for 2 patients" in out, err  # TX1's two, not OK1's
    built = site.audit("queue_built")[-1]
    assert built.user_id == site.user_id("sue") and built.detail["pharmacies"] == ["TX1"]


def test_users_are_added_by_an_admin_only(site: Site, run: Runner) -> None:
    rc, _, err = run("sue", "users", "add", "eve", "--role", "agent", "--pharmacy", "TX1")
    assert (rc, err) == (1, "outreach: sue is a supervisor; to add users you must be an admin\n")
    rc, out, err = run(
        "root", "users", "add", "eve", "--role", "agent", "--pharmacy", "OK1",
        stdin="eve-password-1\n",
    )  # fmt: skip
    assert rc == 0 and out == "added agent eve for OK1\n", err
    added = site.audit("user_added")[-1]
    assert added.user_id == site.user_id("root")
    assert added.detail["added_user_id"] == site.user_id("eve")
    rc, _, err = run("root", "users", "add", "fay", "--role", "agent")
    assert rc == 1 and "--pharmacy: agents work for at least one pharmacy" in err


def test_a_wrong_password_is_refused_and_nothing_is_shown(site: Site, run: Runner) -> None:
    run.monkeypatch.setenv("OUTREACH_USER", "ana")
    run.monkeypatch.setenv("OUTREACH_PASSWORD", "not-the-password")
    run.capsys.readouterr()
    rc = main(["queue", "explain", str(site.able), "--database", site.url])
    out, err = run.capsys.readouterr()
    assert (rc, out) == (1, "")
    assert err.startswith("outreach: Sign-in failed") and err.count("\n") == 1


def test_an_mrn_is_looked_up_in_the_users_pharmacies_only(site: Site, run: Runner) -> None:
    """Each pharmacy numbers its own patients: OK1 gets a T0000 too."""
    with transaction(site.sessions) as s:
        ok1 = s.scalar(select(Pharmacy.id).where(Pharmacy.code == "OK1"))
        assert ok1 is not None
        twin = _patient(s, ok1, 0, "Twin", NOW.date(), 2)
    rc, out, err = run("ana", "queue", "explain", "T0000")  # TX1's: OK1's twin is out of sight
    assert rc == 0 and out.startswith(f"patient {site.able} (MRN T0000) at TX1"), err
    rc, out, err = run("root", "queue", "explain", "T0000")  # both are an admin's
    assert (rc, out) == (1, "")
    assert err == (
        f"outreach: MRN 'T0000' names 2 patients (ids {site.able}, {twin}); give the patient id\n"
    )
