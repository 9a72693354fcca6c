"""One row reader per kind of CSV file (patients, phones, prescriptions, fills): the line by line
path of queues.imports.csv_files, which reads any file and names each bad value at its line.
Made per file by READERS[kind](column index, default days supply); each reads a line's values
(as the csv module gives them) into the batch by the checks of queues.imports.csv_values.
Kept apart from the column path (queues.imports.csv_columns), which must read a clean file the
same way.
"""

from __future__ import annotations

from collections.abc import Callable

from queues.imports.csv_values import (
    MEMO_LIMIT,
    PHONE_KINDS,
    Bad,
    days_supplies,
    flag_value,
    identifier,
    iso_dates,
    numbers,
    patient_values,
    phone_number,
    text,
)
from queues.imports.records import Batch, FillRec, PatientRec, PhoneRec, PrescriptionRec
from queues.imports.rxnorm import DrugClass, classify

# A row reader: the line's values (as the csv module gives them, not stripped) into the batch;
# returns the record's key. Made per file by READERS[kind](index, default days supply).
RowReader = Callable[[list[str], Batch], str]


def _column(index: dict[str, int], name: str) -> Callable[[list[str]], str]:
    """The stripped value of column `name` of a row; "" when the file has no such column."""
    at = index.get(name)
    if at is None:
        return lambda _values: ""
    return lambda values: values[at].strip()


# -- one reader per kind of file -----------------------------------------------------------------
def _patients(index: dict[str, int], _default_days: int) -> RowReader:
    mrn_at = index["mrn"]
    first_at, last_at = index["first_name"], index["last_name"]
    birth_at, zip_at, state_at = index["birth_date"], index["zip_code"], index["state"]
    gender, language, deceased = (_column(index, c) for c in ("gender", "language", "deceased"))
    caregiver_name, caregiver_relation, caregiver_phone, caregiver_authorized = (
        _column(index, c)
        for c in ("caregiver_name", "caregiver_relation", "caregiver_phone", "caregiver_authorized")
    )
    consent, tobacco, hospice, esrd = (
        _column(index, c) for c in ("consent_to_call", "tobacco_use", "hospice", "esrd")
    )
    zip_codes, states, languages, birth_date = patient_values()

    def read(values: list[str], batch: Batch) -> str:
        mrn = identifier(values[mrn_at].strip(), "mrn")
        zip_ = zip_codes(values[zip_at].strip())
        state_ = states(values[state_at].strip())
        language_ = languages(language(values))
        phone_given = caregiver_phone(values)
        phone = phone_number(phone_given) if phone_given else None
        if phone_given and phone is None:
            raise Bad("caregiver_phone", "not a phone number")
        birth = birth_date(values[birth_at].strip())
        batch.patients[mrn] = PatientRec(
            mrn,
            text(values[first_at].strip(), "first_name", 100),
            text(values[last_at].strip(), "last_name", 100),
            birth,
            zip_,
            state_,
            gender=text(gender(values), "gender", 16, required=False) or None,
            language=language_,
            deceased=flag_value(deceased(values), "deceased"),
            caregiver_name=text(caregiver_name(values), "caregiver_name", 200, False) or None,
            caregiver_relation=text(caregiver_relation(values), "caregiver_relation", 64, False)
            or None,
            caregiver_phone=phone,
            caregiver_authorized=flag_value(caregiver_authorized(values), "caregiver_authorized"),
            consent_to_call=flag_value(consent(values), "consent_to_call", None),
            tobacco_use=flag_value(tobacco(values), "tobacco_use"),
            hospice=flag_value(hospice(values), "hospice"),
            esrd=flag_value(esrd(values), "esrd"),
        )
        return mrn

    return read


