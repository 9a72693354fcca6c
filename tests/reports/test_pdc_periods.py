"""`queues.adherence.pdc.covered_in_periods` (the report's one-pass PDC) agrees with `pdc_for_class` run
once per window, on many generated fill histories."""

from __future__ import annotations

import random
from datetime import date, timedelta

from queues.adherence.pdc import FillRecord, covered_in_periods, is_adherent, pdc_for_class

W0 = (date(2026, 4, 1), date(2026, 6, 30))
W1 = (date(2026, 7, 1), date(2026, 9, 30))
OVERLAPPING = (date(2026, 6, 1), date(2026, 8, 29))  # a short period's 90-day window


def _history(rng: random.Random) -> list[FillRecord]:
    drugs = ["lisinopril", "Lisinopril ", "losartan"][: rng.randint(1, 3)]
    first = date(2025, 10, 1) + timedelta(days=rng.randint(0, 300))
    fills = []
    for _ in range(rng.randint(0, 8)):
        first += timedelta(days=rng.randint(0, 60))
        if first > W1[1]:
            break
        fills.append(FillRecord(rng.choice(drugs), first, rng.choice([0, 7, 30, 30, 90])))
    return fills


def test_each_window_matches_pdc_for_class() -> None:
    rng = random.Random(20261130)
    for _ in range(3000):
        fills = _history(rng)
        rows = [(f.drug, f.fill_date, f.days_supply) for f in fills]
        for windows in ((W0, W1), (W0, OVERLAPPING)):
            got = covered_in_periods(rows, windows)
            for (lo, hi), found in zip(windows, got, strict=True):
                want = pdc_for_class([f for f in fills if f.fill_date <= hi], lo, hi)
                if not want.in_measure:
                    assert found is None
                    continue
                assert found == (want.covered_days, want.denominator_days)
                assert is_adherent(*found) == want.adherent


def test_adherence_is_decided_on_whole_days() -> None:
    assert is_adherent(292, 365)  # exactly 0.80
    assert not is_adherent(291, 365)
    assert not is_adherent(0, 0)
