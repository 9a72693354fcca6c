"""Small hand-written flows for engine and lint tests, written to a temporary library."""

from __future__ import annotations

import textwrap
from pathlib import Path

from scripts_library.library import Library

# The opening's header and greeting, without where the greeting goes next.
GREETING = """
id = "call_opening"
part = "opening"
title = { en = "Hello", es = "Hola" }
languages = ["en", "es"]
start = "greeting"

[steps.greeting]
type = "say"
text.en = "Hello {patient.first_name}, this is {pharmacy.name}."
text.es = "Hola {patient.first_name}, le llamamos de {pharmacy.name}."
"""

OPENING = (
    GREETING
    + """next = "who"

[steps.who]
type = "ask"
key = "reached"
answer = "choice"
text.en = "Who answered?"
text.es = "¿Quién contestó?"
choices = [
  { value = "patient", next = "verify", en = "Patient", es = "Paciente" },
  { value = "caregiver", next = "verify_caregiver", en = "Caregiver", es = "Cuidador" },
  { value = "machine", next = "voicemail", en = "Machine", es = "Máquina" },
]

[steps.verify]
type = "verify"
who = "patient"
text.en = "Full name and date of birth?"
text.es = "¿Nombre completo y fecha de nacimiento?"
passed = "@next"
failed = "sorry"

[steps.verify_caregiver]
type = "verify"
who = "caregiver"
text.en = "Your name and the patient's date of birth?"
text.es = "¿Su nombre y la fecha de nacimiento del paciente?"
passed = "@next"
failed = "sorry"

[steps.sorry]
type = "end"
text.en = "Sorry, call {pharmacy.callback_number}."
text.es = "Lo siento, llame al {pharmacy.callback_number}."
disposition = "refused"

[steps.voicemail]
type = "voicemail"
text.en = "A message from {pharmacy.name}: call {pharmacy.callback_number}."
text.es = "Mensaje de {pharmacy.name}: llame al {pharmacy.callback_number}."
"""
)

# A section with a step of every kind (say, each kind of answer, branch, action).
SECTION = """
id = "kinds"
part = "section"
title = { en = "All kinds", es = "Todos" }
languages = ["en", "es"]
subjects = ["refill_reminder"]
start = "intro"

[steps.intro]
type = "say"
text.en = "About {rx.drug}, out on {rx.run_out}."
text.es = "Sobre {rx.drug}, se acaba el {rx.run_out}."
next = "pills"

[steps.pills]
type = "ask"
key = "pills_left"
answer = "number"
min = 0
max = 90
text.en = "How many pills are left?"
text.es = "¿Cuántas pastillas le quedan?"
next = "since"

[steps.since]
type = "ask"
key = "last_dose"
answer = "date"
text.en = "When did you last take one?"
text.es = "¿Cuándo tomó la última?"
next = "note"

[steps.note]
type = "ask"
key = "note"
answer = "text"
text.en = "Anything to tell the pharmacist?"
text.es = "¿Algo para el farmacéutico?"
next = "refill"

[steps.refill]
type = "ask"
key = "refill"
answer = "yes_no"
text.en = "Refill it?"
text.es = "¿Lo resurtimos?"
yes = "route"
no = "@next"

[steps.route]
type = "branch"
cases = [
  { when = "age >= 65 and answer('pills_left') < 5", next = "urgent" },
  { when = "has_subject('vaccine:zoster')", next = "request" },
]
else = "request"

[steps.urgent]
type = "action"
action = "pharmacist_escalation"
detail = { reason = "almost out", left = "{answer.pills_left}" }
next = "request"

[steps.request]
type = "action"
action = "refill_request"
detail = { drug = "{rx.drug}" }
next = "done"

[steps.done]
type = "say"
text.en = "Sent."
text.es = "Enviado."
next = "@next"
"""

CLOSING = """
id = "call_closing"
part = "closing"
title = { en = "Bye", es = "Adiós" }
languages = ["en", "es"]
requires_verification = false
start = "bye"

[steps.bye]
type = "end"
text.en = "Goodbye."
text.es = "Adiós."
disposition = "completed"
"""


def write_flow(root: Path, name: str, source: str) -> Path:
    """`source` (indented as in a test module) as root/<name>.toml."""
    root.mkdir(exist_ok=True)
    path = root / f"{name}.toml"
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


def write_library(tmp_path: Path, **flows: str) -> Library:
    """A library of the test opening and closing plus the named flows (file name = id)."""
    root = tmp_path / "flows"
    for name, source in {"call_opening": OPENING, "call_closing": CLOSING, **flows}.items():
        write_flow(root, name, source)
    return Library.load([root])
