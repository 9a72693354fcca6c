"""Writes the two lookup tables `queues.compliance.zones` reads, from the packages that hold the data.

    .venv/bin/python -m queues.compliance.data.make_tables

- `zips.tsv.gz`: every ZIP code of the `zipcodes` package with its state and time zone (all the
  domain needs of a ZIP; the package's full records cost ~55 MB in memory).
- `phone_states.tsv.gz`: the state phonenumbers' geocoder names for each number prefix (its text,
  read by `zones.state_from_description`), reduced to the prefixes where the state changes;
  `region:XX` lines give the state a region's own name gives ("Puerto Rico"), used when no prefix
  describes a number. The geocoder loads every language's descriptions of every prefix: ~100 MB.

Run it after upgrading `zipcodes` or `phonenumbers` or editing `states.STATE_NAMES`;
tests/queues/test_zone_tables.py fails until then.
"""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

HERE = Path(__file__).parent
# A prefix whose description is empty, or a number no prefix describes: the region's name decides.
COUNTRY = "*"
NONE = "-"  # described, but not as a US state


def _write(path: Path, header: str, rows: list[str]) -> None:
    text = "".join(f"# {line}\n" for line in header.splitlines()) + "".join(f"{r}\n" for r in rows)
    # mtime 0: the same data gives the same bytes.
    path.write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))


def make_zips() -> None:
    import zipcodes

    rows = sorted(
        (r["zip_code"], r.get("state") or "", r.get("timezone") or "")
        for r in zipcodes.list_all()  # type: ignore[no-untyped-call]
    )
    _write(
        HERE / "zips.tsv.gz",
        f"ZIP code, state, time zone: zipcodes {zipcodes.__version__}, written {date.today()} "
        "by make_tables.py",
        ["\t".join(row) for row in rows],
    )


def make_phone_states() -> None:
    import phonenumbers
    from phonenumbers.geocoder import _region_display_name  # type: ignore[attr-defined]
    from phonenumbers.geodata import GEOCODE_DATA

    from queues.compliance.zones import state_from_description

    def state(text: str) -> str:
        return COUNTRY if text == "" else state_from_description(text) or NONE

    regions = sorted(
        (r, s)
        for r in phonenumbers.SUPPORTED_REGIONS
        if (s := state_from_description(_region_display_name(r, "en"))) is not None
    )
    # Where no region's name is a state's, "no state" and "the region's name decides" agree.
    named = {str(phonenumbers.country_code_for_region(r)) for r, _ in regions}

    def same_as_country(prefix: str) -> bool:
        return not any(prefix.startswith(code) for code in named)

    # A prefix without English text is skipped by the geocoder (it tries a shorter one).
    full = {p: state(names["en"]) for p, names in GEOCODE_DATA.items() if "en" in names}
    full = {p: COUNTRY if s == NONE and same_as_country(p) else s for p, s in full.items()}

    def parent(prefix: str) -> str:
        for n in range(len(prefix) - 1, 0, -1):
            if prefix[:n] in full:
                return full[prefix[:n]]
        return COUNTRY

    kept = sorted(p for p, s in full.items() if s != parent(p))
    _write(
        HERE / "phone_states.tsv.gz",
        f"Number prefix (country code first), US state ({NONE}: none, {COUNTRY}: the region's "
        f"name decides): phonenumbers {phonenumbers.__version__} geocoder, English, written "
        f"{date.today()} by make_tables.py",
        [f"{p}\t{full[p]}" for p in kept] + [f"region:{r}\t{s}" for r, s in regions],
    )


if __name__ == "__main__":
    make_zips()
    make_phone_states()
