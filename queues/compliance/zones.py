"""Where a patient may be: time zones (and states) from a ZIP code and from each phone number.

A ported cell phone can be anywhere, so both sources count: the calling window must be open in
every zone either gives. Lookups are cached; all the data is static.

What a ZIP and a number's prefix say is read from two small tables in `data/` (made from the
`zipcodes` package and phonenumbers' geocoder by `data/make_tables.py`, checked against them by
tests/queues/test_zone_tables.py), loaded on first use: the packages' own data would hold ~150 MB.
"""

from __future__ import annotations

import gzip
import io
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone
from phonenumbers.phonenumberutil import country_mobile_token, is_number_type_geographical

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


def _table(name: str) -> Iterator[list[str]]:
    """The rows of data/NAME (gzipped, tab-separated, `#` lines are its header), one at a time:
    the ZIP table as a list of lists was ~16 MB of short-lived objects at a console's first
    patient, and the process kept that much more resident memory for the rest of the shift."""
    text = gzip.decompress(files("queues.compliance").joinpath("data", name).read_bytes()).decode()
    for line in io.StringIO(text):
        if not line.startswith("#"):
            yield line.rstrip("\n").split("\t")


@dataclass(frozen=True)
class _Zips:
    codes: array[int]  # every ZIP, ascending
    kinds: array[int]  # for each, its index in `places`
    places: tuple[tuple[tuple[str, ...], str | None], ...]  # (zones, state)


@cache
def _zips() -> _Zips:
    """~43,000 ZIPs in ~0.3 MB: two arrays and the hundred-odd (zones, state) pairs among them."""
    codes, kinds = array("i"), array("B")
    index: dict[tuple[str, str], int] = {}
    for code, state, zone in _table("zips.tsv.gz"):
        codes.append(int(code))
        kinds.append(index.setdefault((state, zone), len(index)))
    places = tuple(
        (((zone,) if zone and _known_zone(zone) else ()), state or None) for state, zone in index
    )
    return _Zips(codes, kinds, places)


@lru_cache(maxsize=65536)
def place_of_zip(zip_code: str) -> Place:
    """The ZIP's zone and state; no zone when the ZIP is unknown or malformed."""
    five = zip_code.strip()[:5]
    source = f"zip {five}"
    if len(five) == 5 and five.isdigit():
        zips, code = _zips(), int(five)
        at = bisect_left(zips.codes, code)
        if at < len(zips.codes) and zips.codes[at] == code:
            zones, state = zips.places[zips.kinds[at]]
            return Place(source, zones, state)
    return Place(source, (), None)


def state_from_description(text: str) -> str | None:
    """phonenumbers' geocoder says "Texas" or "New York, NY" for US numbers."""
    if not text:
        return None
    if "," in text:
        tail = text.rsplit(",", 1)[1].strip()
        if tail in US_STATES:
            return tail
    return STATE_NAMES.get(text.strip())


# In data/phone_states.tsv.gz: the region's name decides / described, but not as a US state.
_COUNTRY, _NONE = "*", "-"


@cache
def _phone_states() -> tuple[dict[str, str], int]:
    """The state of each number prefix where it changes (a few thousand), and the longest prefix.
    Each state's name is kept once: as read, 2,695 rows held 2,175 strings for 54 values."""
    names: dict[str, str] = {}
    table = {
        prefix: names.setdefault(state, state) for prefix, state in _table("phone_states.tsv.gz")
    }
    return table, max(len(p) for p in table if not p.startswith("region:"))


def _region_state(parsed: phonenumbers.PhoneNumber, code: int) -> str | None:
    """What the name of the number's region says (phonenumbers' `country_name_for_number`)."""
    regions = phonenumbers.region_codes_for_country_code(code)
    if len(regions) == 1:
        region = regions[0]
    else:
        valid = [r for r in regions if phonenumbers.is_valid_number_for_region(parsed, r)]
        if len(valid) != 1:
            return None
        region = valid[0]
    return _phone_states()[0].get(f"region:{region}")


def _state_of(parsed: phonenumbers.PhoneNumber) -> str | None:
    """The state phonenumbers' geocoder names for a valid number (`description_for_number`)."""
    code, kind = parsed.country_code or 0, phonenumbers.number_type(parsed)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return None
    if not is_number_type_geographical(kind, code):
        return _region_state(parsed, code)
    national = phonenumbers.national_significant_number(parsed)
    token = country_mobile_token(code)
    if token and national.startswith(token):
        national = national[len(token) :]
    digits = f"{code}{national}"
    table, longest = _phone_states()
    for n in range(min(longest, len(digits)), 0, -1):
        state = table.get(digits[:n])
        if state is not None:
            if state == _COUNTRY:
                break
            return None if state == _NONE else state
    return _region_state(parsed, code)


# A North American number: +1, area code, exchange, line. Where it is (its zones, its state,
# whether it is valid and geographic) is decided by area code and exchange alone in phonenumbers'
# data (tests/queues/test_zones.py checks it), so one lookup serves all 10,000 lines of an
# exchange: a queue of a million patients parses a few thousand numbers, not a million.
_NANP = re.compile(r"\+1[2-9]\d{2}[2-9]\d{6}")
_by_exchange: dict[str, tuple[tuple[str, ...], str | None]] = {}


def place_of_number(number: str) -> Place:
    """The number's zones (an area code may span two) and its area code's state.

    Toll-free and other non-geographic numbers say nothing about where the patient is.
    """
    return Place(number, *where_of_number(number))


def where_of_number(number: str) -> tuple[tuple[str, ...], str | None]:
    """`place_of_number`'s zones and state, without making a Place: a build's calling-rule
    verdicts ask it for every phone of a hundred thousand patients."""
    if _NANP.fullmatch(number):
        exchange = number[:8]
        found = _by_exchange.get(exchange)
        if found is None:
            place = _place_of_number(number)
            found = _by_exchange[exchange] = (place.zones, place.state)
        return found
    place = _place_of_number(number)
    return place.zones, place.state


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
    state = _state_of(parsed)
    return Place(number, zones, state)


def valid_number(number: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, "US"))
    except phonenumbers.NumberParseException:
        return False
