"""A BPO's clients: add a pharmacy, change its settings, list them (`outreach pharmacy …`).

Adding and changing is an admin's (audited as them); a supervisor lists their own pharmacies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.access import acting_scope, require_role
from queues.audit import record
from queues.compliance.zones import place_of_number, valid_number
from queues.errors import OutreachError
from queues.store.models import Pharmacy
from queues.views.user import SignedInUser

CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True)
class PharmacyView:
    code: str
    name: str
    timezone: str
    caller_id: str
    callback_number: str
    state: str
    opens_at: str
    closes_at: str
    priority: int
    endpoint_url: str | None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PharmacyChanges:
    """What `pharmacy add` or `set` was given; None: not given."""

    name: str | None = None
    timezone: str | None = None
    caller_id: str | None = None
    callback_number: str | None = None
    state: str | None = None
    opens_at: str | None = None
    closes_at: str | None = None
    priority: int | None = None
    endpoint_url: str | None = None  # "" clears it


def _view(p: Pharmacy) -> PharmacyView:
    return PharmacyView(
        p.code,
        p.name,
        p.timezone,
        p.caller_id,
        p.callback_number,
        p.state,
        p.opens_at.strftime("%H:%M"),
        p.closes_at.strftime("%H:%M"),
        p.priority,
        p.endpoint_url,
    )


def _checked(c: PharmacyChanges) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.name is not None:
        if not c.name.strip() or len(c.name) > 200:
            raise OutreachError("--name: give a name of 1 to 200 characters")
        out["name"] = c.name.strip()
    if c.timezone is not None:
        try:
            ZoneInfo(c.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise OutreachError(
                f"--timezone: {c.timezone!r} is not a time zone like America/Chicago"
            ) from None
        if c.timezone not in available_timezones():
            raise OutreachError(f"--timezone: {c.timezone!r} is not an IANA time zone name")
        out["timezone"] = c.timezone
    for key, flag in (("caller_id", "--caller-id"), ("callback_number", "--callback-number")):
        value = getattr(c, key)
        if value is not None:
            if not re.fullmatch(r"\+[1-9]\d{7,14}", value) or not valid_number(value):
                raise OutreachError(
                    f"{flag}: {value!r} is not a phone number in E.164 (+12145550100)"
                )
            out[key] = value
    if c.state is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", c.state):
            raise OutreachError(f"--state: {c.state!r} is not a 2-letter state")
        out["state"] = c.state.upper()
    for key, flag in (("opens_at", "--opens"), ("closes_at", "--closes")):
        value = getattr(c, key)
        if value is not None:
            try:
                out[key] = time.fromisoformat(value)
            except ValueError:
                raise OutreachError(f"{flag}: {value!r} is not a time like 08:00") from None
    if c.priority is not None:
        out["priority"] = c.priority
    if c.endpoint_url is not None:
        url = c.endpoint_url.strip()
        if url and not re.match(r"https?://[^/\s]+", url):
            raise OutreachError(f"--endpoint: {url!r} is not an http(s) URL")
        if url:
            # Refused now rather than at every delivery (where its actions would only wait). The
            # outbox's rule, imported here only: it loads httpx.
            from queues.outbox.delivery import endpoint_problem

            if why := endpoint_problem(url):
                raise OutreachError(f"--endpoint: {url!r} {why}")
        out["endpoint_url"] = url or None
    return out


def add_pharmacy(
    session: Session, code: str, changes: PharmacyChanges, *, by: SignedInUser
) -> PharmacyView:
    require_role(by, ("admin",), "add pharmacies")
    if not CODE.fullmatch(code):
        raise OutreachError(f"CODE: {code!r}: use 1 to 32 letters, digits, - or _")
    if session.scalar(select(Pharmacy.id).where(Pharmacy.code == code)) is not None:
        raise OutreachError(
            f"pharmacy {code} exists already; change it with `outreach pharmacy set`"
        )
    values = _checked(changes)
    for key, flag in (("name", "--name"), ("timezone", "--timezone"), ("caller_id", "--caller-id")):
        if key not in values:
            raise OutreachError(f"{flag} is required")
    values.setdefault("callback_number", values["caller_id"])
    if "state" not in values:
        state = place_of_number(values["caller_id"]).state
        if state is None:
            raise OutreachError("--state: the caller ID's area code names no state; give --state")
        values["state"] = state
    values.setdefault("opens_at", time(9))
    values.setdefault("closes_at", time(18))
    values.setdefault("priority", 0)
    pharmacy = Pharmacy(code=code, **values)
    session.add(pharmacy)
    session.flush()
    record(session, "pharmacy_added", user_id=by.id, detail={"pharmacy": code})
    return _view(pharmacy)


def set_pharmacy(
    session: Session, code: str, changes: PharmacyChanges, *, by: SignedInUser
) -> PharmacyView:
    require_role(by, ("admin",), "change pharmacies")
    pharmacy = session.scalar(select(Pharmacy).where(Pharmacy.code == code))
    if pharmacy is None:
        raise OutreachError(f"no pharmacy {code!r}; see `outreach pharmacy list`")
    values = _checked(changes)
    if not values:
        raise OutreachError("nothing to change: give at least one option (see --help)")
    for key, value in values.items():
        setattr(pharmacy, key, value)
    session.flush()
    record(
        session, "pharmacy_changed", user_id=by.id, detail={"pharmacy": code, "set": sorted(values)}
    )
    return _view(pharmacy)


def list_pharmacies(session: Session, by: SignedInUser) -> list[PharmacyView]:
    """The pharmacies `by` acts on: a supervisor's own, every one for an admin."""
    require_role(by, ("supervisor", "admin"), "list pharmacies")
    scope = acting_scope(session, by)
    query = select(Pharmacy).where(Pharmacy.id.in_(scope.pharmacy_ids)).order_by(Pharmacy.code)
    return [_view(p) for p in session.scalars(query)]
