"""Calling windows, table-driven: federal hours, stricter states, Sundays and holidays, zones from the
ZIP and the number, area codes with two zones, daylight saving, the last minute of a window."""

from __future__ import annotations

from datetime import datetime

import pytest

from queues.compliance import ad_hoc_verdict
from queues.settings import QueueSettings


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# (what, zip, phone, state, moment, callable, codes, next open as ISO with offset or None)
CASES = [
    ("Dallas at noon", "75201", "+12145550100", None, "2026-12-02T12:00-06:00", True, [], None),
    ("federal start minus a minute", "75201", "+12145550100", None,
     "2026-12-02T07:59-06:00", False, ["federal_window"], "2026-12-02T08:00:00-06:00"),
    ("federal start", "75201", "+12145550100", None, "2026-12-02T08:00-06:00", True, [], None),
    ("federal end minus a minute", "75201", "+12145550100", None,
     "2026-12-02T20:59-06:00", True, [], None),
    ("federal end", "75201", "+12145550100", None,
     "2026-12-02T21:00-06:00", False, ["federal_window"], "2026-12-03T08:00:00-06:00"),
    ("Florida end minus a minute", "33101", "+13055550100", None,
     "2026-12-02T19:59-05:00", True, [], None),
    ("Florida ends at 20:00", "33101", "+13055550100", None,
     "2026-12-02T20:00-05:00", False, ["state_window_FL"], "2026-12-03T08:00:00-05:00"),
    ("Oklahoma ends at 20:00", "73102", "+14055550100", None,
     "2026-12-02T20:15-06:00", False, ["state_window_OK"], "2026-12-03T08:00:00-06:00"),
    ("Maryland ends at 20:00", "21201", "+14105550100", None,
     "2026-12-02T20:15-05:00", False, ["state_window_MD"], "2026-12-03T08:00:00-05:00"),
    ("Kentucky starts at 10:00", "40202", "+15025550100", None,
     "2026-12-02T09:59-05:00", False, ["state_window_KY"], "2026-12-02T10:00:00-05:00"),
    ("Connecticut starts at 09:00", "06103", "+18605550100", None,
     "2026-12-02T08:30-05:00", False, ["state_window_CT"], "2026-12-02T09:00:00-05:00"),
    ("Michigan starts at 09:00", "48226", "+13135550100", None,
     "2026-12-02T08:59-05:00", False, ["state_window_MI"], "2026-12-02T09:00:00-05:00"),
    ("Nevada ends at 20:00", "89501", "+17025550100", None,
     "2026-12-02T20:00-08:00", False, ["state_window_NV"], "2026-12-03T09:00:00-08:00"),
    # 775 also reaches Mountain time: at 20:00 Pacific it is 21:00 there.
    ("Nevada 775 spans two zones", "89501", "+17755550100", None,
     "2026-12-02T20:00-08:00", False, ["federal_window", "state_window_NV"],
     "2026-12-03T09:00:00-08:00"),
    ("Alabama on a Saturday", "35203", "+12055550100", None,
     "2026-12-05T12:00-06:00", True, [], None),
    ("Alabama forbids Sundays", "35203", "+12055550100", None,
     "2026-12-06T12:00-06:00", False, ["state_sunday_AL"], "2026-12-07T08:00:00-06:00"),
    ("Mississippi forbids Sundays", "39201", "+16015550100", None,
     "2026-12-06T12:00-06:00", False, ["state_sunday_MS"], "2026-12-07T08:00:00-06:00"),
    ("Mississippi allows holidays", "39201", "+16015550100", None,
     "2026-11-26T12:00-06:00", True, [], None),
    ("Alabama forbids Thanksgiving", "35203", "+12055550100", None,
     "2026-11-26T12:00-06:00", False, ["state_holiday_AL"], "2026-11-27T08:00:00-06:00"),
    # Christmas is a Friday; Saturday is open in Louisiana, Sunday would not be.
    ("Louisiana forbids Christmas", "70112", "+15045550100", None,
     "2026-12-25T12:00-06:00", False, ["state_holiday_LA"], "2026-12-26T08:00:00-06:00"),
    ("Texas has no holiday rule", "75201", "+12145550100", None,
     "2026-12-25T12:00-06:00", True, [], None),
    # A ZIP in one zone, an area code in another: both must be open.
    ("NY address, Los Angeles cell", "10001", "+13105550100", None,
     "2026-12-02T08:30-05:00", False, ["federal_window"], "2026-12-02T11:00:00-05:00"),
    ("Texas address, Florida cell: Florida's hours", "75201", "+13055550100", None,
     "2026-12-02T19:30-06:00", False, ["state_window_FL"], "2026-12-03T08:00:00-06:00"),
    ("Texas address, Florida cell, earlier", "75201", "+13055550100", None,
     "2026-12-02T18:30-06:00", True, [], None),
    # Area codes with two zones: every one of them must be open.
    ("208: Boise and Los Angeles", "83702", "+12085550100", None,
     "2026-12-02T08:30-07:00", False, ["federal_window"], "2026-12-02T09:00:00-07:00"),
    ("907: Anchorage and Adak", "99501", "+19075550100", None,
     "2026-12-02T08:30-09:00", False, ["federal_window"], "2026-12-02T09:00:00-09:00"),
    ("907 later in the morning", "99501", "+19075550100", None,
     "2026-12-02T09:00-09:00", True, [], None),
    ("907 end of Anchorage's window", "99501", "+19075550100", None,
     "2026-12-02T20:59-09:00", True, [], None),
    # Daylight saving: 2026-03-08 and 2026-11-01 in the US; Arizona keeps MST.
    ("spring forward, 07:59 CDT", "75201", "+12145550100", None,
     "2026-03-08T12:59Z", False, ["federal_window"], "2026-03-08T08:00:00-05:00"),
    ("spring forward, 08:00 CDT", "75201", "+12145550100", None, "2026-03-08T13:00Z", True, [], None),
    ("the night before spring forward", "75201", "+12145550100", None,
     "2026-03-07T22:00-06:00", False, ["federal_window"], "2026-03-08T08:00:00-05:00"),
    ("fall back, 13:30Z is 07:30 CST", "75201", "+12145550100", None,
     "2026-11-01T13:30Z", False, ["federal_window"], "2026-11-01T08:00:00-06:00"),
    ("a day before fall back, 13:30Z is 08:30 CDT", "75201", "+12145550100", None,
     "2026-10-31T13:30Z", True, [], None),
    ("Arizona keeps MST", "85004", "+16025550100", None,
     "2026-03-09T14:59Z", False, ["federal_window"], "2026-03-09T08:00:00-07:00"),
    # --state names the address's state when it differs from the ZIP's.
    ("state given: Florida rules", "75201", "+12145550100", "FL",
     "2026-12-02T20:30-06:00", False, ["state_window_FL"],
     "2026-12-03T08:00:00-06:00"),
    ("toll-free number says nothing of place", "75201", "+18005550100", None,
     "2026-12-02T12:00-06:00", True, [], None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("zip_code", "phone", "state", "moment", "ok", "codes", "next_open"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_calling_window(
    zip_code: str,
    phone: str,
    state: str | None,
    moment: str,
    ok: bool,
    codes: list[str],
    next_open: str | None,
) -> None:
    verdict = ad_hoc_verdict(zip_code, phone, at(moment), state=state)
    assert verdict.callable is ok, verdict.reasons
    assert sorted(verdict.codes) == sorted(codes)
    if ok:
        assert verdict.numbers == (phone,)
    else:
        assert verdict.as_json()["next_open_at"] == next_open
        assert all(r.sentence for r in verdict.reasons)


def test_zones_come_from_the_zip_and_every_zone_of_the_number() -> None:
    verdict = ad_hoc_verdict("83702", "+12085550100", at("2026-12-02T12:00-07:00"))
    assert verdict.zones == ("America/Boise", "America/Los_Angeles")
    assert verdict.states == ("ID",)


def test_a_florida_area_code_brings_florida_rules_to_a_texas_address() -> None:
    verdict = ad_hoc_verdict("75201", "+13055550100", at("2026-12-02T12:00-06:00"))
    assert verdict.states == ("TX", "FL")


def test_the_reason_says_the_local_time_it_is() -> None:
    verdict = ad_hoc_verdict("33101", "+13055550100", at("2026-12-02T20:00-05:00"))
    assert "it is Wed 20:00 EST" in verdict.reasons[0].sentence


SITE_CASES = [
    ("site starts at 09:00", QueueSettings(calling_window_start="09:00"),
     "2026-12-02T08:30-06:00", False, ["calling_window"]),
    ("site ends at 19:00", QueueSettings(calling_window_end="19:00"),
     "2026-12-02T19:00-06:00", False, ["calling_window"]),
    ("a looser site window is clamped to the federal one", QueueSettings(calling_window_start="06:00"),
     "2026-12-02T07:00-06:00", False, ["federal_window"]),
    ("no Sundays anywhere", QueueSettings(no_calls_on_sundays=True),
     "2026-12-06T12:00-06:00", False, ["no_sundays"]),
    ("no holidays anywhere", QueueSettings(no_calls_on_holidays=True),
     "2026-12-25T12:00-06:00", False, ["holiday"]),
    ("no holidays, on a working day", QueueSettings(no_calls_on_holidays=True),
     "2026-12-23T12:00-06:00", True, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "moment", "ok", "codes"), [pytest.param(*c[1:], id=c[0]) for c in SITE_CASES]
)
def test_site_settings_tighten_the_window(
    settings: QueueSettings, moment: str, ok: bool, codes: list[str]
) -> None:
    verdict = ad_hoc_verdict("75201", "+12145550100", at(moment), settings=settings)
    assert verdict.callable is ok
    assert list(verdict.codes) == codes


def test_a_holiday_reason_names_the_holiday() -> None:
    verdict = ad_hoc_verdict("70112", "+15045550100", at("2026-12-25T12:00-06:00"))
    assert "Christmas Day" in verdict.reasons[0].sentence
