"""The call-flow engine: walks a call's plan step by step, keeping its state as plain data.

The state is the path of steps shown so far plus every answer given, so back and forward never lose
an answer, actions are exactly the action steps on the path, and the whole state round-trips
through JSON (a restarted console resumes at the same step). Health information is refused on any
step before a passed identity check and on voicemail (see placeholders.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from queues.views.outcome import ActionRequest
from scripts_library.conditions import Env, evaluate
from scripts_library.facts import DueItem, PatientFacts
from scripts_library.library import CallPlan, Library, Segment
from scripts_library.placeholders import (
    DATE_ORDER,
    PrivacyViolation,
    Scope,
    fill_detail,
    render,
    verify_words,
)
from scripts_library.schema import FLOW_PREFIX, LANGUAGES, NEXT_SECTION, Flow, Step

STATE_VERSION = 1
MAX_AUTO_STEPS = 100
TEXT_MAX = 500
__all__ = ["AnswerError", "PrivacyViolation", "ScriptError", "ScriptedCall", "StepView"]


class ScriptError(Exception):
    """The flow cannot go on (a broken target, a loop): a bug in the flow, not the agent's."""


class AnswerError(ValueError):
    """The agent's entry does not fit the question; nothing changed."""


@dataclass(frozen=True)
class Position:
    segment: int
    flow: str
    step: str

    @property
    def key(self) -> str:
        return f"{self.segment}:{self.flow}:{self.step}"


@dataclass
class CallState:
    language: str
    path: list[Position]
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    verifications: dict[str, str] = field(default_factory=dict)  # position key -> who | failed
    failed_tries: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "path": [[p.segment, p.flow, p.step] for p in self.path],
            "answers": self.answers,
            "verifications": self.verifications,
            "failed_tries": self.failed_tries,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallState:
        return cls(
            language=str(data["language"]),
            path=[Position(int(s), str(f), str(t)) for s, f, t in data["path"]],
            answers={k: dict(v) for k, v in dict(data.get("answers", {})).items()},
            verifications=dict(data.get("verifications", {})),
            failed_tries={k: int(v) for k, v in dict(data.get("failed_tries", {})).items()},
        )


@dataclass(frozen=True)
class ChoiceView:
    number: int
    value: str
    label: str
    chosen: bool


@dataclass(frozen=True)
class StepView:
    """One step as the agent sees it, words filled in for the call's language."""

    flow_id: str
    flow_title: str
    step_id: str
    type: str
    text: str
    hint: str
    choices: tuple[ChoiceView, ...]
    answer_type: str | None
    answer: Any
    who: str | None
    tries_left: int
    section: int  # 1-based position of this part in the call
    sections: int
    language: str
    verified: bool
    finished: bool
    disposition: str | None
    can_back: bool
    can_forward: bool
    answered: tuple[tuple[str, str], ...]  # answers so far on the path, as (question, answer)


@dataclass(frozen=True)
class VerifyResult:
    passed: bool
    done: bool  # no more tries on this step (passed, or failed for good)
    message: str


