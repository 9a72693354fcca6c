"""`outreach audit verify|export` as an admin runs them (in this process, tests/cli.py), signed in,
on an SQLite file and on PostgreSQL; the chain tampered with as an attacker would (guards dropped
for the edit)."""

from __future__ import annotations

import csv
import io
import json
import stat
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from queues.audit import record
from queues.auth import hash_password
from queues.store.db import transaction
from queues.store.models import AuditEvent, Pharmacy, User
from tests.cli import cheap_passwords
from tests.conftest import add_pharmacy
from tests.console.test_cli import outreach
from tests.queues.test_audit_chain import _drop_guards, _put_guards_back

ADMIN_PASSWORD = "admin-test-pw-1"
AGENT_PASSWORD = "agent-test-pw-1"


@dataclass(frozen=True)
class Site:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    admin_id: int

    def run(
        self, *args: str, user: str = "ada", password: str = ADMIN_PASSWORD, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return outreach(
            *args,
            "--database",
            self.url,
            "--user",
            user,
            env={"OUTREACH_PASSWORD": password, **env},
        )

    def audit_rows(self, action: str) -> list[AuditEvent]:
        with self.sessions() as s:
            return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def make_site(db_url: str, engine: Engine, sessions: sessionmaker[Session]) -> Site:
    with sessions.begin() as s:
        add_pharmacy(s)
        pharmacies = list(s.scalars(select(Pharmacy)))
        admin = User(
            username="ada",
            display_name="Ada Admin",
            role="admin",
            password_hash=hash_password(ADMIN_PASSWORD),
            pharmacies=pharmacies,
        )
        agent = User(
            username="al",
            display_name="Al Agent",
            role="agent",
            password_hash=hash_password(AGENT_PASSWORD),
            pharmacies=pharmacies,
        )
        s.add_all([admin, agent])
        s.flush()
        admin_id = admin.id
    for k in range(5):
        with transaction(sessions) as session:
            record(session, "view_patient", user_id=admin_id, patient_id=k, detail={"k": k})
    return Site(db_url, engine, sessions, admin_id)


@pytest.fixture
def site(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> Site:
    cheap_passwords(monkeypatch)  # what is tested is the audit chain, not the hash
    return make_site(db_url, engine, sessions)


def last_json(stdout: str) -> dict[str, object]:
    found: dict[str, object] = json.loads(stdout.strip().splitlines()[-1])
    return found


def test_verify_a_clean_chain_exits_0_and_is_audited(site: Site) -> None:
    run = site.run("audit", "verify", "--json")
    assert run.returncode == 0, run.stderr
    assert "audit chain intact" in run.stdout and "head: seq" in run.stdout
    report = last_json(run.stdout)
    assert report["intact"] is True and report["problem"] is None
    [verified] = site.audit_rows("audit_verified")
    assert verified.user_id == site.admin_id and verified.detail["intact"] is True


def test_verify_names_the_edited_row_and_exits_1(site: Site) -> None:
    with site.sessions() as s:
        victim = s.scalars(select(AuditEvent).order_by(AuditEvent.seq).offset(2)).first()
        assert victim is not None
        victim_id, victim_seq = victim.id, victim.seq
    _drop_guards(site.engine)
    with site.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET user_id = 999 WHERE id = :id"), {"id": victim_id}
        )
    _put_guards_back(site.engine)
    run = site.run("audit", "verify", "--json")
    assert run.returncode == 1, run.stderr
    assert f"audit chain BROKEN: audit row {victim_id} (seq {victim_seq}) was edited" in run.stdout
    problem = last_json(run.stdout)["problem"]
    assert isinstance(problem, dict)
    assert (problem["kind"], problem["row_id"], problem["seq"]) == ("edited", victim_id, victim_seq)


def test_verify_refuses_without_sign_in_and_for_an_agent(site: Site) -> None:
    run = outreach("audit", "verify", "--database", site.url, env={"OUTREACH_USER": ""})
    assert run.returncode == 1 and "sign in first" in run.stderr
    run = site.run("audit", "verify", user="al", password=AGENT_PASSWORD)
    assert run.returncode == 1
    assert "al is an agent; to verify the audit log you must be an admin" in run.stderr
    run = site.run("audit", "verify", password="wrong")
    assert run.returncode == 1 and "Sign-in failed" in run.stderr
    assert "Traceback" not in run.stderr
    assert site.audit_rows("audit_verified") == []


def test_export_csv_and_jsonl_to_a_private_file_never_over_another(
    site: Site, tmp_path: Path
) -> None:
    out_csv = tmp_path / "audit.csv"
    run = site.run(
        "audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--output", str(out_csv)
    )
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(out_csv.stat().st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text(encoding="utf-8"))))
    assert [r["action"] for r in rows].count("view_patient") == 5
    assert all(len(r["hash"]) == 64 for r in rows)
    places = [(int(r["chain"]), int(r["seq"])) for r in rows]  # chain order: by chain, then seq
    assert places == sorted(places)
    views = [json.loads(r["detail"]) for r in rows if r["action"] == "view_patient"]
    assert views[0] == {"k": 0}  # the site's five, in their chain's order
    out_jsonl = tmp_path / "audit.jsonl"
    run = site.run(
        "audit",
        "export",
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01",
        "--format",
        "jsonl",
        "--output",
        str(out_jsonl),
    )
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(out_jsonl.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in out_jsonl.read_text(encoding="utf-8").splitlines()]
    # The first export is in the second: it was audited before this one read the log.
    assert [r["action"] for r in lines].count("audit_exported") == 1
    assert [r["detail"] for r in lines if r["action"] == "view_patient"][-1] == {"k": 4}
    before = out_csv.read_bytes()
    run = site.run(
        "audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--output", str(out_csv)
    )
    assert run.returncode == 1 and f"--output: {out_csv} exists; nothing was written" in run.stderr
    assert out_csv.read_bytes() == before
    # A period with nothing in it: a header and no rows; a period backwards: refused.
    empty = tmp_path / "empty.csv"
    run = site.run(
        "audit", "export", "--from", "2001-01-01", "--to", "2001-02-01", "--output", str(empty)
    )
    assert run.returncode == 0 and empty.read_text().splitlines() == [
        "chain,seq,id,at,user_id,action,patient_id,detail,prev_hash,hash"
    ]
    run = site.run("audit", "export", "--from", "2001-02-01", "--to", "2001-01-01")
    assert run.returncode == 1 and "--to: must be after --from" in run.stderr
    assert len(site.audit_rows("audit_exported")) == 3


