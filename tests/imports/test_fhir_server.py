"""A FHIR server read over HTTP: SMART Backend Services (a signed JWT for a token, a new token when
one expires), paged searches, a bulk $export with polling, a 429 and a 503 along the way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine

from queues.imports.records import SourceUnreadable
from queues.imports.run import NoProgress, read_fhir
from queues.imports.settings import ImportSettings
from tests.imports.conftest import FIXTURE, counts, run_json
from tests.imports.fhir_server import CLIENT_ID, ServerState, fhir_server

KINDS = ("Patient", "MedicationRequest", "Immunization", "Encounter")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerState]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    monkeypatch.setenv("TEST_FHIR_KEY", pem)
    with fhir_server(FIXTURE, KINDS, key.public_key()) as state:
        yield state


def smart(**changes: object) -> ImportSettings:
    values: dict[str, object] = {
        "fhir_client_id": CLIENT_ID,
        "fhir_private_key_env": "TEST_FHIR_KEY",
        **changes,
    }
    return ImportSettings(**values)  # type: ignore[arg-type]


def test_paged_searches_follow_next_links_and_outlast_a_503_and_expired_tokens(
    server: ServerState,
) -> None:
    batch = read_fhir(server.base, smart(fhir_bulk=False), NoProgress())
    assert len(batch.patients) == 13
    assert len(batch.prescriptions) == 1745
    assert server.hits["/Patient"] >= 4  # 13 patients, 5 a page: three pages, after one 503
    assert server.expired_answers >= 1 and server.issued >= 2  # tokens expired and were renewed


def test_a_bulk_export_is_polled_and_downloaded_after_a_429_and_a_503(server: ServerState) -> None:
    batch = read_fhir(server.base, smart(), NoProgress())
    assert len(batch.patients) == 13
    assert server.hits["/$export"] == 2  # 429, then accepted
    assert server.status_polls == 3  # in progress, 503, done
    assert batch.skipped["Encounter"] == 1215


def test_a_missing_secret_is_named_and_never_read_from_the_config(server: ServerState) -> None:
    with pytest.raises(SourceUnreadable, match="set the environment variable NOT_SET_ANYWHERE"):
        read_fhir(server.base, smart(fhir_private_key_env="NOT_SET_ANYWHERE"), NoProgress())


def test_a_wrong_key_is_refused_plainly(
    server: ServerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    monkeypatch.setenv("TEST_FHIR_KEY", pem)
    with pytest.raises(SourceUnreadable, match="answered 401"):
        read_fhir(server.base, smart(), NoProgress())


def test_import_fhir_from_a_server_url_on_the_command_line(
    server: ServerState, site: str, engine: Engine, capsys: pytest.CaptureFixture[str],
    tmp_path: object, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    config = tmp_path / "config.toml"  # type: ignore[operator]
    config.write_text(
        f'[imports]\nfhir_client_id = "{CLIENT_ID}"\nfhir_private_key_env = "TEST_FHIR_KEY"\n'
    )
    argv = ["import", "fhir", server.base, "--pharmacy", "KS1", "--database", site]
    result = run_json(capsys, *argv, "--config", str(config))
    assert result["patients_created"] == 13
    assert counts(engine)["prescriptions"] == 1745


def test_a_bearer_token_from_the_environment_is_sent(
    server: ServerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.tokens["static-token"] = 10_000
    monkeypatch.setenv("TEST_FHIR_TOKEN", "static-token")
    batch = read_fhir(server.base, ImportSettings(fhir_token_env="TEST_FHIR_TOKEN"), NoProgress())
    assert len(batch.patients) == 13 and server.issued == 0
