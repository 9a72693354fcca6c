"""The call script: the current step with the patient's data filled in, answers on number keys,
back and forward, and the answers so far. The flow engine (scripts_library) decides what may be
shown; this widget only draws it and posts `Changed` so the screen can save the progress."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static

from console.drafts import DraftStore, DraftWriter, legacy_folder
from queues.views.outcome import ActionRequest, Outcome, disposition_words
from queues.views.patient import PatientContext
from queues.views.shift import Offer
from queues.views.user import SignedInUser
from scripts_library.engine import (
    AnswerError,
    ScriptedCall,
    ScriptError,
    StepView,
    VerifyResult,
)
from scripts_library.facts import facts_from_context, items_from_context
from scripts_library.library import bundled_library
from scripts_library.placeholders import (
    PrivacyViolation,
    date_hint,
    subject_words,
    vaccine_words,
    verify_words,
)

_log = logging.getLogger("console.drafts")

ACTION_LABELS = {
    "refill_request": "Refill request",
    "renewal_request": "Renewal request to the prescriber",
    "pharmacist_escalation": "Pharmacist call-back",
    "med_sync_enrollment": "Med-sync enrollment",
    "vaccine_interest": "Vaccine interest",
    "callback": "Callback",
    "do_not_call": "Do-not-call request",
    "wrong_number": "Wrong number",
    "prescriber_followup": "Prescriber follow-up",
}


def action_line(action: ActionRequest) -> str:
    """A follow-up action in words: its kind's label and what it is about (a vaccine by name)."""
    detail = action.detail
    vaccine = detail.get("vaccine")
    what = detail.get("drug") or (vaccine_words(str(vaccine)) if vaccine else "")
    what = what or detail.get("reason") or ""
    label = ACTION_LABELS.get(action.kind, action.kind.replace("_", " ").capitalize())
    return f"{label}{f' — {what}' if what else ''}"


class ScriptDrafts:
    """The script's progress on local disk (the wrap-up's draft mechanism, its own directory), so
    a killed console resumes at the step where it stopped. Written in order on the draft writer's
    thread: the UI thread never waits for the disk."""

    def __init__(self, root: Path, user: SignedInUser, on_error: Callable[[OSError], None]) -> None:
        self.store = DraftStore.of(root, user, scripts=True)
        # Progress kept before drafts were kept per database: taken up by its claim (`find`).
        self._legacy = legacy_folder(root, user.username, scripts=True)
        self.user = user
        self._writer = DraftWriter(self.store, on_error)

    @staticmethod
    def uid(lease_token: str) -> str:
        return f"script-{lease_token}"

    def save(self, offer: Offer, saved: dict[str, Any]) -> None:
        draft = Outcome(
            uid=self.uid(offer.claim.lease_token),
            patient_id=offer.claim.patient_id,
            lease_token=offer.claim.lease_token,
            user_id=self.user.id,
            disposition="",
            started_at=offer.claim.claimed_at,
            ended_at=offer.claim.claimed_at,
            answers={"script_state": saved},
        )
        self._writer.save(draft)

    def find(self, lease_token: str) -> dict[str, Any] | None:
        """The saved progress for a claim (read on resuming a held patient only). A legacy-layout
        file named after this claim's lease token (128 random bits: no other database's claim has
        it) is moved into this database's folder first."""
        legacy = self._legacy / f"{self.uid(lease_token)}.json"
        if legacy.is_file():
            try:
                self.store.adopt(legacy)
            except OSError as exc:  # it stays where it is; the script starts at its beginning
                _log.warning("legacy script progress could not be moved: %s", type(exc).__name__)
        for draft in self.store.pending():
            if draft.lease_token == lease_token and isinstance(draft.answers, dict):
                state = draft.answers.get("script_state")
                return state if isinstance(state, dict) else None
        return None

    def discard(self, lease_token: str) -> None:
        self._writer.discard(self.uid(lease_token))

    def close(self) -> None:
        self._writer.close()


