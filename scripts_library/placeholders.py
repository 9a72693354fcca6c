"""Placeholders a flow's words may use, what each one reveals, and how each is filled in.

Every placeholder has a privacy class: *public* (the pharmacy, the agent), *identity* (who we are
calling) or *health* (drugs, conditions, PDC, the record's birth date). Health needs a passed
identity check; a voicemail may carry only the pharmacy's name and call-back number. The renderer
enforces this for every step it shows, and also refuses words naming the patient's own drugs or
conditions, so a flow cannot leak them as literal text either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from queues.phones import national
from scripts_library.facts import DueItem, Medication, PatientFacts

Privacy = Literal["public", "identity", "health"]
RANK: dict[str, int] = {"public": 0, "identity": 1, "health": 2}
VOICEMAIL_FIELDS = frozenset({"pharmacy.name", "pharmacy.callback_number"})
QUITLINE = "1-800-QUIT-NOW"
PLACEHOLDER_RE = re.compile(r"(?<!\{)\{([a-z_][a-z0-9_.]*)\}(?!\})")


@dataclass(frozen=True)
class FieldSpec:
    privacy: Privacy
    needs: str | None = None  # what the section's subject must provide: rx, pdc, vaccine, sync
    about: str = ""


FIELDS: dict[str, FieldSpec] = {
    "agent.name": FieldSpec("public", about="the agent's display name"),
    "pharmacy.name": FieldSpec("public", about="the pharmacy's name"),
    "pharmacy.callback_number": FieldSpec("public", about="the pharmacy's call-back number"),
    "quitline": FieldSpec("public", about="the national quitline, 1-800-QUIT-NOW"),
    "patient.first_name": FieldSpec("identity"),
    "patient.last_name": FieldSpec("identity"),
    "patient.full_name": FieldSpec("identity"),
    "caregiver.name": FieldSpec("identity"),
    "caregiver.relation": FieldSpec("identity"),
    "patient.age": FieldSpec("health"),
    "patient.birth_date": FieldSpec("health", about="never before verification: it verifies"),
    "meds.chronic": FieldSpec("health", about="the chronic medications, comma separated"),
    "meds.count": FieldSpec("health", about="how many chronic medications"),
    "rx.drug": FieldSpec("health", "rx"),
    "rx.run_out": FieldSpec("health", "rx"),
    "rx.last_fill": FieldSpec("health", "rx"),
    "rx.days_supply": FieldSpec("health", "rx"),
    "rx.refills_left": FieldSpec("health", "rx"),
    "pdc.percent": FieldSpec("health", "pdc"),
    "pdc.class": FieldSpec("health", "pdc"),
    "vaccine.name": FieldSpec("health", "vaccine"),
    "sync.date": FieldSpec("health", "sync"),
}
# What each campaign kind's subject provides to its section.
KIND_PROVIDES: dict[str, frozenset[str]] = {
    "refill_reminder": frozenset({"rx"}),
    "post_dispense": frozenset({"rx"}),
    "adherence": frozenset({"pdc"}),
    "vaccine": frozenset({"vaccine"}),
    "pre_sync_check": frozenset({"sync"}),
}

MONTHS_ES = tuple(
    [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ]
)
VACCINES = {
    "zoster": {"en": "shingles vaccine", "es": "vacuna contra el herpes zóster (culebrilla)"},
    "pneumococcal": {"en": "pneumonia vaccine", "es": "vacuna contra la neumonía"},
    "rsv": {"en": "RSV vaccine", "es": "vacuna contra el virus respiratorio sincitial (VRS)"},
    "influenza": {"en": "flu shot", "es": "vacuna contra la gripe"},
}
PDC_CLASSES = {
    "RASA": {"en": "blood pressure medicine", "es": "medicina para la presión"},
    "STATIN": {"en": "cholesterol medicine", "es": "medicina para el colesterol"},
    "DIABETES": {"en": "diabetes medicine", "es": "medicina para la diabetes"},
}
FALLBACK = {
    "rx": {"en": "your medication", "es": "su medicamento"},
    "date": {"en": "soon", "es": "pronto"},
}
# Words that name a drug or a condition: lint refuses them as literal text where health
# information may not go. Not a formulary; the engine adds the patient's own drugs and conditions.
HEALTH_TERMS = frozenset(
    """
    lisinopril losartan valsartan olmesartan irbesartan benazepril enalapril ramipril amlodipine
    atorvastatin simvastatin rosuvastatin pravastatin lovastatin metformin glipizide glimepiride
    glyburide sitagliptin pioglitazone empagliflozin dapagliflozin canagliflozin liraglutide
    semaglutide dulaglutide insulin levothyroxine metoprolol carvedilol hydrochlorothiazide
    furosemide warfarin apixaban rivaroxaban clopidogrel sertraline fluoxetine escitalopram
    citalopram bupropion trazodone gabapentin omeprazole pantoprazole albuterol fluticasone
    montelukast prednisone varenicline nicotine tamoxifen methotrexate
    diabetes diabetic hypertension cholesterol hyperlipidemia depression anxiety asthma copd
    cancer hiv hepatitis dementia schizophrenia bipolar epilepsy
    diabético diabética hipertensión colesterol depresión ansiedad asma cáncer vih hepatitis
    """.split()  # noqa: SIM905
)


class PrivacyViolation(Exception):
    """A step would show health information where it may not go; the step is not shown."""


@dataclass(frozen=True)
class Scope:
    """Everything one step's words may be filled from."""

    facts: PatientFacts
    language: str
    item: DueItem | None = None
    verified: bool = False
    voicemail: bool = False


