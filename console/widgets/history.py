"""Earlier attempts on this patient, newest first.

When and the outcome come first: they are what an agent reads before dialing again. A narrow table
(80 columns) shows just those, the outcome in its short words; the workspace's Details key (`i`)
shows every column (the whole outcome, who called, which number, the notes), as the medications
table does.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from textual.widgets import DataTable

from queues.phones import national
from queues.views.patient import AttemptView

# Outcomes in fewer words (at most OUTCOME_NARROW), for a narrow table (by disposition code): the
# history at 80 columns, the floor's Today tab; the other labels are short already.
SHORT_OUTCOMES = {
    "completed": "Reached – completed",
    "callback_requested": "Reached – callback",
    "transferred_pharmacist": "Reached – to pharmacist",
    "refused": "Reached – declined",
    "line_failed": "Line failed",
}
# (label, width): the first two always; the rest when the table is wide enough or asked for. The
# outcome's width is its longest label ("Line failed (nothing reached the patient)").
MAIN = (("When", 12), ("Outcome", 41))
MORE = (("Agent", 10), ("Number", 14), ("Notes", 30))
OUTCOME_NARROW = 23  # the longest short outcome
FIRST = "first attempt"  # what the table says of a patient never called before
# The table's own width from which every column fits (each cell has a column of padding on each
# side), with room for a vertical scrollbar.
WIDE = sum(width + 2 for _, width in MAIN + MORE) + 2


def short_outcome(code: str, label: str, width: int) -> str:
    """The outcome's label, in its short words when it is wider than `width`, cut (…) if still."""
    if len(label) > width:
        label = SHORT_OUTCOMES.get(code, label)
    return label if len(label) <= width else label[: width - 1] + "…"


def outcome(attempt: AttemptView, width: int) -> str:
    return short_outcome(attempt.disposition, attempt.disposition_label, width)


class AttemptHistory(DataTable[str]):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.detailed = False  # every column, whatever the width
        self._shown: tuple[tuple[AttemptView, ...], str] | None = None
        self.every_column: bool | None = None
        self._width = 0

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self._columns(every=False)

    def on_resize(self) -> None:
        if self._shown is not None and self.size.width != self._width:
            self.show(*self._shown)

    def _wants_all(self) -> bool:
        return self.detailed or self.size.width >= WIDE

    def toggle_detail(self) -> None:
        self.detailed = not self.detailed
        if self._shown is not None:
            self.show(*self._shown)

    def _columns(self, *, every: bool, longest: int = MAIN[1][1]) -> tuple[int, int]:
        """Lay the columns out: When, then the outcome (narrowed to what is left, down to its short
        words), then each further column while it fits; every column in the detail view. `longest`
        is the longest outcome to show. Returns the outcome's width and how many of MORE show."""
        self.clear(columns=True)
        (when, when_width), (label, width) = MAIN
        room = self.size.width - (when_width + 2) - 2  # a vertical scrollbar's room kept free
        width = min(width, max(longest, len(label)))
        outcome_width = width if every else min(width, max(OUTCOME_NARROW, room - 2))
        room -= outcome_width + 2
        self.add_column(when, width=when_width)
        self.add_column(label, width=outcome_width)
        shown = 0
        for name, w in MORE:
            if not every and w + 2 > room:
                break
            self.add_column(name, width=w)
            room -= w + 2
            shown += 1
        return outcome_width, shown

    def show(self, attempts: tuple[AttemptView, ...], zone: str) -> None:
        self._shown = (attempts, zone)
        self._width = self.size.width
        longest = max((len(a.disposition_label) for a in attempts), default=len(FIRST))
        width, more = self._columns(every=self._wants_all(), longest=longest)
        self.every_column = more == len(MORE)
        tz = ZoneInfo(zone)
        for a in attempts:
            cells = [
                f"{a.started_at.astimezone(tz):%b %d %H:%M}",
                outcome(a, width),
                a.agent,
                national(a.phone_number) if a.phone_number else "—",
                a.notes.replace("\n", " ")[:80],
            ]
            self.add_row(*cells[: 2 + more])
        if not attempts:
            self.add_row("—", FIRST, *[""] * (len(self.columns) - 2))

    def clear_patient(self) -> None:
        self._shown = None
        self.clear()
