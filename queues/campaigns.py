"""A pharmacy's outreach programs (`outreach campaigns …`, and the standard set `pharmacy add`
gives a new client): list them, add one or the standard set, change one.

A campaign names its kind (which rule in queues.building.rules makes its tasks), script, weight,
attempt limit and whether it is active; it runs for one pharmacy or (no pharmacy) for all. The
build gives a patient the work of their pharmacy's own campaign of a kind, else the one all
pharmacies share (queues.building.rules.snapshot): a pharmacy with neither gets no tasks of that
kind. Adding and changing is an admin's, audited as them; a supervisor lists their own pharmacies'.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.audit import record
from queues.errors import NotAllowed, OutreachError
from queues.settings import QueueSettings
from queues.store.models import Campaign, Pharmacy
from queues.views.user import SignedInUser

# The programs every pharmacy is offered, as the demo runs them: (kind, name, weight, attempts).
# The kind is also the script's id (scripts_library/flows/<kind>.toml, or the kind's own flows).
STANDARD: tuple[tuple[str, str, float, int], ...] = (
    ("refill_reminder", "Refill reminder", 1.0, 3),
    ("med_sync_enrollment", "Med-sync enrollment", 0.6, 2),
    ("pre_sync_check", "Pre-sync check", 1.1, 3),
    ("post_dispense", "New-start follow-up", 0.9, 2),
    ("adherence", "Adherence (PQA)", 1.2, 3),
    ("vaccine", "Vaccine outreach", 0.5, 2),
    ("diabetes_education", "Diabetes education", 0.4, 2),
    ("smoking_cessation", "Smoking cessation", 0.4, 2),
)
# The kinds the build's rules make tasks for: a campaign of another kind would never get one.
KINDS = tuple(kind for kind, *_ in STANDARD)
ALL = "all"  # a campaign every pharmacy shares, in the CLI's words


@dataclass(frozen=True)
class CampaignView:
    id: int
    pharmacy: str  # a pharmacy's code, or "all"
    kind: str
    name: str
    script_id: str
    weight: float
    attempt_limit: int
    active: bool

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CampaignChanges:
    """What `campaigns add` or `set` was given; None: not given (add: the standard's value)."""

    name: str | None = None
    script_id: str | None = None
    weight: float | None = None
    attempt_limit: int | None = None
    active: bool | None = None


def _a(role: str) -> str:
    return f"an {role}" if role[:1] in "aeiou" else f"a {role}"


def _require(user: SignedInUser, roles: tuple[str, ...], doing: str) -> None:
    if user.role not in roles:
        needed = " or ".join(_a(r) for r in roles)
        raise NotAllowed(f"{user.username} is {_a(user.role)}; to {doing} you must be {needed}")


def _codes(session: Session) -> dict[int, str]:
    return {pid: code for pid, code in session.execute(select(Pharmacy.id, Pharmacy.code))}


def _view(c: Campaign, codes: dict[int, str]) -> CampaignView:
    return CampaignView(
        c.id,
        ALL if c.pharmacy_id is None else codes[c.pharmacy_id],
        c.kind,
        c.name,
        c.script_id,
        c.weight,
        c.attempt_limit,
        c.active,
    )


def _pharmacy_id(session: Session, code: str) -> int | None:
    """The pharmacy's id, None for "all"; a clear error for a code that names none."""
    if code == ALL:
        return None
    found = session.scalar(select(Pharmacy.id).where(Pharmacy.code == code))
    if found is None:
        raise OutreachError(f"--pharmacy: no pharmacy {code!r}; see `outreach pharmacy list`")
    return found


def _checked(c: CampaignChanges) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.name is not None:
        if not c.name.strip() or len(c.name) > 200:
            raise OutreachError("--name: give a name of 1 to 200 characters")
        out["name"] = c.name.strip()
    if c.script_id is not None:
        if not c.script_id.strip() or len(c.script_id) > 64:
            raise OutreachError("--script: give a flow id of 1 to 64 characters")
        out["script_id"] = c.script_id.strip()
    if c.weight is not None:
        if not 0 <= c.weight <= 10:
            raise OutreachError(f"--weight: {c.weight}: use a number from 0 to 10")
        out["weight"] = c.weight
    if c.attempt_limit is not None:
        if not 1 <= c.attempt_limit <= 20:
            raise OutreachError(f"--attempts: {c.attempt_limit}: use a whole number from 1 to 20")
        out["attempt_limit"] = c.attempt_limit
    if c.active is not None:
        out["active"] = c.active
    return out


def list_campaigns(
    session: Session, by: SignedInUser, pharmacy: str | None = None
) -> list[CampaignView]:
    """Campaigns, by pharmacy then kind ("all" first): an admin's every one, a supervisor's
    those of their pharmacies and those all pharmacies share; `pharmacy` narrows to one code
    (with the shared ones that reach it) or to "all"."""
    _require(by, ("supervisor", "admin"), "list campaigns")
    codes = _codes(session)
    query = select(Campaign)
    if pharmacy is not None:
        pid = _pharmacy_id(session, pharmacy)
        query = query.where(
            Campaign.pharmacy_id.is_(None)
            if pid is None
            else (Campaign.pharmacy_id == pid) | Campaign.pharmacy_id.is_(None)
        )
    views = [_view(c, codes) for c in session.scalars(query)]
    if by.role != "admin":
        mine = set(by.pharmacy_codes)
        if pharmacy is not None and pharmacy != ALL and pharmacy not in mine:
            raise NotAllowed(f"{by.username} is not assigned to pharmacy {pharmacy}")
        views = [v for v in views if v.pharmacy == ALL or v.pharmacy in mine]
    return sorted(views, key=_listed_order)


def _listed_order(v: CampaignView) -> tuple[bool, str, int, int]:
    """The shared ones first, then by pharmacy; within one, the kinds in the standard's order."""
    kind = KINDS.index(v.kind) if v.kind in KINDS else len(KINDS)
    return (v.pharmacy != ALL, v.pharmacy, kind, v.id)


def add_standard_campaigns(
    session: Session, pharmacy: str, *, by: SignedInUser
) -> list[CampaignView]:
    """The standard programs for one pharmacy, each kind it does not run yet, neither as its own
    nor as one all pharmacies share (a shared one already gives it that work; adding its own
    would take the work over from it). Returns what was added (nothing, run twice)."""
    _require(by, ("admin",), "add campaigns")
    pid = _pharmacy_id(session, pharmacy)
    if pid is None:
        raise OutreachError("--standard: name one pharmacy, not all (add shared ones by --kind)")
    running = set(
        session.scalars(
            select(Campaign.kind).where(
                (Campaign.pharmacy_id == pid) | Campaign.pharmacy_id.is_(None)
            )
        )
    )
    added = [
        Campaign(pharmacy_id=pid, kind=kind, name=name, script_id=kind, weight=weight,
                 attempt_limit=limit, active=True)
        for kind, name, weight, limit in STANDARD
        if kind not in running
    ]  # fmt: skip
    session.add_all(added)
    session.flush()
    for c in added:
        record(session, "campaign_added", user_id=by.id,
               detail={"campaign_id": c.id, "pharmacy": pharmacy, "kind": c.kind})  # fmt: skip
    codes = _codes(session)
    return [_view(c, codes) for c in added]


def add_campaign(
    session: Session, pharmacy: str, kind: str, changes: CampaignChanges, *, by: SignedInUser
) -> CampaignView:
    """One campaign of `kind` for a pharmacy (or "all"), the standard's values where not given.
    A pharmacy runs one campaign of a kind (a second would never get a task)."""
    _require(by, ("admin",), "add campaigns")
    if kind not in KINDS:
        raise OutreachError(f"--kind: {kind!r} is not one of {', '.join(KINDS)}")
    pid = _pharmacy_id(session, pharmacy)
    same = session.scalar(
        select(Campaign.id).where(
            Campaign.kind == kind,
            Campaign.pharmacy_id.is_(None) if pid is None else Campaign.pharmacy_id == pid,
        )
    )
    if same is not None:
        raise OutreachError(
            f"{pharmacy} runs a {kind} campaign already (id {same}); change it with "
            f"`outreach campaigns set {same} …`"
        )
    _, name, weight, limit = next(s for s in STANDARD if s[0] == kind)
    values = {"name": name, "script_id": kind, "weight": weight, "attempt_limit": limit,
              "active": True, **_checked(changes)}  # fmt: skip
    campaign = Campaign(pharmacy_id=pid, kind=kind, **values)
    session.add(campaign)
    session.flush()
    record(session, "campaign_added", user_id=by.id,
           detail={"campaign_id": campaign.id, "pharmacy": pharmacy, "kind": kind})  # fmt: skip
    return _view(campaign, _codes(session))


def set_campaign(
    session: Session,
    campaign_id: int,
    changes: CampaignChanges,
    *,
    by: SignedInUser,
    now: datetime,
    settings: QueueSettings | None = None,
) -> CampaignView:
    """Change a campaign. Pausing, resuming and a new weight go through the floor's controls (the
    queues rebuilt for the patients it reaches, audited as the supervisor's keys are); the name,
    script and attempt limit are written and audited here (the next call uses them)."""
    from queues.floor.controls import set_campaign_active, set_campaign_weight

    _require(by, ("admin",), "change campaigns")
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise OutreachError(f"no campaign {campaign_id}; see `outreach campaigns list`")
    values = _checked(changes)
    if not values:
        raise OutreachError("nothing to change: give at least one option (see --help)")
    # An admin acts on every pharmacy, assigned or not (a pharmacy just added has nobody yet).
    everywhere = replace(by, pharmacy_ids=tuple(_codes(session)))
    plain = {k: v for k, v in values.items() if k in ("name", "script_id", "attempt_limit")}
    if plain:
        for key, value in plain.items():
            setattr(campaign, key, value)
        session.flush()
        record(session, "campaign_changed", user_id=by.id,
               detail={"campaign_id": campaign_id, "set": sorted(plain)})  # fmt: skip
    if "weight" in values and values["weight"] != campaign.weight:
        set_campaign_weight(session, everywhere, campaign_id, values["weight"], now, settings)
    if "active" in values:
        set_campaign_active(session, everywhere, campaign_id, values["active"], now, settings)
    session.refresh(campaign)
    return _view(campaign, _codes(session))
