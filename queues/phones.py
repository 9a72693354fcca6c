"""Phone numbers as people read and say them (stored as E.164)."""

from __future__ import annotations

import phonenumbers


def national(e164: str) -> str:
    """(305) 555-0101 for +13055550101; the number as given when it does not parse."""
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.NATIONAL
        )
    except phonenumbers.NumberParseException:
        return e164