# --- purge past the retention ----------------------------------------------------------------


def aged_site(db_url: str, engine: Engine, sessions: sessionmaker[Session]) -> Site:
    """Two rows 14 years old, two 8 years old, one 5 years old (all before the site's own)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with sessions.begin() as s:
        for k, years in enumerate((14, 14, 8, 8, 5)):
            s.add(
                AuditEvent(
                    at=now - timedelta(days=365 * years + 10),
                    user_id=None,
                    action="view_patient",
                    patient_id=100 + k,
                    detail={"old": years},
                )
            )
    return make_site(db_url, engine, sessions)


def config_with_retention(tmp_path: Path, years: int) -> str:
    path = tmp_path / f"retention{years}.toml"
    path.write_text(f"[audit]\nretention_years = {years}\n", encoding="utf-8")
    return str(path)


def aged_chain(site: Site) -> int:
    """The chain the aged rows went to (this test's connection's; PostgreSQL keeps 32)."""
    with site.engine.connect() as conn:
        found = conn.execute(text("SELECT max(chain) FROM audit_events")).scalar()
        assert isinstance(found, int)
        return found


def seqs(site: Site, chain: int) -> list[int]:
    with site.engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT seq FROM audit_events WHERE chain = :c ORDER BY seq"), {"c": chain}
            ).scalars()
        )


def test_purge_removes_rows_past_the_retention_and_verify_still_passes(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    site = aged_site(db_url, engine, sessions)
    chain = aged_chain(site)
    before = seqs(site, chain)
    ten = config_with_retention(tmp_path, 10)
    run = site.run("audit", "purge", "--dry-run", "--json", OUTREACH_CONFIG=ten)
    assert run.returncode == 0, run.stderr
    assert "retention 10 years" in run.stdout and "would remove 2 rows" in run.stdout
    assert last_json(run.stdout)["rows"] == 2
    assert seqs(site, chain)[: len(before)] == before  # only the sign-in's own row was added
    run = site.run("audit", "purge", "--dry-run")  # the default: 6 years
    assert "retention 6 years" in run.stdout and "would remove 4 rows" in run.stdout
    assert seqs(site, chain)[: len(before)] == before and site.audit_rows("audit_purged") == []

    run = site.run("audit", "purge", "--json")
    assert run.returncode == 0, run.stderr
    assert "removed 4 rows" in run.stdout
    assert "starts after seq 4 (the oldest kept is seq 5; 4 rows go)" in run.stdout
    cuts = last_json(run.stdout)["chains"]
    assert isinstance(cuts, list)
    assert [(c["chain"], c["base_seq"]) for c in cuts if c["rows"]] == [(chain, 4)]
    assert seqs(site, chain)[:2] == [5, 6] and 4 not in seqs(site, chain)
    [purged] = site.audit_rows("audit_purged")
    assert purged.user_id == site.admin_id
    assert (purged.detail["rows"], purged.detail["bases"][str(chain)]["seq"]) == (4, 4)
    verify = site.run("audit", "verify", "--json")
    assert verify.returncode == 0, verify.stdout
    assert seqs(site, chain)[0] == 5
    again = site.run("audit", "purge")
    assert again.returncode == 0 and "removed 0 rows" in again.stdout
    assert site.run("audit", "verify").returncode == 0


def test_a_retention_under_6_years_is_refused_naming_the_key(site: Site, tmp_path: Path) -> None:
    five = config_with_retention(tmp_path, 5)
    run = site.run("audit", "purge", OUTREACH_CONFIG=five)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert five in run.stderr and "audit.retention_years" in run.stderr
    assert site.audit_rows("audit_purged") == []


def test_rows_cut_off_without_a_purge_are_caught_and_kept_rows_cannot_be_deleted(
    db_url: str, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    site = aged_site(db_url, engine, sessions)
    # The guard: a row the chain keeps is never deleted.
    with pytest.raises(DBAPIError), site.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 1"))
    with site.engine.begin() as conn:  # the base moved by hand, then the rows under it deleted
        row_hash = conn.execute(text("SELECT hash FROM audit_events WHERE seq = 7")).scalar()
        conn.execute(
            text(
                "UPDATE audit_chain SET base_seq = 7, base_hash = :h "
                "WHERE id = (SELECT chain FROM audit_events WHERE seq = 7)"
            ),
            {"h": row_hash},
        )
        conn.execute(text("DELETE FROM audit_events WHERE seq <= 7"))
    run = site.run("audit", "verify", "--json")
    assert run.returncode == 1
    assert "no purge on record moved it there: rows up to seq 7 were deleted" in run.stdout
    refused = site.run("audit", "purge")  # a broken chain is never purged
    assert refused.returncode == 1 and "nothing was purged" in refused.stderr
    assert site.audit_rows("audit_purged") == []
