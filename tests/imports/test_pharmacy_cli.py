"""`outreach pharmacy add|set|list`: a new client without touching the database by hand."""

from __future__ import annotations

import pytest

from console.cli import main
from tests.imports.conftest import run_json


def test_add_set_and_list_a_pharmacy(site: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--database", site]
    assert main(["pharmacy", "add", "TX2", "--name", "Lone Star", "--timezone", "America/Chicago",
                 "--caller-id", "+12145550100", "--endpoint", "https://tx2.example/outreach", *argv]) == 0  # fmt: skip
    assert main(["pharmacy", "set", "TX2", "--opens", "08:30", "--priority", "2", *argv]) == 0
    listed = run_json(capsys, "pharmacy", "list", *argv)["pharmacies"]
    tx2 = next(p for p in listed if p["code"] == "TX2")
    assert tx2 == {
        "code": "TX2", "name": "Lone Star", "timezone": "America/Chicago",
        "caller_id": "+12145550100", "callback_number": "+12145550100", "state": "TX",
        "opens_at": "08:30", "closes_at": "18:00", "priority": 2,
        "endpoint_url": "https://tx2.example/outreach",
    }  # fmt: skip
    assert [p["code"] for p in listed] == ["KS1", "TX2"]
    assert main(["pharmacy", "set", "TX2", "--endpoint", "", *argv]) == 0
    assert run_json(capsys, "pharmacy", "list", *argv)["pharmacies"][1]["endpoint_url"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "add",
                "KS1",
                "--name",
                "x",
                "--timezone",
                "America/Chicago",
                "--caller-id",
                "+13165550100",
            ],
            "pharmacy KS1 exists already",
        ),
        (
            ["add", "NEW", "--name", "x", "--timezone", "Mars/Base", "--caller-id", "+13165550100"],
            "--timezone: 'Mars/Base' is not",
        ),
        (
            ["add", "NEW", "--name", "x", "--timezone", "America/Chicago", "--caller-id", "555"],
            "--caller-id: '555' is not a phone number in E.164",
        ),
        (["set", "NOPE", "--name", "x"], "no pharmacy 'NOPE'"),
        (["set", "KS1"], "nothing to change"),
        (["set", "KS1", "--endpoint", "ftp://x"], "--endpoint: 'ftp://x' is not an http(s) URL"),
        (
            ["set", "KS1", "--endpoint", "http://pharmacy.example/outreach"],
            "--endpoint: 'http://pharmacy.example/outreach' is plain HTTP",
        ),
    ],
)
def test_bad_pharmacy_input_is_refused_plainly(
    site: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capsys.readouterr()
    assert main(["pharmacy", *args, "--database", site]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
