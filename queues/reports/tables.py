"""The report's figures laid out once, for every format: tidy rows for CSV and titled tables
for HTML and PDF."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from queues.reports.model import PharmacyReport, ProgramReport

Number = int | float | str | None


def tidy_rows(report: ProgramReport) -> Iterator[tuple[str, str, str, str, Number]]:
    """(pharmacy, section, item, metric, value): one figure a row, raw numbers."""
    for s in report.sections:
        p = s.code
        yield p, "summary", "", "patients_called", s.patients_called
        yield p, "summary", "", "patients_reached", s.patients_reached
        yield p, "summary", "", "reach_rate", _round(s.reach_rate)
        yield p, "summary", "", "attempts", s.attempts
        yield p, "summary", "", "attempts_per_reached_patient", _round(s.attempts_per_reached)
        for line in s.campaigns:
            name = line.campaign
            yield p, "campaign", name, "kind", line.kind
            yield p, "campaign", name, "patients_called", line.patients_called
            yield p, "campaign", name, "patients_reached", line.patients_reached
            yield p, "campaign", name, "attempts", line.attempts
        r = s.refills
        yield p, "refills", "", "requested", r.requested
        yield p, "refills", "", "filled", r.filled
        yield p, "refills", "", "fill_rate", _round(r.fill_rate)
        yield p, "refills", "", "median_days_to_fill", _round(r.median_days)
        yield p, "refills", "", "mean_days_to_fill", _round(r.mean_days)
        yield p, "med_sync", "", "enrollments", s.med_sync_enrollments
        yield p, "vaccines", "", "interests", s.vaccine_interests
        for kind, n in s.vaccine_by_kind:
            yield p, "vaccines", kind, "interests", n
        yield p, "escalations", "", "pharmacist_escalations", s.pharmacist_escalations
        yield p, "pdc", "", "available", "yes" if s.pdc.available else "no"
        yield p, "pdc", "", "note", s.pdc.note
        for pdc in s.pdc.lines:
            c = pdc.pqa_class
            yield p, "pdc", c, "patients_start", pdc.patients_start
            yield p, "pdc", c, "patients_end", pdc.patients_end
            yield p, "pdc", c, "mean_start", _round(pdc.mean_start)
            yield p, "pdc", c, "mean_end", _round(pdc.mean_end)
            yield p, "pdc", c, "adherent_start", pdc.adherent_start
            yield p, "pdc", c, "adherent_end", pdc.adherent_end
            yield p, "pdc", c, "crossed_0.80_up", pdc.crossed_up
            yield p, "pdc", c, "crossed_0.80_down", pdc.crossed_down
        yield p, "prescriber_office", "", "calls", s.prescriber_calls
        for o in s.prescriber_outcomes:
            yield p, "prescriber_office", o.disposition, "calls", o.calls
        yield p, "prescriber_office", "", "followups_requested", s.prescriber_followups
        yield p, "policy", "", "calls_outside_policy", s.policy.outside
        yield p, "policy", "", "rule", s.policy.method


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    alarm: bool = False  # a figure that must be zero is not


def period_words(start: date, end: date) -> str:
    """September 1 – November 30, 2026 (the year once when both ends share it)."""
    if start.year == end.year:
        return f"{start:%B} {start.day} – {end:%B} {end.day}, {end.year}"
    return f"{start:%B} {start.day}, {start.year} – {end:%B} {end.day}, {end.year}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def num(value: float | None, places: int = 1) -> str:
    return "–" if value is None else f"{value:.{places}f}"


def tables_for(s: PharmacyReport) -> list[Table]:
    r = s.refills
    out = [
        Table(
            "Summary",
            ("figure", "value"),
            (
                ("Patients called", str(s.patients_called)),
                ("Patients reached", f"{s.patients_reached} ({pct(s.reach_rate)})"),
                ("Calls made", str(s.attempts)),
                ("Attempts per reached patient", num(s.attempts_per_reached, 2)),
                ("Refill requests made", str(r.requested)),
                ("Refill requests filled", f"{r.filled} ({pct(r.fill_rate)})"),
                (
                    "Days from call to fill (median / mean)",
                    f"{num(r.median_days)} / {num(r.mean_days)}",
                ),
                ("Med-sync enrollments", str(s.med_sync_enrollments)),
                ("Vaccine interests recorded", str(s.vaccine_interests)),
                ("Pharmacist escalations", str(s.pharmacist_escalations)),
                ("Calls outside policy (must be 0)", str(s.policy.outside)),
            ),
            alarm=s.policy.outside > 0,
        ),
        Table(
            "By campaign",
            ("campaign", "patients called", "reached", "reach rate", "calls"),
            tuple(
                (
                    c.campaign,
                    str(c.patients_called),
                    str(c.patients_reached),
                    pct(c.reach_rate),
                    str(c.attempts),
                )
                for c in s.campaigns
            ),
        ),
    ]
    if s.vaccine_by_kind:
        out.append(
            Table(
                "Vaccine interests",
                ("vaccine", "interests"),
                tuple((k, str(n)) for k, n in s.vaccine_by_kind),
            )
        )
    out.append(
        Table(
            "PDC by PQA class",
            (
                "class",
                "patients (start/end)",
                "mean PDC start",
                "mean PDC end",
                "adherent start",
                "adherent end",
                "crossed 0.80 up",
                "fell below",
            ),
            tuple(
                (
                    line.pqa_class,
                    f"{line.patients_start}/{line.patients_end}",
                    pct(line.mean_start),
                    pct(line.mean_end),
                    str(line.adherent_start),
                    str(line.adherent_end),
                    str(line.crossed_up),
                    str(line.crossed_down),
                )
                for line in s.pdc.lines
            ),
        )
    )
    out.append(
        Table(
            "Prescriber-office calls",
            ("outcome", "calls"),
            (
                *((o.label, str(o.calls)) for o in s.prescriber_outcomes),
                ("All prescriber-office calls", str(s.prescriber_calls)),
                ("Prescriber follow-ups requested from patient calls", str(s.prescriber_followups)),
            ),
        )
    )
    out.append(
        Table(
            "Calls outside policy",
            ("rule", "calls", "attempt ids"),
            (
                (
                    s.policy.method,
                    str(s.policy.outside),
                    ", ".join(str(i) for i in s.policy.attempt_ids[:50]) or "–",
                ),
            ),
            alarm=s.policy.outside > 0,
        )
    )
    return out
