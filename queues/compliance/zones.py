"""Where a patient may be: time zones (and states) from a ZIP code and from each phone number.

A ported cell phone can be anywhere, so both sources count: the calling window must be open in
every zone either gives. Lookups are cached; both packages read static data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import zipcodes
from phonenumbers import geocoder, timezone

from queues.compliance.states import STATE_NAMES, US_STATES


@dataclass(frozen=True)
class Place:
    """What one source says: its zones (IANA names) and its state, when it knows them."""

    source: str  # "zip 75201" or "+12145550100"
    zones: tuple[str, ...]
    state: str | None


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=65536)
def place_of_zip(zip_code: str) -> Place:
    """The ZIP's zone and state; no zone when the ZIP is unknown or malformed."""
    five = zip_code.strip()[:5]
    source = f"zip {five}"
    found: list[dict[str, Any]] = []
    if len(five) == 5 and five.isdigit():
        try:
            found = zipcodes.matching(five)  # type: ignore[no-untyped-call]
        except (ValueError, TypeError):
            found = []
    if not found:
        return Place(source, (), None)
    row = found[0]
    zone = row.get("timezone") or ""
    zones = (zone,) if zone and _known_zone(zone) else ()
    state = row.get("state") or None
    return Place(source, zones, state)


def _state_from_description(text: str) -> str | None:
    """phonenumbers' geocoder says "Texas" or "New York, NY" for US numbers."""
    if not text:
        return None
    if "," in text:
        tail = text.rsplit(",", 1)[1].strip()
        if tail in US_STATES:
            return tail
    return STATE_NAMES.get(text.strip())


# A North American number: +1, area code, exchange, line. Where it is (its zones, its state,
# whether it is valid and geographic) is decided by area code and exchange alone in phonenumbers'
# data (tests/queues/test_zones.py checks it), so one lookup serves all 10,000 lines of an
# exchange: a queue of a million patients parses a few thousand numbers, not a million.
_NANP = re.compile(r"\+1[2-9]\d{2}[2-9]\d{6}")
_by_exchange: dict[str, Place] = {}


def place_of_number(number: str) -> Place:
    """The number's zones (an area code may span two) and its area code's state.

    Toll-free and other non-geographic numbers say nothing about where the patient is.
    """
    if _NANP.fullmatch(number):
        exchange = number[:8]
        found = _by_exchange.get(exchange)
        if found is None:
            found = _by_exchange[exchange] = _place_of_number(number)
        return Place(number, found.zones, found.state)
    return _place_of_number(number)


@lru_cache(maxsize=65536)
def _place_of_number(number: str) -> Place:
    try:
        parsed = phonenumbers.parse(number, "US")
    except phonenumbers.NumberParseException:
        return Place(number, (), None)
    if not phonenumbers.is_valid_number(parsed):
        return Place(number, (), None)
    if phonenumbers.number_type(parsed) in (
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.UAN,
        phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
    ):
        return Place(number, (), None)
    zones = tuple(
        z for z in timezone.time_zones_for_number(parsed) if z != "Etc/Unknown" and _known_zone(z)
    )
    state = _state_from_description(geocoder.description_for_number(parsed, "en"))
    return Place(number, zones, state)


def valid_number(number: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, "US"))
    except phonenumbers.NumberParseException:
        return False
