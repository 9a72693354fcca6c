"""`outreach scripts lint`: the whole library is clean; each kind of broken flow is named by
file:line; the same privacy mistakes the engine refuses are refused here first."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from console.cli import main
from scripts_library.library import FLOWS_DIR
from scripts_library.lint import lint
from tests.scripts_library.helpers import OPENING as SHARED_OPENING
from tests.scripts_library.helpers import SECTION, write_flow


def write(tmp_path: Path, source: str, name: str = "sample.toml") -> Path:
    return write_flow(tmp_path, name.removesuffix(".toml"), source)


def messages(path: Path) -> list[str]:
    return [f"{Path(p.file).name}:{p.line}: {p.message}" for p in lint([path])]


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def assert_named(
    tmp_path: Path, source: str, name: str, change: tuple[str, str], at: str, expected: str
) -> None:
    """`source` with `change` made, as file `name`: lint says `expected` at the line of `at`."""
    source = textwrap.dedent(source)
    assert change[0] in source
    path = write(tmp_path, source.replace(change[0], change[1], 1), name)
    found = messages(path)
    line = line_of(path, at)
    assert any(m.startswith(f"{name}:{line}:") and expected in m for m in found), found


def test_the_whole_bundled_library_lints_clean() -> None:
    assert [str(p) for p in lint()] == []
    assert len(list(FLOWS_DIR.glob("*.toml"))) >= 15


def test_a_good_flow_has_no_problems(tmp_path: Path) -> None:
    assert messages(write(tmp_path, SECTION)) == []


def test_invalid_toml_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, SECTION + "\n[[[ broken\n")
    found = messages(path)
    assert len(found) == 1
    assert found[0].startswith(f"sample.toml:{line_of(path, '[[[ broken')}: not valid TOML")


@pytest.mark.parametrize(
    ("change", "at", "expected"),
    [
        (('type = "say"', 'type = "shout"'), 'type = "shout"', "type 'shout' is not one of"),
        (('text.es = "¿Lo resurtimos?"\n', ""), "Refill it?", "text has no 'es' translation"),
        (('next = "pills"', 'next = "nowhere"'), "[steps.intro]", "goes to 'nowhere'"),
        (('{rx.run_out}."', '{rx.expiry}."'), "{rx.expiry}", "{rx.expiry} is not a placeholder"),
        (('action = "refill_request"', 'action = "send_flowers"'), "send_flowers", "not one of"),
        (('yes = "route"', 'yes = "@next"'), "[steps.route]", "'route' is unreachable"),
        (
            ('subjects = ["refill_reminder"]', 'subjects = ["smoking_cessation"]'),
            'text.en = "About {rx.drug}',
            "{rx.drug} needs a subject that provides 'rx'",
        ),
    ],
)
def test_each_broken_flow_is_named_by_file_line_and_what_is_wrong(
    tmp_path: Path, change: tuple[str, str], at: str, expected: str
) -> None:
    assert_named(tmp_path, SECTION, "sample.toml", change, at, expected)


def test_a_loop_with_no_way_out_is_a_dead_end(tmp_path: Path) -> None:
    source = (
        textwrap.dedent(SECTION)
        .replace('no = "@next"', 'no = "intro"')
        .replace('text.es = "Enviado."\nnext = "@next"', 'text.es = "Enviado."\nnext = "intro"')
    )
    path = write(tmp_path, source)
    found = messages(path)
    assert (
        f"sample.toml:{line_of(path, '[steps.intro]')}: step 'intro' is a dead end: the call cannot finish from here"
        in found
    )


# The test opening, with health information right after the identity check: allowed there.
OPENING = SHARED_OPENING.replace('passed = "@next"', 'passed = "thanks"', 1) + (
    '\n[steps.thanks]\ntype = "say"\n'
    'text.en = "Thank you. Let\'s talk about your {meds.chronic}."\n'
    'text.es = "Gracias. Hablemos de sus {meds.chronic}."\n'
    'next = "@next"\n'
)


def test_a_correct_opening_passes(tmp_path: Path) -> None:
    assert messages(write(tmp_path, OPENING, "my_opening.toml")) == []


@pytest.mark.parametrize(
    ("change", "at", "expected"),
    [
        (
            ('text.en = "Hello {patient.first_name},', 'text.en = "About {rx.drug}, hi'),
            "About {rx.drug}",
            "{rx.drug} is health information and identity is not verified",
        ),
        (
            ('text.en = "Hello {patient.first_name},', 'text.en = "Your metformin, hi'),
            "Your metformin",
            "a step before identity is verified names metformin",
        ),
        (
            ('text.en = "A message from {pharmacy.name}', 'text.en = "Hi {patient.first_name}'),
            "Hi {patient.first_name}",
            "a voicemail may use only {pharmacy.name} and {pharmacy.callback_number}",
        ),
        (
            ('text.es = "Mensaje de {pharmacy.name}', 'text.es = "Su insulina y su diabetes'),
            "Su insulina",
            "a voicemail names diabetes",
        ),
        (
            ('next = "who"', 'next = "@next"'),
            "[steps.greeting]",
            "goes on to the due sections (health information) before identity is verified",
        ),
        (
            ('passed = "thanks"', 'passed = "thanks"\nhint.en = "{patient.birth_date}"'),
            "hint.en",
            "{patient.birth_date} is health information",
        ),
    ],
)
def test_health_information_before_verification_or_in_voicemail_is_rejected(
    tmp_path: Path, change: tuple[str, str], at: str, expected: str
) -> None:
    assert_named(tmp_path, OPENING, "my_opening.toml", change, at, expected)


def test_a_branch_condition_the_engine_cannot_evaluate_is_rejected(tmp_path: Path) -> None:
    source = SECTION.replace("has_subject('vaccine:zoster')", "__import__('os') or answer('nope')")
    found = messages(write(tmp_path, source))
    assert any("__import__" in m and "only answer, has_subject" in m for m in found), found
    assert any("answer('nope') — no step of this flow asks 'nope'" in m for m in found), found


# -- the commands -------------------------------------------------------------------------------
def test_scripts_lint_command_prints_file_line_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scripts", "lint"]) == 0
    path = write(tmp_path, SECTION.replace('text.es = "¿Lo resurtimos?"\n', ""))
    assert main(["scripts", "lint", str(path)]) == 1
    out = capsys.readouterr().out
    line = line_of(path, 'text.en = "Refill it?"')
    assert f"sample.toml:{line}: step 'refill': text has no 'es' translation" in out


def test_scripts_list_json_names_each_flow_with_subjects_and_languages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["scripts", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    by_id = {r["id"]: r for r in rows}
    assert by_id["refill_reminder"]["subjects"] == ["refill_reminder"]
    assert by_id["vaccine_zoster"]["languages"] == ["en", "es"]
    for needed in (
        "med_sync_enrollment",
        "pre_sync_check",
        "post_dispense",
        "adherence",
        "vaccine_pneumococcal",
        "vaccine_influenza",
        "vaccine_rsv",
        "diabetes_education",
        "smoking_cessation",
        "prescriber_office",
        "wrong_number",
        "caregiver_on_the_line",
    ):
        assert needed in by_id
    assert all({"id", "subjects", "languages"} <= set(r) for r in rows)


def test_scripts_try_walks_a_flow_from_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    # greeting, patient, identity, thanks, quit-line section: uses tobacco, ready, yes, close: no.
    keys = "\n1\nRosa Example\n1950-03-14\n\n1\n\n1\n1\n\n2\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(keys))
    assert main(["scripts", "try", "smoking_cessation", "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "1-800-QUIT-NOW" in out
    assert "suggested disposition: completed" in out
    assert '"kind": "pharmacist_escalation"' in out


def test_a_4000_step_flow_lints_with_every_problem_on_its_line(tmp_path: Path) -> None:
    from bench.flow_lint import flow_text

    clean = write(tmp_path, flow_text(4000, problems=False), "long.toml")
    assert messages(clean) == []
    path = write(tmp_path, flow_text(4000, problems=True), "long_bad.toml")
    lines = path.read_text().splitlines()
    header = {
        ln.strip()[len("[steps.") : -1]: n for n, ln in enumerate(lines, 1) if "[steps." in ln
    }
    found = messages(path)
    untranslated = [
        f"long_bad.toml:{header[f's{i}'] + 2}: step 's{i}': text has no 'es' translation"
        for i in range(2, 4000, 3)
    ]
    unreachable = [
        f"long_bad.toml:{header[f's{i}']}: step 's{i}' is unreachable from 's0'"
        for i in range(3600, 4000)
    ]
    assert sorted(found) == sorted(untranslated + unreachable)


def test_a_long_chain_that_never_finishes_is_a_dead_end_at_every_step(tmp_path: Path) -> None:
    # The backward walk that finds dead ends, on a 4,000-step loop with one way out at its end.
    from bench.flow_lint import flow_text

    source = flow_text(4000, problems=False).replace('next = "@next"', 'next = "s0"')
    path = write(tmp_path, source, "loop.toml")
    found = messages(path)
    assert len(found) == 4000 and all("is a dead end" in m for m in found)
    fixed = write(tmp_path, source.replace('next = "s0"', 'next = "@next"', 1), "loop_ok.toml")
    assert messages(fixed) == []