def placeholders_in(text: str) -> list[str]:
    return PLACEHOLDER_RE.findall(text)


def provided_by(subjects: tuple[str, ...]) -> frozenset[str]:
    """What every subject a section covers provides (a section must work for each of them)."""
    sets = [KIND_PROVIDES.get(s.split(":", 1)[0], frozenset()) for s in subjects]
    if not sets:
        return frozenset()
    out = sets[0]
    for s in sets[1:]:
        out &= s
    return out


def allowed(name: str, *, verified: bool, voicemail: bool) -> str | None:
    """Why `name` may not be shown here, or None when it may."""
    spec = FIELDS.get(name)
    if spec is None:
        return f"{{{name}}} is not a placeholder the patient context has"
    if voicemail and name not in VOICEMAIL_FIELDS:
        return (
            f"{{{name}}} in a voicemail: a voicemail may use only {{pharmacy.name}} and "
            "{pharmacy.callback_number}"
        )
    if spec.privacy == "health" and not verified:
        return f"{{{name}}} is health information and identity is not verified yet"
    return None


def health_terms_in(text: str, extra: frozenset[str] = frozenset()) -> list[str]:
    words = set(re.findall(r"[a-záéíóúñü]+", text.lower()))
    found = sorted(words & (HEALTH_TERMS | extra))
    lowered = text.lower()
    found += sorted(t for t in extra if " " in t and t in lowered)
    return found


def patient_terms(facts: PatientFacts) -> frozenset[str]:
    """The patient's own drug names (first word) and conditions, to catch literal leaks."""
    terms = {m.drug_name.split()[0].lower() for m in facts.medications if m.drug_name.strip()}
    terms |= {c.lower() for c in facts.conditions if c.strip()}
    return frozenset(t for t in terms if len(t) >= 4)


def render(template: str, scope: Scope) -> str:
    """Fill a step's words; PrivacyViolation when they would reveal what they may not."""
    for name in placeholders_in(template):
        why = allowed(name, verified=scope.verified, voicemail=scope.voicemail)
        if why:
            raise PrivacyViolation(why)
    text = PLACEHOLDER_RE.sub(lambda m: value_of(m.group(1), scope), template)
    text = text.replace("{{", "{").replace("}}", "}")
    if scope.voicemail or not scope.verified:
        leaked = health_terms_in(text, patient_terms(scope.facts))
        if leaked:
            where = "a voicemail" if scope.voicemail else "a step before identity is verified"
            raise PrivacyViolation(f"{where} would say {', '.join(leaked)}")
    return text


