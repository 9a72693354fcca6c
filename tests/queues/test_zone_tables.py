"""The compact tables in queues/compliance/data/ say what the packages they were made from say
(`make_tables.py` writes them): every ZIP of `zipcodes`, and phonenumbers' geocoder for every
prefix it describes and an example number of every kind in every region."""

from __future__ import annotations

import contextlib
import random

import phonenumbers
import pytest
import zipcodes
from phonenumbers import PhoneNumberType, geocoder
from phonenumbers.geodata import GEOCODE_DATA

from queues.compliance.zones import (
    Place,
    _known_zone,
    _phone_states,
    _place_of_number,
    _state_of,
    place_of_zip,
    state_from_description,
)


def _zip_as_the_package_says(zip_code: str, rows: dict[str, dict[str, str]]) -> Place:
    """What place_of_zip said when it asked `zipcodes.matching` (ZIP codes are unique there)."""
    five = zip_code.strip()[:5]
    row = rows.get(five) if len(five) == 5 and five.isdigit() else None
    if row is None:
        return Place(f"zip {five}", (), None)
    zone = row.get("timezone") or ""
    zones = (zone,) if zone and _known_zone(zone) else ()
    return Place(f"zip {five}", zones, row.get("state") or None)


def test_every_zip_is_where_the_zipcodes_package_puts_it() -> None:
    rows = {r["zip_code"]: r for r in zipcodes.list_all()}  # type: ignore[no-untyped-call]
    for code in rows:
        assert place_of_zip.__wrapped__(code) == _zip_as_the_package_says(code, rows), code


@pytest.mark.parametrize(
    "zip_code", ["00000", "99999", "00500", "75201-1234", " 75201 ", "7520", "", "abcde", "7520x"]
)
def test_a_zip_the_package_does_not_know_places_nowhere(zip_code: str) -> None:
    rows = {r["zip_code"]: r for r in zipcodes.list_all()}  # type: ignore[no-untyped-call]
    assert place_of_zip.__wrapped__(zip_code) == _zip_as_the_package_says(zip_code, rows)


def _geocoder_state(parsed: phonenumbers.PhoneNumber) -> str | None:
    return state_from_description(geocoder.description_for_number(parsed, "en"))


def _numbers() -> list[phonenumbers.PhoneNumber]:
    """A number under every North American prefix the geocoder knows, under a sample of the rest
    (the rest give a state only by a rare coincidence of names: "Texas, QLD"), and in every
    region an example of every kind."""
    prefixes = sorted(GEOCODE_DATA)
    north_american = [p for p in prefixes if p.startswith("1")]
    elsewhere = random.Random(20261207).sample([p for p in prefixes if p[0] != "1"], 8_000)
    tables = _phone_states()[0]
    texts = [f"+{p}2345678901"[:12] for p in north_american]  # an exchange starts at 2
    texts += [f"+{p}23456789" for p in elsewhere + [p for p in tables if p[0] not in "1r"]]
    numbers = []
    for text in texts:
        with contextlib.suppress(phonenumbers.NumberParseException):
            numbers.append(phonenumbers.parse(text, "US"))
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                numbers.append(example)
    return [n for n in numbers if phonenumbers.is_valid_number(n)]


def test_every_prefix_is_in_the_state_the_geocoder_names() -> None:
    numbers = _numbers()
    assert len(numbers) > 30_000
    for parsed in numbers:
        assert _state_of(parsed) == _geocoder_state(parsed), parsed


def test_a_number_in_the_demo_area_codes_keeps_its_place() -> None:
    assert _place_of_number.__wrapped__("+12145550100") == Place(
        "+12145550100", ("America/Chicago",), "TX"
    )
    assert _place_of_number.__wrapped__("+17875550100").state == "PR"
