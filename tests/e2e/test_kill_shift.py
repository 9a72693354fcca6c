"""kill -9 during a scripted shift (the engine of bench/kill_shift.py, a few kills): every field
the console reported in the draft journal before the kill is back on the form after restart (or
stored by a save that completed), every saved disposition is stored exactly once, no patient is
held by a dead console past its lease, and nothing is doubled."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.kill_shift import PHASES, run, table

SEED = 20
# Random kills, plus one forced in each phase (typing, saving, claiming, dialing). PostgreSQL runs
# fewer: a kill costs a console start (~6-10 s on two loaded cores) and the bench runs hundreds.
RANDOM_KILLS = {"sqlite": 3, "postgres": 1}  # bench/kill_shift.py runs 200


# Each kill starts a console again (forked from a server that imported the app once): about 6 s a
# kill on two loaded cores. The pytest-timeout guard is raised for it, never a measure.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shift.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_killed_anywhere_in_a_shift_nothing_typed_is_lost_nothing_saved_is_doubled(
    tmp_path: Path, url: str
) -> None:
    backend = "sqlite" if url.startswith("sqlite") else "postgres"
    tally = run(url, tmp_path, RANDOM_KILLS[backend], SEED, forced=True, max_step=9)
    report = table(tally, backend, SEED)
    assert tally.kills == RANDOM_KILLS[backend] + len(PHASES), report
    for phase in PHASES:
        assert tally.kills_by_phase[phase] >= 1, report
    assert tally.fields_lost == [], report
    assert tally.fields_restored == tally.fields_expected > 0, report
    assert tally.lost == [] and tally.doubled == [] and tally.differs == [], report
    assert tally.stored_once == tally.wrap_ups > 0, report
    assert tally.held_wrongly == [], report
