"""PQA PDC on worked examples computed by hand, and properties against a day-by-day count."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.adherence.pdc import (
    MAX_DAYS_SUPPLY,
    FillRecord,
    FillRowError,
    SupplyTooLong,
    covered_in_periods,
    pdc_for_class,
    reachable_by,
    read_fills_csv,
)
from queues.adherence.supply import run_out_date
from queues.building.build import build_queues
from queues.imports.csv_files import read_csv
from queues.imports.fhir import FhirReader
from queues.store.models import Campaign, Fill
from tests.conftest import add_pharmacy

F = FillRecord
Y2018 = (date(2018, 1, 1), date(2018, 12, 31))
Y2026 = (date(2026, 1, 1), date(2026, 12, 31))


def test_early_refill_is_shifted_and_the_last_supply_is_cut_at_year_end() -> None:
    # Jan 1 +90 covers Jan 1–Mar 31 (90); Mar 25 +90 overlaps, shifted to Apr 1–Jun 29 (90);
    # Jul 5 +90 covers Jul 5–Oct 2 (90), a 5-day gap before it; Oct 15 +90 runs to Jan 12,
    # cut at Dec 31: Oct 15–Dec 31 (78). 348 of 365.
    fills = [
        F("metformin", date(2018, 1, 1), 90),
        F("metformin", date(2018, 3, 25), 90),
        F("metformin", date(2018, 7, 5), 90),
        F("metformin", date(2018, 10, 15), 90),
    ]
    result = pdc_for_class(fills, *Y2018)
    assert (result.covered_days, result.denominator_days) == (348, 365)
    assert result.pdc == pytest.approx(348 / 365)
    assert result.adherent


def test_period_starts_at_the_first_fill_in_it() -> None:
    # IPSD Mar 25: denominator Mar 25–Dec 31 = 7 + 275 = 282. Mar 25–Jun 22 (90), a 12-day gap
    # Jun 23–Jul 4, Jul 5–Oct 2 (90), Sep 25 shifted to Oct 3–Dec 31 (90). 270 of 282.
    fills = [
        F("metformin", date(2018, 3, 25), 90),
        F("metformin", date(2018, 7, 5), 90),
        F("metformin", date(2018, 9, 25), 90),
    ]
    result = pdc_for_class(fills, *Y2018)
    assert result.ipsd == date(2018, 3, 25)
    assert (result.covered_days, result.denominator_days) == (270, 282)
    assert round(result.pdc or 0, 6) == 0.957447


def test_two_drugs_of_a_class_on_one_day_are_not_shifted_but_the_same_drug_is() -> None:
    # Metformin and glipizide both Jan 1 +90: Jan 1–Mar 31 counts once, 90 of 365.
    two_drugs = [F("metformin", date(2018, 1, 1), 90), F("glipizide", date(2018, 1, 1), 90)]
    assert pdc_for_class(two_drugs, *Y2018).covered_days == 90
    # The same drug twice on Jan 1: the second supply starts Apr 1, Jan 1–Jun 29 = 180.
    same_drug = [F("metformin", date(2018, 1, 1), 90), F("Metformin ", date(2018, 1, 1), 90)]
    assert pdc_for_class(same_drug, *Y2018).covered_days == 180


def test_two_drugs_overlapping_in_part_count_each_day_once() -> None:
    # Atorvastatin Jan 1–Jan 30, rosuvastatin Jan 20–Feb 18: Jan 1–Feb 18 = 49 days of Jan 1–Mar 31
    # (90). Shifting would have given 60.
    fills = [F("atorvastatin", date(2026, 1, 1), 30), F("rosuvastatin", date(2026, 1, 20), 30)]
    result = pdc_for_class(fills, date(2026, 1, 1), date(2026, 3, 31))
    assert (result.covered_days, result.denominator_days) == (49, 90)
    assert not result.adherent


def test_gaps_and_supply_past_the_period_end() -> None:
    # Half-year period, IPSD Feb 1: Feb 1–Jun 30 = 150 days. Feb 1–Mar 2 (30), a gap in March,
    # Apr 1–Jun 29 (90), Jun 20 +30 shifted to Jun 30 and cut there (1). 121 of 150 = 0.806667.
    fills = [
        F("x", date(2026, 2, 1), 30),
        F("x", date(2026, 4, 1), 90),
        F("x", date(2026, 6, 20), 30),
    ]
    result = pdc_for_class(fills, date(2026, 1, 1), date(2026, 6, 30))
    assert (result.covered_days, result.denominator_days) == (121, 150)
    assert round(result.pdc or 0, 6) == 0.806667 and result.adherent


def test_a_fill_before_the_period_carries_its_supply_in_but_does_not_start_the_period() -> None:
    # Dec 20 +30 covers Dec 20–Jan 18. IPSD is Jan 10 (the first fill in the period): denominator
    # Jan 10–Dec 31 = 356. Carried in: Jan 10–18 (9) and the Jan 10 fill shifted to Jan 19–Feb 17
    # (30): 39. Without the earlier fill (PQA reporting): Jan 10–Feb 8, 30.
    fills = [F("lisinopril", date(2025, 12, 20), 30), F("lisinopril", date(2026, 1, 10), 30)]
    carried = pdc_for_class(fills, *Y2026)
    assert (carried.ipsd, carried.covered_days, carried.denominator_days) == (
        date(2026, 1, 10),
        39,
        356,
    )
    strict = pdc_for_class(fills, *Y2026, carry_in=False)
    assert (strict.covered_days, strict.denominator_days) == (30, 356)


def test_a_fill_before_the_period_covers_nothing_before_the_ipsd() -> None:
    # Dec 1 +60 covers to Jan 29, but the period only starts at the Feb 10 fill.
    fills = [F("losartan", date(2025, 12, 1), 60), F("losartan", date(2026, 2, 10), 30)]
    result = pdc_for_class(fills, date(2026, 1, 1), date(2026, 3, 11))
    assert (result.ipsd, result.covered_days, result.denominator_days) == (
        date(2026, 2, 10),
        30,
        30,
    )


def test_no_fill_in_the_period_is_not_in_the_measure() -> None:
    result = pdc_for_class([F("losartan", date(2025, 12, 1), 90)], *Y2026)
    assert (result.in_measure, result.pdc, result.adherent) == (False, None, False)


def test_080_exactly_is_adherent_and_one_day_less_is_not() -> None:
    assert pdc_for_class([F("x", date(2026, 1, 1), 292)], *Y2026).adherent  # 292/365 = 0.8
    assert not pdc_for_class([F("x", date(2026, 1, 1), 291)], *Y2026).adherent


def test_reach_a_patient_who_can_still_make_it_and_how_many_days_it_takes() -> None:
    # Today Jul 1. Jan 1–Mar 31 (90), Apr 15–May 14 (30), Jun 20–Jul 19 (30): 150 days by year
    # end on hand; 0.80 of 365 is 292, so 142 more are needed. Open: Jul 20–Dec 31 = 165 days.
    fills = [
        F("a", date(2026, 1, 1), 90),
        F("a", date(2026, 4, 15), 30),
        F("a", date(2026, 6, 20), 30),
    ]
    reach = reachable_by(fills, date(2026, 1, 1), date(2026, 7, 1), date(2026, 12, 31))
    assert (reach.to_date.covered_days, reach.to_date.denominator_days) == (132, 182)
    assert (reach.covered_on_hand, reach.required_days, reach.days_needed, reach.days_open) == (
        150,
        292,
        142,
        165,
    )
    assert reach.reachable and reach.run_out == date(2026, 7, 20)
    assert reach.best_pdc == pytest.approx(315 / 365)


def test_reach_a_patient_who_can_no_longer_make_it() -> None:
    # Jan 1–30 and Mar 1–30: 60 days; 232 more needed but only Jul 1–Dec 31 (184) are left.
    fills = [F("a", date(2026, 1, 1), 30), F("a", date(2026, 3, 1), 30)]
    reach = reachable_by(fills, date(2026, 1, 1), date(2026, 7, 1), date(2026, 12, 31))
    assert (reach.days_needed, reach.days_open, reach.reachable) == (232, 184, False)
    assert reach.share_needed == pytest.approx(232 / 184)


def test_reach_ignores_fills_dated_after_today() -> None:
    fills = [F("a", date(2026, 1, 1), 200), F("a", date(2026, 7, 1), 30)]  # Jul 1 is after today
    reach = reachable_by(fills, date(2026, 1, 1), date(2026, 6, 30), date(2026, 12, 31))
    assert reach.covered_on_hand == 200 and reach.run_out == date(2026, 7, 20)
    assert reach.days_needed == 92 and reach.days_open == 165  # Jul 20–Dec 31


# --- properties, against a plain day-by-day count of pills on hand --------------------------

fill_lists = st.lists(
    st.builds(
        FillRecord,
        st.sampled_from(["lisinopril", "losartan", "valsartan"]),
        st.dates(date(2025, 10, 1), date(2027, 1, 31)),
        st.integers(1, 120),
    ),
    max_size=12,
)


def day_by_day(fills: list[FillRecord], start: date, end: date, carry_in: bool = True) -> int:
    """Each drug a stock of days: a fill adds its supply, a day with stock uses one and is covered."""
    fills = [f for f in fills if carry_in or f.fill_date >= start]
    in_period = [f.fill_date for f in fills if start <= f.fill_date <= end]
    if not in_period:
        return 0
    ipsd = min(in_period)
    stock = dict.fromkeys({f.drug for f in fills}, 0)
    day, covered = min(f.fill_date for f in fills), 0
    while day <= end:
        any_on_hand = False
        for f in fills:
            if f.fill_date == day:
                stock[f.drug] += f.days_supply
        for drug, left in stock.items():
            if left:
                stock[drug] = left - 1
                any_on_hand = True
        covered += any_on_hand and day >= ipsd
        day += timedelta(days=1)
    return covered


@given(fill_lists, st.booleans())
def test_covered_days_match_a_day_by_day_count(fills: list[FillRecord], carry_in: bool) -> None:
    result = pdc_for_class(fills, *Y2026, carry_in=carry_in)
    assert result.covered_days == day_by_day(fills, *Y2026, carry_in)
    assert 0 <= result.covered_days <= result.denominator_days <= 365
    if result.pdc is not None:
        assert 0.0 <= result.pdc <= 1.0


@given(fill_lists, fill_lists.filter(bool))
def test_adding_fills_never_lowers_covered_days(
    fills: list[FillRecord], more: list[FillRecord]
) -> None:
    before = pdc_for_class(fills, *Y2026)
    after = pdc_for_class(fills + more, *Y2026)
    assert after.covered_days >= before.covered_days
    assert pdc_for_class(list(reversed(fills + more)), *Y2026) == after  # order does not matter


# --- the fills file ----------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fills.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_fills_file_is_read_with_its_columns_in_any_order(tmp_path: Path) -> None:
    path = write(tmp_path, "fill_date,days_supply,drug\n2026-01-05,30,lisinopril\n\n")
    assert read_fills_csv(path) == [F("lisinopril", date(2026, 1, 5), 30)]


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("drug,fill_date,days_supply\nx,2026-01-05,30\nx,2026-02-30,30\n", 3, "fill_date"),
        ("drug,fill_date,days_supply\nx,2026-01-05,-30\n", 2, "days_supply"),
        ("drug,fill_date,days_supply\nx,2026-01-05,thirty\n", 2, "days_supply"),
        ("drug,fill_date,days_supply\n,2026-01-05,30\n", 2, "drug"),
        ("drug,date,days_supply\nx,2026-01-05,30\n", 1, "fill_date"),
        ("drug,fill_date,days_supply\nx,2026-01-05,30\nx,2026-02-05,3000000\n", 3, "days_supply"),
        ("drug,fill_date,days_supply\nx,2026-01-05,366\n", 2, "days_supply"),
    ],
)
def test_a_bad_row_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FillRowError) as err:
        read_fills_csv(path)
    assert (err.value.line, err.value.field) == (line, field)
    assert str(path) in str(err.value) and f"line {line}" in str(err.value)


# --- a supply over 365 days per fill -----------------------------------------------------------


def test_a_year_supply_is_accepted_and_one_day_more_is_refused_naming_the_fill() -> None:
    year = pdc_for_class([F("lisinopril", date(2026, 1, 1), MAX_DAYS_SUPPLY)], *Y2026)
    assert (year.covered_days, year.denominator_days) == (365, 365)
    huge = [F("lisinopril", date(2026, 1, 1), 30), F("losartan", date(2026, 2, 3), 3_000_000)]
    for measure in (
        lambda: pdc_for_class(huge, *Y2026),
        lambda: reachable_by(huge, Y2026[0], date(2026, 7, 1), Y2026[1]),
        lambda: covered_in_periods([(f.drug, f.fill_date, f.days_supply) for f in huge], [Y2026]),
    ):
        with pytest.raises(SupplyTooLong) as err:
            measure()
        assert "losartan on 2026-02-03" in str(err.value) and "3000000" in str(err.value)
        assert "at most 365 days" in str(err.value)


def test_a_run_out_date_leaves_an_impossible_supply_out() -> None:
    # 3,000,000 days from 2026 is past the last date Python has: left out, not a crash.
    fills = [(date(2026, 1, 1), 30), (date(2026, 1, 20), 3_000_000)]
    assert run_out_date(fills) == date(2026, 1, 31)


def test_outreach_pdc_refuses_the_file_naming_line_and_field(tmp_path: Path) -> None:
    from tests.console.test_cli import outreach

    path = write(tmp_path, "drug,fill_date,days_supply\nx,2026-01-05,30\nx,2026-02-05,3000000\n")
    run = outreach("pdc", "--fills", str(path), "--from", "2026-01-01", "--to", "2026-12-31")
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert f"{path}, line 3, field days_supply: 3000000 (at most 365 days per fill)" in run.stderr
    assert "PDC" not in run.stdout


def test_a_csv_import_refuses_a_fill_over_365_days(tmp_path: Path) -> None:
    path = tmp_path / "fills.csv"
    path.write_text(
        "mrn,rx_id,fill_id,fill_date,days_supply\n"
        "A1,RX-1,F-1,2026-01-05,365\nA1,RX-1,F-2,2026-02-05,3000000\n",
        encoding="utf-8",
    )
    read = read_csv("fills", path, 30)
    assert [str(e) for e in read.errors] == [
        f"{path}:3: days_supply: 3000000 days: at most 365 days per fill"
    ]
    assert [f.days_supply for f in read.batch.fills.values()] == [365]


def test_a_fhir_dispense_over_365_days_is_rejected_with_its_reason() -> None:
    reader = FhirReader()
    resources: list[dict[str, object]] = [
        {
            "resourceType": "Patient",
            "id": "p1",
            "name": [{"family": "Test", "given": ["Pat"]}],
            "birthDate": "1950-01-01",
        },
        {
            "resourceType": "MedicationRequest",
            "id": "r1",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": {"text": "Lisinopril 10 MG Oral Tablet"},
        },
        {
            "resourceType": "MedicationRequest",
            "id": "r2",
            "status": "active",
            "intent": "order",
            "authoredOn": "2026-01-02",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": {"text": "Atorvastatin 20 MG Oral Tablet"},
            "dispenseRequest": {"expectedSupplyDuration": {"value": 5000, "code": "d"}},
        },
    ]
    for days, fill in ((30, "d1"), (3_000_000, "d2")):
        resources.append(
            {
                "resourceType": "MedicationDispense",
                "id": fill,
                "status": "completed",
                "subject": {"reference": "Patient/p1"},
                "medicationCodeableConcept": {"text": "Lisinopril 10 MG Oral Tablet"},
                "authorizingPrescription": [{"reference": "MedicationRequest/r1"}],
                "whenHandedOver": "2026-01-05",
                "daysSupply": {"value": days, "code": "d"},
            }
        )
    for i, raw in enumerate(resources):
        reader.read(raw, "bundle.json", i + 1)
    batch = reader.finish()
    assert reader.errors == []
    assert {f.source_id: f.days_supply for f in batch.fills.values()} == {"d1": 30}
    rejected = {(r.source, r.reason) for r in batch.rejected if r.source.startswith("Medication")}
    assert rejected == {
        ("MedicationDispense/d2", "daysSupply of 3000000 days: at most 365 days per fill"),
        (
            "MedicationRequest/r2",
            "expected supply of 5000 days: at most 365 days per fill, so no estimated fill",
        ),
    }


def test_the_build_leaves_a_fill_over_365_days_out_and_says_so_in_the_log(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    from tests.queues.test_adherence_rule import FAR, NOW, ONLY, open_tasks, patient, rx

    with sessions.begin() as s:
        ph = add_pharmacy(s)
        s.add(Campaign(pharmacy_id=ph, kind="adherence", name="Adherence", script_id="adherence"))
    with sessions.begin() as s:
        p = patient(s)
        # Below 0.80 on FAR; a 3,000,000-day fill in Feb would make it 1.0 and no call.
        prescription = rx(s, p, "lisinopril", [*FAR, (date(2026, 2, 15), 3_000_000)], "RASA")
        bad = s.scalars(select(Fill.id).where(Fill.days_supply == 3_000_000)).one()
    with caplog.at_level(logging.WARNING), sessions.begin() as s:
        build_queues(s, NOW, rules=ONLY)
    assert [t.subject for t in open_tasks(sessions)[p.id]] == ["pdc:RASA:2026-07-05"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"fill {bad} (prescription {prescription.id}): 3000000 days" in logged
    assert "over 365 per fill" in logged and "lisinopril" not in logged.lower()