def _phones(index: dict[str, int], _default_days: int) -> RowReader:
    mrn_at, number_at = index["mrn"], index["number"]
    kind_of, rank_of = _column(index, "kind"), _column(index, "rank")
    ranks = numbers("rank", high=1000, whole=True)

    def read(values: list[str], batch: Batch) -> str:
        mrn = identifier(values[mrn_at].strip(), "mrn")
        number = phone_number(text(values[number_at].strip(), "number", 40))
        if number is None:
            raise Bad("number", "not a phone number")
        kind = (kind_of(values) or "mobile").lower()
        if kind not in PHONE_KINDS:
            raise Bad("kind", f"not one of {', '.join(PHONE_KINDS)}")
        rank = rank_of(values)
        phones = batch.phones.setdefault(mrn, [])
        if phones:
            phones[:] = [p for p in phones if p.number != number]
        phones.append(PhoneRec(mrn, number, kind, int(ranks(rank)) if rank else 0))
        return f"{mrn}|{number}"

    return read


def _prescriptions(index: dict[str, int], _default_days: int) -> RowReader:
    mrn_at, rx_at, name_at = index["mrn"], index["rx_id"], index["drug_name"]
    rxnorm_of, refills_of, written_of = (
        _column(index, c) for c in ("rxnorm", "refills_left", "written_on")
    )
    active_of, chronic_of, prescriber_of = (
        _column(index, c) for c in ("active", "chronic", "prescriber")
    )
    refill_counts = numbers("refills_left", high=99, whole=True)
    written_days = iso_dates("written_on")
    drugs: dict[tuple[str | None, str], DrugClass] = {}

    def read(values: list[str], batch: Batch) -> str:
        mrn = identifier(values[mrn_at].strip(), "mrn")
        rx_id = identifier(values[rx_at].strip(), "rx_id")
        name = text(values[name_at].strip(), "drug_name", 200)
        rxnorm = text(rxnorm_of(values), "rxnorm", 20, required=False) or None
        drug = drugs.get((rxnorm, name))
        if drug is None:
            drug = classify(rxnorm, name)
            if len(drugs) < MEMO_LIMIT:
                drugs[(rxnorm, name)] = drug
        refills = refills_of(values)
        refills_left = int(refill_counts(refills)) if refills else 0
        written = written_of(values)
        key = f"{mrn}|{rx_id}"
        batch.prescriptions[key] = PrescriptionRec(
            rx_id,
            mrn,
            name,
            drug.ingredient,
            rxnorm,
            drug.pqa_class,
            flag_value(chronic_of(values), "chronic", drug.chronic),
            refills_left,
            written_days(written) if written else None,
            flag_value(active_of(values), "active", True),
            text(prescriber_of(values), "prescriber", 200, required=False) or None,
        )
        return key

    return read


def _fills(index: dict[str, int], default_days: int) -> RowReader:
    mrn_at, rx_at, fill_at, date_at = (
        index["mrn"], index["rx_id"], index["fill_id"], index["fill_date"]
    )  # fmt: skip
    days_of, quantity_of = _column(index, "days_supply"), _column(index, "quantity")
    fill_days = iso_dates("fill_date")
    supplies, quantities = days_supplies(), numbers("quantity")

    def read(values: list[str], batch: Batch) -> str:
        mrn = identifier(values[mrn_at].strip(), "mrn")
        rx_id = identifier(values[rx_at].strip(), "rx_id")
        fill_id = identifier(values[fill_at].strip(), "fill_id")
        when = values[date_at].strip()
        if not when:
            raise Bad("fill_date", "empty")
        day = fill_days(when)
        days = days_of(values)
        quantity = quantity_of(values)
        key = f"{mrn}|{rx_id}"
        fill_key = f"{key}|{fill_id}"
        batch.fills[fill_key] = FillRec(
            fill_id,
            key,
            day,
            supplies(days) if days else default_days,
            quantities(quantity) if quantity else 0.0,
            estimated=not days,
        )
        return fill_key

    return read


READERS: dict[str, Callable[[dict[str, int], int], RowReader]] = {
    "patients": _patients,
    "phones": _phones,
    "prescriptions": _prescriptions,
    "fills": _fills,
}
