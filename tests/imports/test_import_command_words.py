"""What `outreach import fhir|csv` says: a failed import's hint names only what that command
accepts (--skip-bad-rows is `import csv`'s), a URL of another scheme than http/https is refused as
a URL, and the CSV summary has no FHIR resource line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from console.cli import main
from tests.imports.conftest import counts


def test_a_failed_fhir_import_does_not_offer_an_option_it_lacks(
    site: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "Patient.ndjson"
    path.write_text("{not json\n")
    capsys.readouterr()
    assert main(["import", "fhir", str(path), "--pharmacy", "KS1", "--database", site]) == 1
    err = capsys.readouterr().err
    assert "1 bad record(s); nothing was stored:" in err
    assert f"{path}:1: json:" in err
    assert "--skip-bad-rows" not in err
    assert counts(engine)["patients"] == 0


def test_a_failed_csv_import_offers_skip_bad_rows(
    site: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "patients.csv"
    path.write_text(
        "mrn,first_name,last_name,birth_date,zip_code,state,language,tobacco_use\n"
        "C3,Cy,Cole,not-a-date,66801,KS,en,no\n"
    )
    capsys.readouterr()
    argv = ["import", "csv", "patients", str(path), "--pharmacy", "KS1", "--database", site]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert (
        "1 bad record(s); nothing was stored (--skip-bad-rows stores the good rows and reports "
        "the rest):" in err
    )
    assert f"{path}:2: birth_date:" in err
    assert counts(engine)["patients"] == 0


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("ftp://x/fhir", "ftp://x/fhir: a ftp:// URL cannot be imported"),
        ("sftp://user:secret@files.example/out", "sftp://files.example/out: a sftp:// URL"),
        ("file:///tmp/fhir", "file:///tmp/fhir: a file:// URL cannot be imported"),
    ],
)
def test_a_url_of_another_scheme_is_refused_as_a_url(
    site: str, source: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["import", "fhir", source, "--pharmacy", "KS1", "--database", site]) == 1
    err = capsys.readouterr().err
    assert named in err
    assert "http:// or https://" in err
    assert "no such file" not in err and "secret" not in err


def test_the_csv_summary_has_no_fhir_resources_line(
    site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "patients.csv"
    path.write_text(
        "mrn,first_name,last_name,birth_date,zip_code,state,language,tobacco_use\n"
        "C1,Ann,Able,1950-01-02,66801,KS,en,no\n"
    )
    capsys.readouterr()
    argv = ["import", "csv", "patients", str(path), "--pharmacy", "KS1", "--database", site]
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "rows rejected: 0" in out
    assert not any(line.startswith("rejected: ") for line in out)  # those name a bad row each
    assert not any("skipped" in line or "resources" in line for line in out[:-1])
    assert json.loads(out[-1])["patients_created"] == 1


def test_the_fhir_summary_keeps_its_skipped_resources_line(
    site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "Other.ndjson"
    path.write_text(json.dumps({"resourceType": "Practitioner", "id": "x"}) + "\n")
    capsys.readouterr()
    assert main(["import", "fhir", str(path), "--pharmacy", "KS1", "--database", site]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "skipped: 1 resources of types the console does not use; rejected: 0" in out


def test_an_http_url_in_capitals_is_a_server_not_a_file(
    site: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    source = "HTTP://127.0.0.1:1/fhir"  # nothing listens on port 1
    assert main(["import", "fhir", source, "--pharmacy", "KS1", "--database", site]) == 1
    err = capsys.readouterr().err
    assert "cannot be imported" not in err and "no such file" not in err, err