class ScriptPanel(VerticalScroll):
    can_focus = True

    @dataclass
    class Changed(Message):
        """The script moved; `saved` is its whole state, for the local draft."""

        panel: ScriptPanel
        saved: dict[str, Any]
        started: bool = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.call: ScriptedCall | None = None
        self.view: StepView | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="script-head")
        yield Static("The script appears here when you have a patient.", id="script-text")
        yield Static("", id="script-choices")
        yield Input(id="verify-name", placeholder="Full name, as they say it")
        yield Input(id="verify-dob", placeholder="Date of birth")
        yield Input(id="script-answer", placeholder="Answer, then Enter")
        yield Static("", id="script-message")
        yield Static("", id="script-answers")

    def on_mount(self) -> None:
        self.border_title = "Script"
        self._show_inputs(None)

    # -- the screen's calls ------------------------------------------------------------------
    @property
    def flow_id(self) -> str | None:
        return self.call.primary_flow_id if self.call else None

    @property
    def suggested_disposition(self) -> str | None:
        return self.call.suggested_disposition if self.call else None

    def start(
        self, patient: PatientContext, agent_name: str, saved: dict[str, Any] | None = None
    ) -> None:
        """Plan the call for the patient's open tasks (or resume `saved`) and show its first step.
        Everything it needs came with the offer: no database, no worker."""
        self.call = None
        try:
            library = bundled_library()
            facts = facts_from_context(patient, agent_name)
            call = None
            if saved is not None:
                try:
                    call = ScriptedCall.restore(library, facts, saved)
                except (ScriptError, KeyError, ValueError, TypeError):
                    call = None  # an unusable draft: start the script again
            if call is None:
                call = ScriptedCall.start(library, facts, items_from_context(patient))
        except (ScriptError, PrivacyViolation, OSError) as exc:  # the rest of the workspace goes on
            self._failed(f"Script not available: {exc}")
            return
        self._started(call, saved is not None)

    def _started(self, call: ScriptedCall, resumed: bool) -> None:
        self.call = call
        self.refresh_step()
        if resumed:
            self._message("Resumed where the script stopped.", "dim")
        self.post_message(self.Changed(self, call.saved(), started=True))

    def _failed(self, message: str) -> None:
        self.query_one("#script-text", Static).update(Text(message, style="bold red"))

    def answers_state(self) -> dict[str, Any]:
        return self.call.record() if self.call else {}

    def actions(self) -> tuple[ActionRequest, ...]:
        return self.call.actions() if self.call else ()

    def reset(self) -> None:
        self.call = None
        self.view = None
        self.query_one("#script-head", Static).update("")
        self.query_one("#script-text", Static).update("")
        self.border_title = "Script"
        self.query_one("#script-choices", Static).update("")
        self.query_one("#script-answers", Static).update("")
        self._message("")
        self._show_inputs(None)

    # -- the agent's moves (keys are bound on the screen) ------------------------------------
    def choose(self, number: int) -> None:
        self._do(lambda call: call.choose(number))

    def back(self) -> None:
        if self.call is not None and not self.call.back():
            self._message("This is the first step.", "dim")
            return
        self._do(lambda call: None)

    def forward(self) -> None:
        def go(call: ScriptedCall) -> None:
            if not call.forward():
                raise AnswerError(
                    "answer this step first" if not call.finished else "end of script"
                )

        self._do(go)

    def switch_language(self) -> None:
        if self.call is None:
            return
        other = "en" if self.call.state.language == "es" else "es"
        self._do(lambda call: call.switch_language(other))

    @on(Input.Submitted, "#script-answer")
    def _answered(self, event: Input.Submitted) -> None:
        event.stop()
        self._do(lambda call: call.answer(event.value))

    @on(Input.Submitted, "#verify-name")
    def _name_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#verify-dob", Input).focus()

    @on(Input.Submitted, "#verify-dob")
    def _verify(self, event: Input.Submitted) -> None:
        event.stop()
        name = self.query_one("#verify-name", Input).value
        result: list[VerifyResult] = []

        def check(call: ScriptedCall) -> None:
            result.append(call.verify(name, event.value))

        if self._do(check) and result:
            self._message(result[0].message, "green" if result[0].passed else "bold red")
            if self.view is not None and self.view.type == "verify":  # another try: start over
                self.query_one("#verify-name", Input).value = ""
                self.query_one("#verify-dob", Input).value = ""
                self.query_one("#verify-name", Input).focus()

    def _do(self, move: Any) -> bool:
        """Apply one move; a refused move leaves the script where it was and says why."""
        if self.call is None:
            return False
        before = self.view.step_id if self.view else None
        try:
            move(self.call)
        except (AnswerError, PrivacyViolation, ScriptError) as exc:
            self._message(str(exc), "bold red")
            return False
        self._message("")
        self.refresh_step(moved=before != self.call.step.id)
        self.post_message(self.Changed(self, self.call.saved()))
        return True

    # -- drawing -----------------------------------------------------------------------------
    def refresh_step(self, moved: bool = True) -> None:
        call = self.call
        if call is None:
            return
        try:
            view = call.view()
        except PrivacyViolation as exc:  # the engine refused what the flow tried to show
            self.query_one("#script-text", Static).update(Text(f"Refused: {exc}", "bold red"))
            return
        self.view = view
        lang = view.language.upper()
        check = verify_words(view.language)
        lock = f"✓ {check['verified_head']}" if view.verified else check["not_verified"]
        self.query_one("#script-head", Static).update(
            Text.assemble(
                (f"{view.section}/{view.sections} {view.flow_title}", "bold"),
                f" · {lang}\n",
                (lock, "green" if view.verified else "yellow"),
            )
        )
        text = Text(view.text, style="bold")
        if view.hint:
            text.append("\n" + view.hint, style="dim italic")
        if view.finished:
            code = view.disposition
            suggested = f" — suggested: {disposition_words(code)}" if code else ""
            text.append(
                f"\nEnd of script{suggested}. Press w to wrap up.",
                style="bold cyan",
            )
        self.query_one("#script-text", Static).update(text)
        choices = Text()
        for c in view.choices:
            marker = "●" if c.chosen else " "
            choices.append(f"{marker}{c.number} ", style="bold reverse" if c.chosen else "bold")
            choices.append(f"{c.label}\n")
        # The keys for this step, where the agent looks (an Input in focus hides the footer's).
        if view.choices:
            choices.append(f"1–{len(view.choices)}: their answer\n", style="dim")
        elif view.type == "verify":
            choices.append("name, Tab, date of birth, Enter\n", style="dim")
        if view.can_forward and not view.finished:
            choices.append("] next step\n", style="dim")
        self.query_one("#script-choices", Static).update(choices)
        self._show_inputs(view, reset=moved)
        answers = Text()
        if view.answered:
            answers.append("Answers so far\n", style="underline")
            for key, value in view.answered[-6:]:
                answers.append(f"{key}: ", style="dim")
                answers.append(f"{value}\n")
        actions = self.actions()
        if actions:
            answers.append("Actions\n", style="underline")
            for action in actions:
                answers.append(f"✓ {action_line(action)}\n", style="green")
        unscripted = self.call.plan.unscripted if self.call else ()
        if unscripted:
            words = ", ".join(subject_words(i.subject) for i in unscripted)
            answers.append(f"No script for: {words}", "dim")
        self.query_one("#script-answers", Static).update(answers)

    def _show_inputs(self, view: StepView | None, reset: bool = True) -> None:
        verify = view is not None and view.type == "verify"
        typed = view is not None and view.type == "ask" and not view.choices
        name = self.query_one("#verify-name", Input)
        dob = self.query_one("#verify-dob", Input)
        answer = self.query_one("#script-answer", Input)
        name.display = dob.display = verify
        answer.display = typed
        if view is None:
            return
        if reset:
            for field in (name, dob, answer):
                field.value = ""
            if typed and view.answer is not None:
                answer.value = str(view.answer)
        if verify:
            dob.placeholder = f"Date of birth ({date_hint(view.language)})"
            name.placeholder = (
                "Caregiver's full name" if view.who == "caregiver" else "Full name, as they say it"
            )
            if reset:
                name.focus()
        elif typed:
            answer.placeholder = {
                "number": "A number, then Enter",
                "date": f"A date ({date_hint(view.language)}), then Enter",
            }.get(view.answer_type or "", "Their answer, then Enter")
            if reset:
                answer.focus()
        elif self.screen.focused in (name, dob, answer):
            self.focus()  # number keys work again

    def shown_text(self) -> str:
        """What the panel shows, as plain text (for tests and the bench)."""
        parts = [str(w.render()) for w in self.query(Static)]
        return " ".join(" ".join(parts).split())

    def unanswered(self) -> None:
        """The call ended before anyone answered (no answer, busy, failed): nothing to say."""
        self.query_one("#script-choices", Static).update("")
        self._message(
            "The call did not connect: the script is not needed. Press w to wrap up.", "bold"
        )

    def _message(self, text: str, style: str = "") -> None:
        self.query_one("#script-message", Static).update(Text(text, style=style))
