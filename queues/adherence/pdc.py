"""Proportion of days covered (PDC), PQA method: the one function the rules, console and reports use.

How a period is measured (PQA PDC measures: RASA, statins, diabetes):

- The treatment period starts at the index prescription start date (IPSD), the earliest date of
  service of any drug of the class *in* the period, and ends at the period end. Days before the
  IPSD are in neither the numerator nor the denominator.
- A day is covered when at least one drug of the class is on hand. Fills of the same drug (the same
  ingredient) dispensed on the same day or before the previous supply ran out are shifted forward to
  start the day after it ends; fills of different drugs are not shifted, and a day they share
  counts once.
- Supply that runs past the period end is cut at the period end.

Fills dated before the period (our interpretation; PQA does not cover it). As we read it, the PQA
specifications (and the CMS Part D adherence measures built on them) take the claims whose date of
service is in the measurement period and nothing earlier: the IPSD is the first fill in the period,
and a fill from the year before neither starts the treatment period nor covers days. We did not
have the licensed specification text to check this against. This module, by default
(`carry_in=True`), lets supply on hand from earlier fills *carry into* the period, so a patient is
not marked as missing days when they really had pills at home:

- an earlier fill never moves the IPSD (the period still starts at the first fill dated in it, so
  a patient with no fill in the period is not in the measure at all);
- its supply counts only on days from the IPSD on (before the IPSD nothing counts, as in PQA);
- it takes part in the same-drug shift, so a January refill that overlaps a December fill's supply
  starts after that supply ends.

The result can only be the same as the PQA figure or higher. With `carry_in=False`, fills dated
before the period are left out, which is how we read the measure's reporting rule.
Fills with no days supply cover nothing and do not count as the IPSD. A fill of more than
`MAX_DAYS_SUPPLY` (365) days is not a dispense anyone makes (a typo, or a quantity in the days
column): the functions here refuse it with `SupplyTooLong`, naming the fill, rather than let it cover
a whole period (3,000,000 days would give a PDC of 1.0). The build leaves such a fill out with a
reason in the log (queues.building.rules.snapshot); the imports refuse it.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

from queues.adherence.supply import MAX_DAYS_SUPPLY as MAX_DAYS_SUPPLY
from queues.errors import OutreachError

THRESHOLD = Fraction(4, 5)  # PQA: adherent at PDC >= 0.80


class SupplyTooLong(OutreachError):
    """A fill whose days supply is over MAX_DAYS_SUPPLY: names the fill (its drug and date)."""

    def __init__(self, drug: str, fill_date: date, days_supply: int) -> None:
        self.drug, self.fill_date, self.days_supply = drug, fill_date, days_supply
        super().__init__(
            f"the fill of {drug} on {fill_date.isoformat()} has a days supply of {days_supply}: "
            f"at most {MAX_DAYS_SUPPLY} days per fill"
        )


class FillRecord(NamedTuple):
    """One dispense of a drug of the measure class: `drug` is the ingredient name. A tuple: a
    build makes one per fill of every patient it measures."""

    drug: str
    fill_date: date
    days_supply: int


@dataclass(frozen=True)
class PdcResult:
    period_start: date
    period_end: date
    ipsd: date | None  # None: no fill dated in the period, so the patient is not in the measure
    covered_days: int
    denominator_days: int

    @property
    def in_measure(self) -> bool:
        return self.ipsd is not None

    @property
    def pdc(self) -> float | None:
        if not self.denominator_days:
            return None
        return self.covered_days / self.denominator_days

    @property
    def adherent(self) -> bool:
        # Exact: 292 of 365 days is 0.80, adherent, whatever a float would say.
        return is_adherent(self.covered_days, self.denominator_days)


@dataclass(frozen=True)
class Reach:
    """Can the patient still reach 0.80 by the period end, and what would it take?"""

    to_date: PdcResult  # the PDC from the IPSD through today
    denominator_days: int  # IPSD through the period end
    covered_on_hand: int  # days to the period end already covered by the fills so far
    required_days: int  # covered days that make 0.80 at the period end
    days_needed: int  # more covered days than the supply on hand gives
    days_open: int  # uncovered days from today to the period end: what new fills could cover
    run_out: date | None  # first day without supply of any drug of the class

    @property
    def reachable(self) -> bool:
        return self.to_date.in_measure and self.days_needed <= self.days_open

    @property
    def best_pdc(self) -> float | None:
        """The PDC at the period end if every open day from today on is covered."""
        if not self.denominator_days:
            return None
        return (self.covered_on_hand + self.days_open) / self.denominator_days

    @property
    def share_needed(self) -> float | None:
        """The share of the open days the patient must cover: 0 is there already, above 1 is out
        of reach. The smaller, the closer the patient still is to 0.80."""
        if not self.to_date.in_measure:
            return None
        if self.days_needed == 0:
            return 0.0
        return self.days_needed / self.days_open if self.days_open else float("inf")


def covered_spans(fills: Iterable[FillRecord]) -> list[tuple[date, date]]:
    """Days on hand as merged [first, end) spans: same drug shifted forward, drugs unioned."""
    return [(date.fromordinal(a), date.fromordinal(b)) for a, b in _spans(fills)]


# The build runs this for every patient of every measure class, so the work is done on day
# ordinals (ints): dates and timedeltas cost several times more.
def _spans(fills: Iterable[FillRecord]) -> list[tuple[int, int]]:
    by_drug: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for f in fills:
        if f.days_supply > 0:
            if f.days_supply > MAX_DAYS_SUPPLY:
                raise SupplyTooLong(f.drug, f.fill_date, f.days_supply)
            by_drug[f.drug.strip().lower()].append((f.fill_date.toordinal(), f.days_supply))
    return _merged(by_drug.values())


def _merged(per_drug: Iterable[list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """Each drug's (ordinal, days) fills shifted forward, then all drugs' days unioned."""
    spans: list[tuple[int, int]] = []
    for drug_fills in per_drug:
        drug_fills.sort()
        end = -1
        for filled, days in drug_fills:
            start = filled if filled >= end else end  # PQA: a refill starts when the supply ends
            end = start + days
            spans.append((start, end))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _days_within(spans: list[tuple[int, int]], first: int, last: int) -> int:
    """Days of the spans that fall on first..last (ordinals), both included."""
    stop = last + 1
    return sum(
        min(end, stop) - max(start, first) for start, end in spans if start < stop and end > first
    )


def _usable(
    fills: Iterable[FillRecord], period_start: date, until: date, carry_in: bool
) -> list[FillRecord]:
    return [
        f
        for f in fills
        if f.days_supply > 0 and f.fill_date <= until and (carry_in or f.fill_date >= period_start)
    ]


def index_date(fills: Iterable[FillRecord], period_start: date, period_end: date) -> date | None:
    """The IPSD: the earliest date of service of the class within the period."""
    dates = [
        f.fill_date
        for f in fills
        if f.days_supply > 0 and period_start <= f.fill_date <= period_end
    ]
    return min(dates, default=None)


def pdc_for_class(
    fills: Iterable[FillRecord], period_start: date, period_end: date, *, carry_in: bool = True
) -> PdcResult:
    """The PDC of one measure class over period_start..period_end (both included).

    `fills` are all the fills of the class's drugs (fills after the period change nothing).
    A fill of more than MAX_DAYS_SUPPLY days raises SupplyTooLong.
    """
    if period_end < period_start:
        raise ValueError(f"period ends ({period_end}) before it starts ({period_start})")
    usable = _usable(fills, period_start, period_end, carry_in)
    return _pdc(usable, _spans(usable), period_start, period_end)


def is_adherent(covered_days: int, denominator_days: int) -> bool:
    """PDC >= 0.80 decided on whole numbers, as `PdcResult.adherent` decides it."""
    return denominator_days > 0 and (
        covered_days * THRESHOLD.denominator >= denominator_days * THRESHOLD.numerator
    )


def covered_in_periods(
    fills: Iterable[tuple[str, date, int]], periods: Iterable[tuple[date, date]]
) -> list[tuple[int, int] | None]:
    """(covered days, denominator days) of one class in each period, as `pdc_for_class` with
    carry-in gives them for the fills dated up to that period's end; None: not in the measure.

    `fills` are (drug, fill date, days supply) tuples, all of them up to the last period's end.
    The spans are built once: a fill never moves supply from earlier fills, and its own supply
    starts on or after its date, so fills after a period's end cover no day of that period.
    """
    by_drug: dict[str, list[tuple[int, int]]] = {}
    dated: list[int] = []
    for drug, day, supply in fills:
        if supply > 0:
            if supply > MAX_DAYS_SUPPLY:
                raise SupplyTooLong(drug, day, supply)
            ordinal = day.toordinal()
            dated.append(ordinal)
            key = drug.strip().lower()
            found = by_drug.get(key)
            if found is None:
                by_drug[key] = [(ordinal, supply)]
            else:
                found.append((ordinal, supply))
    spans = _merged(by_drug.values())
    dated.sort()
    out: list[tuple[int, int] | None] = []
    for period_start, period_end in periods:
        if period_end < period_start:
            raise ValueError(f"period ends ({period_end}) before it starts ({period_start})")
        first, last = period_start.toordinal(), period_end.toordinal()
        i = bisect_left(dated, first)  # the IPSD: the first fill dated in the period
        if i == len(dated) or dated[i] > last:
            out.append(None)
        else:
            ipsd = dated[i]
            out.append((_days_within(spans, ipsd, last), last - ipsd + 1))
    return out


def _pdc(
    usable: list[FillRecord], spans: list[tuple[int, int]], period_start: date, period_end: date
) -> PdcResult:
    ipsd = index_date(usable, period_start, period_end)
    if ipsd is None:
        return PdcResult(period_start, period_end, None, 0, 0)
    covered = _days_within(spans, ipsd.toordinal(), period_end.toordinal())
    return PdcResult(period_start, period_end, ipsd, covered, (period_end - ipsd).days + 1)


def reachable_by(
    fills: Iterable[FillRecord],
    period_start: date,
    today: date,
    period_end: date,
    *,
    carry_in: bool = True,
) -> Reach:
    """How the period can still end for a patient, given the fills up to today.

    The supply on hand covers what it covers; every day from today (a fill today still counts
    today) to the period end that it does not cover is open. The patient can still reach 0.80 when
    the covered days still needed fit in the open days.
    """
    if not period_start <= today <= period_end:
        raise ValueError(f"today ({today}) is outside the period {period_start}..{period_end}")
    usable = _usable(fills, period_start, today, carry_in)
    spans = _spans(usable)
    to_date = _pdc(usable, spans, period_start, today)
    run_out = date.fromordinal(spans[-1][1]) if spans else None
    if to_date.ipsd is None:
        return Reach(to_date, 0, 0, 0, 0, 0, run_out)
    denominator = (period_end - to_date.ipsd).days + 1
    end = period_end.toordinal()
    on_hand = _days_within(spans, to_date.ipsd.toordinal(), end)
    required = -(-THRESHOLD.numerator * denominator // THRESHOLD.denominator)  # ceiling
    remaining = (period_end - today).days + 1
    open_days = remaining - _days_within(spans, today.toordinal(), end)
    return Reach(
        to_date, denominator, on_hand, required, max(0, required - on_hand), open_days, run_out
    )


class FillRowError(OutreachError):
    """A bad row in a fills file: names the file, line and field (line 0: the file itself)."""

    def __init__(self, path: str, line: int, field: str, why: str) -> None:
        self.path, self.line, self.field, self.why = path, line, field, why
        where = f"{path}, line {line}" + (f", field {field}" if field else "") if line else path
        super().__init__(f"{where}: {why}")


FILL_COLUMNS = ("drug", "fill_date", "days_supply")


def read_fills_csv(path: Path) -> list[FillRecord]:
    """Fills of one measure class from a CSV with columns drug,fill_date,days_supply.

    Dates are ISO (YYYY-MM-DD); days supply is a whole number of days, 1 to 365. The first bad
    row stops the reading with its file, line and field.
    """
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FillRowError(name, 0, "", f"cannot read the file ({exc.strerror})") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FillRowError(name, line, "", "not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in reader.fieldnames or ()]
        missing = [c for c in FILL_COLUMNS if c not in header]
        if missing:
            raise FillRowError(
                name, 1, missing[0], f"missing column (the header needs {','.join(FILL_COLUMNS)})"
            )
        reader.fieldnames = header
        fills = []
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue  # a blank line
            fills.append(_fill_from_row(name, reader.line_num, row))
    except csv.Error as exc:
        raise FillRowError(name, reader.line_num, "", str(exc)) from None
    return fills


def _fill_from_row(name: str, line: int, row: dict[str, str | None]) -> FillRecord:
    drug = (row.get("drug") or "").strip()
    if not drug:
        raise FillRowError(name, line, "drug", "empty (the ingredient name is needed)")
    raw_date = (row.get("fill_date") or "").strip()
    try:
        fill_date = date.fromisoformat(raw_date)
    except ValueError:
        raise FillRowError(
            name, line, "fill_date", f"{raw_date!r} is not a date (use YYYY-MM-DD)"
        ) from None
    raw_days = (row.get("days_supply") or "").strip()
    try:
        days = int(raw_days)
    except ValueError:
        raise FillRowError(
            name, line, "days_supply", f"{raw_days!r} is not a whole number of days"
        ) from None
    if days < 1:
        raise FillRowError(name, line, "days_supply", f"{days} (must be at least 1 day)")
    if days > MAX_DAYS_SUPPLY:
        raise FillRowError(
            name, line, "days_supply", f"{days} (at most {MAX_DAYS_SUPPLY} days per fill)"
        )
    return FillRecord(drug, fill_date, days)
