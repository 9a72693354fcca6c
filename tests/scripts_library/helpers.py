"""Small hand-written flows for engine and lint tests, written to a temporary library."""

from __future__ import annotations

import textwrap
from pathlib import Path

from scripts_library.library import Library

OPENING = """
id = "call_opening"
part = "opening"
title = { en = "Hello", es = "Hola" }
languages = ["en", "es"]
start = "greeting"

[steps.greeting]
type = "say"
text.en = "Hello {patient.first_name}, this is {pharmacy.name}."
text.es = "Hola {patient.first_name}, le llamamos de {pharmacy.name}."
next = "who"

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


def write_library(tmp_path: Path, **flows: str) -> Library:
    """A library of the test opening and closing plus the named flows (file name = id)."""
    root = tmp_path / "flows"
    root.mkdir(exist_ok=True)
    sources = {"call_opening": OPENING, "call_closing": CLOSING, **flows}
    for name, source in sources.items():
        (root / f"{name}.toml").write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return Library.load([root])
