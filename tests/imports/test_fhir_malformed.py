"""Malformed FHIR input: a clear `file:line: field: why` for each bad resource, and nothing stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from console.cli import main
from queues.imports.records import ImportFailed, SourceUnreadable
from queues.imports.run import import_fhir
from queues.imports.settings import ImportSettings
from queues.settings import QueueSettings
from tests.imports.conftest import FIXTURE, counts

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
PATIENT: dict[str, Any] = json.loads((FIXTURE / "Patient.000.ndjson").read_text().splitlines()[0])


def bundle(*resources: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [{"fullUrl": f"urn:uuid:{i}", "resource": r} for i, r in enumerate(resources)],
    }


def test_a_bad_field_in_a_bundle_is_named_and_nothing_is_stored(
    site: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {**PATIENT, "id": "p-good"}
    bad = {**PATIENT, "id": "p-bad", "birthDate": "19x7-01-01"}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle(good, bad)))
    capsys.readouterr()
    assert main(["import", "fhir", str(path), "--pharmacy", "KS1", "--database", site]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1: entry[1].resource.birthDate:" in err
    assert "19x7" not in err  # the value itself is never repeated
    assert counts(engine)["patients"] == 0


def test_broken_json_lines_are_named_by_line(
    site: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "Patient.ndjson"
    path.write_text(json.dumps(PATIENT) + "\n{not json\n" + json.dumps({"id": "x"}) + "\n")
    capsys.readouterr()
    assert main(["import", "fhir", str(path), "--pharmacy", "KS1", "--database", site]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: json:" in err and f"{path}:3: resourceType: missing" in err
    assert counts(engine)["patients"] == 0


def test_a_patient_without_an_address_is_rejected_and_the_rest_imported(
    site: str, sessions: sessionmaker[Any], tmp_path: Path
) -> None:
    homeless = {k: v for k, v in PATIENT.items() if k != "address"} | {"id": "p-none"}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle(PATIENT, homeless, kind="collection")))
    result = import_fhir(sessions, str(path), "KS1", NOW, QueueSettings(), ImportSettings())
    assert result.patients_created == 1
    assert [(r.source, r.reason) for r in result.rejected] == [
        ("Patient/p-none", "no 5-digit ZIP code in its address")
    ]


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    field=st.sampled_from(
        ["birthDate", "name", "address", "telecom", "gender", "resourceType", "entry"]
    ),
    value=json_value,
    wrap=st.booleans(),
)
def test_any_mangled_patient_or_bundle_fails_clearly_or_imports_whole(
    site: str, engine: Engine, tmp_path: Path, field: str, value: Any, wrap: bool
) -> None:
    patient = {**PATIENT, field: value} if field != "entry" else PATIENT
    document: Any = bundle(patient) if wrap else patient
    if field == "entry":
        document = {**bundle(patient), "entry": value}
    path = tmp_path / "mangled.json"
    path.write_text(json.dumps(document))
    before = counts(engine)
    sessions = sessionmaker(engine)
    try:
        import_fhir(sessions, str(path), "KS1", NOW, QueueSettings(), ImportSettings())
    except (ImportFailed, SourceUnreadable) as failure:
        lines = str(failure).splitlines()
        assert any(line.startswith(f"{path}:") for line in lines)
        assert counts(engine) == before