def format_date(d: date | None, language: str) -> str:
    if d is None:
        return FALLBACK["date"][language]
    if language == "es":
        return f"{d.day} de {MONTHS_ES[d.month - 1]}"
    return f"{d:%B} {d.day}"


# How a date is typed in each call language: the one order the agent is shown (the verify and date
# prompts), the one the engine's parse_date accepts besides ISO, and the one its error names.
DATE_ORDER = {"en": "MM/DD/YYYY", "es": "DD/MM/AAAA"}
DATE_HINT = {"en": "MM/DD/YYYY or 1955-04-01", "es": "DD/MM/AAAA o 1955-04-01"}


def date_hint(language: str) -> str:
    return DATE_HINT.get(language, DATE_HINT["en"])


# What the identity check says to the agent, in the call's language (as parse_date's error is).
VERIFY_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "verified": "identity verified ({who})",
        "verified_head": "identity verified",
        "not_verified": "identity not verified",
        "failed": "not verified: {why}",
        "tries": "{why}; {left} more try",
        "tries_many": "{why}; {left} more tries",
        "mismatch": "the name or the date of birth does not match the record",
        "caregiver_mismatch": (
            "the caregiver's name or the patient's date of birth does not match the record"
        ),
        "no_caregiver": "no caregiver is authorized on this patient's record",
        "not_a_check": "this step is not an identity check",
        "patient": "patient",
        "caregiver": "caregiver",
    },
    "es": {
        "verified": "identidad verificada ({who})",
        "verified_head": "identidad verificada",
        "not_verified": "identidad no verificada",
        "failed": "identidad no verificada: {why}",
        "tries": "{why}; queda {left} intento más",
        "tries_many": "{why}; quedan {left} intentos más",
        "mismatch": "el nombre o la fecha de nacimiento no coincide con el registro",
        "caregiver_mismatch": (
            "el nombre del cuidador o la fecha de nacimiento del paciente no coincide con el "
            "registro"
        ),
        "no_caregiver": "ningún cuidador está autorizado en el registro de este paciente",
        "not_a_check": "este paso no es una verificación de identidad",
        "patient": "paciente",
        "caregiver": "cuidador",
    },
}


def verify_words(language: str) -> dict[str, str]:
    """The identity check's messages in that language; English for a language without them."""
    return VERIFY_WORDS.get(language, VERIFY_WORDS["en"])


def numeric_date(d: date, language: str) -> str:
    """The date as a person of that language writes it: 07/06/1935 (en), 06/07/1935 (es)."""
    return f"{d:%d/%m/%Y}" if language == "es" else f"{d:%m/%d/%Y}"


def shown_date(d: date, language: str) -> str:
    """A date on screen the patient's way, so the agent compares what they hear without turning
    it round: 'Jul 06, 1935 (07/06/1935)' for an English speaker, '06/07/1935 (day/month)' for a
    Spanish one, whose order would otherwise be misread."""
    if language == "es":
        return f"{numeric_date(d, 'es')} (day/month)"
    return f"{d:%b %d, %Y} ({numeric_date(d, 'en')})"


def _medication(scope: Scope) -> Medication | None:
    item = scope.item
    if item is None:
        return None
    found = scope.facts.medication(item.prescription_id)
    if found is None and item.subject.startswith("newstart:"):
        ingredient = item.subject.split(":")[1].lower()
        found = next(
            (m for m in scope.facts.medications if ingredient in m.drug_name.lower()), None
        )
    return found


def _subject_part(scope: Scope, n: int) -> str:
    parts = scope.item.subject.split(":") if scope.item else []
    return parts[n] if len(parts) > n else ""