class ScriptedCall:
    """One call's script: the plan, the patient's facts and the state, with the moves an agent
    makes. Every move checks first and changes the state only when it succeeds."""

    def __init__(
        self, library: Library, plan: CallPlan, facts: PatientFacts, state: CallState
    ) -> None:
        self.library = library
        self.plan = plan
        self.facts = facts
        self.state = state

    # -- making one ------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        library: Library,
        facts: PatientFacts,
        items: Iterable[DueItem],
        language: str | None = None,
        plan: CallPlan | None = None,
    ) -> ScriptedCall:
        plan = plan or library.plan(items)
        lang = language or (facts.language if facts.language in LANGUAGES else "en")
        first = plan.segments[0]
        flow = library.get(first.flow_id)
        call = cls(library, plan, facts, CallState(lang, []))
        path: list[Position] = []
        call._walk(Position(0, flow.id, flow.start), path)
        call.state.path = path
        return call

    def saved(self) -> dict[str, Any]:
        """Everything needed to resume (plan and state), as JSON-ready data."""
        return {
            "version": STATE_VERSION,
            "plan": [s.as_dict() for s in self.plan.segments],
            "unscripted": [i.as_dict() for i in self.plan.unscripted],
            "state": self.state.as_dict(),
        }

    @classmethod
    def restore(
        cls, library: Library, facts: PatientFacts, saved: Mapping[str, Any]
    ) -> ScriptedCall:
        if saved.get("version") != STATE_VERSION:
            raise ScriptError(f"saved script state version {saved.get('version')!r} is unknown")
        plan = CallPlan(
            tuple(Segment.from_dict(s) for s in saved["plan"]),
            tuple(DueItem.from_dict(i) for i in saved.get("unscripted", [])),
        )
        state = CallState.from_dict(saved["state"])
        call = cls(library, plan, facts, state)
        for pos in state.path:  # the library may have changed since: fail now, not mid-call
            call._step_at(pos)
        if not state.path:
            raise ScriptError("saved script state has no steps")
        return call

    # -- where we are ----------------------------------------------------------------------
    @property
    def position(self) -> Position:
        return self.state.path[-1]

    @property
    def step(self) -> Step:
        return self._step_at(self.position)

    @property
    def flow(self) -> Flow:
        return self.library.get(self.position.flow)

    @property
    def segment(self) -> Segment:
        return self.plan.segments[self.position.segment]

    @property
    def verified_as(self) -> str | None:
        return _verified_as(self.state, self.state.path[:-1], self._step_at)

    @property
    def verified(self) -> bool:
        return self.verified_as is not None

    @property
    def finished(self) -> bool:
        return self.step.terminal

    @property
    def suggested_disposition(self) -> str | None:
        return self.step.disposition if self.finished else None

    @property
    def primary_flow_id(self) -> str:
        sections = self.plan.sections
        return sections[0].flow_id if sections else self.plan.segments[0].flow_id

    # -- the agent's moves -----------------------------------------------------------------
    def choose(self, number: int) -> None:
        """Pick the numbered answer (1-based) of a choice or yes/no question."""
        step = self.step
        if step.type != "ask" or not step.choices:
            raise AnswerError("this step has no numbered answers")
        if not 1 <= number <= len(step.choices):
            raise AnswerError(f"choose 1 to {len(step.choices)}")
        self.answer(step.choices[number - 1].value)

    def answer(self, raw: str) -> None:
        step = self.step
        if step.type != "ask" or step.key is None:
            raise AnswerError("this step asks nothing")
        value = self._parse(step, raw)
        answers = {k: dict(v) for k, v in self.state.answers.items()}
        answers.setdefault(self.segment.key, {})[step.key] = value
        target = self._target_for(step, value)
        self._move(target, answers=answers)

    def verify(self, name: str, birth_date: str) -> VerifyResult:
        """Check two identifiers the person gave against the record; the result is worded in the
        call's language (verify_words)."""
        step = self.step
        words = verify_words(self.state.language)
        if step.type != "verify":
            raise AnswerError(words["not_a_check"])
        born = parse_date(birth_date, self.state.language)
        key = self.position.key
        who = step.who or "patient"
        no_caregiver = not (self.facts.caregiver_name and self.facts.caregiver_authorized)
        if who == "caregiver" and no_caregiver:
            passed, why = False, words["no_caregiver"]
        elif who == "caregiver":
            passed = (
                same_name(name, self.facts.caregiver_name or "") and born == self.facts.birth_date
            )
            why = words["caregiver_mismatch"]
        else:
            passed = same_name(name, self.facts.full_name) and born == self.facts.birth_date
            why = words["mismatch"]
        verifications = dict(self.state.verifications)
        tries = dict(self.state.failed_tries)
        if passed:
            verifications[key] = who
            assert step.passed is not None
            self._move(step.passed, verifications=verifications)
            return VerifyResult(True, True, words["verified"].format(who=words.get(who, who)))
        tries[key] = tries.get(key, 0) + 1
        if tries[key] >= step.tries or (who == "caregiver" and no_caregiver):
            verifications[key] = "failed"
            assert step.failed is not None
            self._move(step.failed, verifications=verifications, failed_tries=tries)
            return VerifyResult(False, True, words["failed"].format(why=why))
        self.state.failed_tries = tries
        left = step.tries - tries[key]
        return VerifyResult(
            False, False, words["tries" if left == 1 else "tries_many"].format(why=why, left=left)
        )

    def back(self) -> bool:
        path = list(self.state.path)
        while len(path) > 1:
            path.pop()
            if not self._step_at(path[-1]).auto:
                self.state.path = path
                return True
        return False

    def forward(self) -> bool:
        """Go on with what is already recorded for this step; False when it needs an answer."""
        step, pos = self.step, self.position
        if step.type == "say" and step.next:
            self._move(step.next)
            return True
        if step.type == "ask" and step.key:
            value = self.state.answers.get(self.segment.key, {}).get(step.key)
            if value is None:
                return False
            self._move(self._target_for(step, value))
            return True
        if step.type == "verify":
            result = self.state.verifications.get(pos.key)
            if result is None:
                return False
            target = step.failed if result == "failed" else step.passed
            assert target is not None
            self._move(target)
            return True
        return False

    def switch_language(self, language: str) -> None:
        if language not in self.flow.languages:
            raise AnswerError(f"this flow is not written in {language!r}")
        self.state.language = language

    # -- what the call produced ------------------------------------------------------------
    def actions(self) -> tuple[ActionRequest, ...]:
        return _actions(self, self.state.path)

    def path_answers(self) -> dict[str, dict[str, Any]]:
        """The answers on the path taken (an answer left behind by going back is not used)."""
        out: dict[str, dict[str, Any]] = {}
        for pos in self.state.path:
            step = self._step_at(pos)
            if step.type != "ask" or step.key is None:
                continue
            seg = self.plan.segments[pos.segment]
            value = self.state.answers.get(seg.key, {}).get(step.key)
            if value is not None:
                out.setdefault(seg.key, {})[step.key] = value
        return out

    def record(self) -> dict[str, Any]:
        """What is stored with the attempt (Outcome.answers)."""
        answers = self.path_answers()
        pos = self.position
        return {
            "version": STATE_VERSION,
            "language": self.state.language,
            "verified": self._ever_verified() is not None,
            "verified_as": self._ever_verified(),
            "call": answers.get("call", {}),
            "close": answers.get("close", {}),
            "sections": [
                {
                    "flow": s.flow_id,
                    "kind": s.item.kind,
                    "subject": s.item.subject,
                    "task_id": s.item.task_id,
                    "answers": answers.get(s.key, {}),
                    "reached": any(p.segment == i for p in self.state.path),
                }
                for i, s in enumerate(self.plan.segments)
                if s.item is not None
            ],
            "unscripted": [i.subject for i in self.plan.unscripted],
            "finished": self.finished,
            "disposition": self.suggested_disposition,
            "at": {"segment": pos.segment, "flow": pos.flow, "step": pos.step},
        }

    def _ever_verified(self) -> str | None:
        return _verified_as(self.state, self.state.path, self._step_at)

    # -- showing a step --------------------------------------------------------------------
    def view(self) -> StepView:
        step, flow, lang = self.step, self.flow, self.state.language
        scope = self._scope(self.position, self.state.path)
        text = render(step.text.get(lang, ""), scope)
        hint = render(step.hint.get(lang, ""), scope) if step.hint else ""
        current = None
        if step.type == "ask" and step.key:
            current = self.state.answers.get(self.segment.key, {}).get(step.key)
        choices = tuple(
            ChoiceView(n, c.value, render(c.label.get(lang, c.value), scope), c.value == current)
            for n, c in enumerate(step.choices, start=1)
        )
        tries = self.state.failed_tries.get(self.position.key, 0)
        return StepView(
            flow_id=flow.id,
            flow_title=flow.title.get(lang, flow.id),
            step_id=step.id,
            type=step.type,
            text=text,
            hint=hint,
            choices=choices,
            answer_type=step.answer,
            answer=current,
            who=step.who,
            tries_left=max(step.tries - tries, 0),
            section=self.position.segment + 1,
            sections=len(self.plan.segments),
            language=lang,
            verified=scope.verified,
            finished=step.terminal,
            disposition=step.disposition,
            can_back=any(not self._step_at(p).auto for p in self.state.path[:-1]),
            can_forward=self._can_forward(step),
            answered=self._answered(lang),
        )

    def _can_forward(self, step: Step) -> bool:
        if step.type == "say":
            return True
        if step.type == "ask" and step.key:
            return self.state.answers.get(self.segment.key, {}).get(step.key) is not None
        if step.type == "verify":
            return self.position.key in self.state.verifications
        return False

    def _answered(self, lang: str) -> tuple[tuple[str, str], ...]:
        """(what was asked, the answer) along the path; each question named by its section, so
        two vaccines' "interest" answers read as two answers, not one said twice."""
        names: dict[int, str] = {}
        seen: dict[str, int] = {}
        for n, seg in enumerate(self.plan.segments):
            title = self.library.get(seg.flow_id).title.get(lang, seg.flow_id)
            seen[title] = seen.get(title, 0) + 1
            names[n] = title if seen[title] == 1 else f"{title} {seen[title]}"
        out = []
        for pos in self.state.path:
            step = self._step_at(pos)
            if step.type == "ask" and step.key:
                seg = self.plan.segments[pos.segment]
                value = self.state.answers.get(seg.key, {}).get(step.key)
                if value is None:
                    continue
                label = next(
                    (c.label.get(lang, c.value) for c in step.choices if c.value == value),
                    str(value),
                )
                asked = step.key.rsplit(".", 1)[-1].replace("_", " ")
                out.append((f"{names[pos.segment]} · {asked}", label))
            elif step.type == "verify" and pos.key in self.state.verifications:
                result = self.state.verifications[pos.key]
                out.append(("identity", "failed" if result == "failed" else f"verified ({result})"))
        return tuple(out)

    # -- internals -------------------------------------------------------------------------
    def _step_at(self, pos: Position) -> Step:
        try:
            return self.library.get(pos.flow).steps[pos.step]
        except KeyError:
            raise ScriptError(f"flow {pos.flow!r} has no step {pos.step!r}") from None

    def _scope(self, pos: Position, path: list[Position]) -> Scope:
        step = self._step_at(pos)
        return Scope(
            facts=self.facts,
            language=self.state.language,
            item=self.plan.segments[pos.segment].item,
            verified=_verified_as(self.state, path[:-1], self._step_at) is not None,
            voicemail=step.type == "voicemail",
        )

    def _parse(self, step: Step, raw: str) -> Any:
        text = raw.strip()
        if step.choices:
            values = [c.value for c in step.choices]
            if text not in values:
                raise AnswerError(f"{text!r} is not one of {', '.join(values)}")
            return text
        if not text:
            raise AnswerError("enter an answer first")
        if step.answer == "number":
            try:
                number = float(text.replace(",", "."))
            except ValueError:
                raise AnswerError(f"{text!r} is not a number") from None
            if step.minimum is not None and number < step.minimum:
                raise AnswerError(f"the answer is at least {step.minimum:g}")
            if step.maximum is not None and number > step.maximum:
                raise AnswerError(f"the answer is at most {step.maximum:g}")
            return int(number) if number.is_integer() else number
        if step.answer == "date":
            return parse_date(text, self.state.language).isoformat()
        if len(text) > TEXT_MAX:
            raise AnswerError(f"keep the answer under {TEXT_MAX} characters")
        return text

    def _target_for(self, step: Step, value: Any) -> str:
        for choice in step.choices:
            if choice.value == value:
                return choice.next
        if step.next is None:
            raise ScriptError(f"step {step.id!r} has nowhere to go for {value!r}")
        return step.next

    def _move(
        self,
        target: str,
        *,
        answers: dict[str, dict[str, Any]] | None = None,
        verifications: dict[str, str] | None = None,
        failed_tries: dict[str, int] | None = None,
    ) -> None:
        """Follow `target` (through branches and actions) on a copy; commit only if it works."""
        before = self.state
        trial = CallState(
            before.language,
            list(before.path),
            answers if answers is not None else before.answers,
            verifications if verifications is not None else before.verifications,
            failed_tries if failed_tries is not None else before.failed_tries,
        )
        self.state = trial
        try:
            start = self._resolve(target, trial.path[-1])
            self._walk(start, trial.path)
            self._check_shows(trial.path)
        except Exception:
            self.state = before
            raise

    def _check_shows(self, path: list[Position]) -> None:
        """Render the new step once: a privacy refusal must stop the move, not the display."""
        pos = path[-1]
        step = self._step_at(pos)
        scope = self._scope(pos, path)
        for text in (
            step.text.get(self.state.language, ""),
            step.hint.get(self.state.language, ""),
        ):
            render(text, scope)

    def _resolve(self, target: str, here: Position) -> Position:
        if target == NEXT_SECTION:
            nxt = here.segment + 1
            if nxt >= len(self.plan.segments):
                raise ScriptError(f"{here.flow}: {NEXT_SECTION} after the last part of the call")
            flow = self.library.get(self.plan.segments[nxt].flow_id)
            return Position(nxt, flow.id, flow.start)
        if target.startswith(FLOW_PREFIX):
            flow = self.library.get(target[len(FLOW_PREFIX) :])
            return Position(here.segment, flow.id, flow.start)
        return Position(here.segment, here.flow, target)

    def _walk(self, pos: Position, path: list[Position]) -> None:
        """Append `pos` and pass through branch and action steps until one is shown."""
        for _ in range(MAX_AUTO_STEPS):
            path.append(pos)
            step = self._step_at(pos)
            flow = self.library.get(pos.flow)
            entering = step.id == flow.start and flow.requires_verification
            if entering and _verified_as(self.state, path[:-1], self._step_at) is None:
                raise PrivacyViolation(
                    f"{flow.id} carries health information and identity is not verified"
                )
            if step.type == "branch":
                pos = self._resolve(self._branch(step, pos, path), pos)
                continue
            if step.type == "action":
                assert step.next is not None
                pos = self._resolve(step.next, pos)
                continue
            return
        raise ScriptError(f"{pos.flow}: more than {MAX_AUTO_STEPS} branch/action steps in a row")

    def _branch(self, step: Step, pos: Position, path: list[Position]) -> str:
        segment = self.plan.segments[pos.segment]
        items = [s.item for s in self.plan.segments if s.item is not None]
        answers = self.state.answers.get(segment.key, {})
        conditions = [c.lower() for c in self.facts.conditions]
        made = {a.kind for a in _actions(self, path)}
        env = Env(
            names={
                "age": self.facts.age,
                "language": self.state.language,
                "verified": _verified_as(self.state, path, self._step_at) is not None,
                "verified_as": _verified_as(self.state, path, self._step_at) or "",
                "caregiver": bool(self.facts.caregiver_name),
                "caregiver_authorized": self.facts.caregiver_authorized,
                "kind": segment.item.kind if segment.item else "",
                "subject": segment.item.subject if segment.item else "",
                "sections_left": sum(
                    1 for s in self.plan.segments[pos.segment + 1 :] if s.item is not None
                ),
                "renewal": _needs_renewal(self.facts, segment.item),
            },
            functions={
                "answer": answers.get,
                "has_subject": lambda p: any(
                    i.subject == p or i.subject.startswith(p + ":") for i in items
                ),
                "has_kind": lambda k: any(i.kind == k for i in items),
                "has_condition": lambda c: any(c.lower() in x for x in conditions),
                "action": lambda k: k in made,
            },
        )
        for case in step.cases:
            if evaluate(case.when, env):
                return case.next
        assert step.otherwise is not None
        return step.otherwise