def value_of(name: str, scope: Scope) -> str:
    f, lang = scope.facts, scope.language
    rx = _medication(scope) if name.startswith("rx.") else None
    values: dict[str, Any] = {
        "agent.name": lambda: f.agent_name,
        "pharmacy.name": lambda: f.pharmacy_name,
        "pharmacy.callback_number": lambda: national(f.pharmacy_callback),  # as it is said
        "quitline": lambda: QUITLINE,
        "patient.first_name": lambda: f.first_name,
        "patient.last_name": lambda: f.last_name,
        "patient.full_name": lambda: f.full_name,
        "caregiver.name": lambda: f.caregiver_name or "",
        "caregiver.relation": lambda: f.caregiver_relation or "",
        "patient.age": lambda: str(f.age),
        "patient.birth_date": lambda: (
            format_date(f.birth_date, lang)
            + (f" de {f.birth_date.year}" if lang == "es" else f", {f.birth_date.year}")
        ),
        "meds.chronic": lambda: ", ".join(m.drug_name for m in f.medications if m.chronic),
        "meds.count": lambda: str(sum(1 for m in f.medications if m.chronic)),
        "rx.drug": lambda: rx.drug_name if rx else FALLBACK["rx"][lang],
        "rx.run_out": lambda: format_date(rx.run_out if rx else None, lang),
        "rx.last_fill": lambda: format_date(rx.last_fill if rx else None, lang),
        "rx.days_supply": lambda: str(rx.days_supply or "") if rx else "",
        "rx.refills_left": lambda: str(rx.refills_left) if rx else "",
        "pdc.percent": lambda: _percent(scope),
        "pdc.class": lambda: PDC_CLASSES.get(_subject_part(scope, 1), {}).get(
            lang, _subject_part(scope, 1)
        ),
        "vaccine.name": lambda: VACCINES.get(_subject_part(scope, 1), {}).get(
            lang, _subject_part(scope, 1)
        ),
        "sync.date": lambda: _sync_date(scope),
    }
    getter = values.get(name)
    return str(getter()) if getter else ""


def _percent(scope: Scope) -> str:
    pdc = scope.item.parts.get("pdc") if scope.item else None
    return f"{float(pdc):.0%}" if isinstance(pdc, int | float) else "?"


def _sync_date(scope: Scope) -> str:
    raw = _subject_part(scope, 1)
    try:
        return format_date(date.fromisoformat(raw), scope.language)
    except ValueError:
        return FALLBACK["date"][scope.language]


def fill_detail(template: str, scope: Scope, answers: Mapping[str, Any]) -> str:
    """An action's detail: placeholders and {answer.KEY}; stored for the pharmacy, not spoken."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("answer."):
            value = answers.get(name[len("answer.") :])
            return "" if value is None else str(value)
        return value_of(name, scope)

    return PLACEHOLDER_RE.sub(one, template)


SUBJECT_WORDS = {
    "med_sync": "med-sync enrollment",
    "dsme": "diabetes education",
    "callback_requested": "callback requested",
}


def vaccine_words(name: str, language: str = "en") -> str:
    """'rsv' → 'RSV vaccine': a vaccine as the agent says it."""
    return VACCINES.get(name, {}).get(language, f"{name} vaccine".replace("_", " "))


def subject_words(subject: str) -> str:
    """A task's subject as an agent reads it ('vaccine:influenza:2026' → 'flu shot', 'rx:7:2026-12-05'
    → 'refill due Dec 05'), never its code."""
    kind, _, rest = subject.partition(":")
    parts = rest.split(":") if rest else []
    first = parts[0] if parts else ""

    def on(text: str) -> str:
        try:
            return f"{date.fromisoformat(text):%b %d}"
        except ValueError:
            return ""

    if kind == "vaccine" or kind in VACCINES:
        return vaccine_words(first or kind)
    if kind == "rx":
        due = on(parts[-1]) if parts else ""
        return f"refill due {due}" if due else "refill"
    if kind == "pdc":
        return "adherence: " + PDC_CLASSES.get(first, {}).get("en", "medicine")
    if kind == "newstart":
        return f"new medicine follow-up ({first.lower()})" if first else "new medicine follow-up"
    if kind == "presync":
        when = on(first)
        return f"med-sync check before pickup {when}".strip()
    if kind == "tobacco":
        return "smoking cessation"
    return SUBJECT_WORDS.get(subject, subject.replace(":", " ").replace("_", " "))