def _verified_as(state: CallState, path: list[Position], step_at: Any) -> str | None:
    """Who passed an identity check on this path (a check undone by going back does not count)."""
    for pos in path:
        result = state.verifications.get(pos.key)
        if result and result != "failed" and step_at(pos).type == "verify":
            return result
    return None


def _actions(call: ScriptedCall, path: list[Position]) -> tuple[ActionRequest, ...]:
    out = []
    for pos in path:
        step = call._step_at(pos)
        if step.type != "action" or step.action is None:
            continue
        seg = call.plan.segments[pos.segment]
        scope = Scope(call.facts, "en", seg.item, verified=True)
        answers = call.state.answers.get(seg.key, {})
        detail: dict[str, Any] = {k: fill_detail(v, scope, answers) for k, v in step.detail.items()}
        detail.update(flow=pos.flow, step=pos.step)
        if seg.item is not None:
            detail.update(subject=seg.item.subject, task_id=seg.item.task_id)
        rx = seg.item.prescription_id if seg.item else None
        out.append(ActionRequest(kind=step.action, prescription_id=rx, detail=detail))
    return tuple(out)


def _needs_renewal(facts: PatientFacts, item: DueItem | None) -> bool:
    """No refills left on the section's prescription: it is a renewal, not a refill."""
    if item is None or item.prescription_id is None:
        return False
    medication = facts.medication(item.prescription_id)
    return medication is not None and medication.refills_left <= 0


# -- identity helpers ----------------------------------------------------------------------
def _name_tokens(name: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    return sorted(re.findall(r"[a-z0-9]+", plain))


def same_name(given: str, on_record: str) -> bool:
    """The same words, whatever the order, case, accents or punctuation."""
    tokens = _name_tokens(given)
    return bool(tokens) and tokens == _name_tokens(on_record)


def parse_date(text: str, language: str) -> date:
    """ISO (1955-04-01), or day and month in the call language's order (DATE_ORDER): 04/01/1955 in
    English, 01/04/1955 in Spanish; '/', '.' or '-' between them."""
    raw = text.strip()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        pass
    m = re.fullmatch(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})", raw)
    if m:
        a, b, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
        month, day = (b, a) if language == "es" else (a, b)
        try:
            return date(year, month, day)
        except ValueError:
            pass
    # Said in the call's language, with the order exactly as the prompt shows it (DATE_HINT).
    if language == "es":
        raise AnswerError(f"{text!r} no es una fecha como {DATE_ORDER['es']} o 1955-04-01")
    raise AnswerError(f"{text!r} is not a date like {DATE_ORDER['en']} or 1955-04-01")
