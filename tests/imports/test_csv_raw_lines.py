"""A line passed over by the digest of its bytes is a record stored as it is (queues.imports.digests,
queues.imports.csv_lines): whatever the export — quoted or not, "\\r\\n" or "\\n", a byte-order
mark or none, values over two lines, one of them the very text of another stored line — reading
it with the digests of an earlier export gives, for every record, either the record a plain read
gives, or (passed over) the very record the earlier export stored."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queues.imports.csv_files import COLUMNS, CsvResult, read_csv
from queues.imports.digests import LineDigests
from tests.imports.test_csv_columns import FLAGS, GOOD

DAYS = 30
TEXT = ("first_name", "last_name", "drug_name", "prescriber", "caregiver_name", "gender")
# Values a writer quotes: a comma, a quote, line ends at the edges (stripped: good) or inside
# (a control character: refused), blanks.
TRICKY = ["Ann, Jr.", 'O"Neil', "\nAnn", "Ann\r\n", "A\nB", "  Bo  ", ""]


def _value(column: str) -> st.SearchStrategy[str]:
    good = st.sampled_from(GOOD.get(column, FLAGS))
    return good | st.sampled_from(TRICKY) if column in TEXT else good


@st.composite
def exports(draw: st.DrawFn) -> tuple[str, list[str], list[list[str]]]:
    kind = draw(st.sampled_from(["patients", "prescriptions", "fills"]))
    required, optional = COLUMNS[kind]
    header = draw(
        st.permutations(
            list(required) + draw(st.lists(st.sampled_from(optional), unique=True, max_size=4))
        )
    )
    rows = draw(st.lists(st.tuples(*(_value(c) for c in header)).map(list), max_size=12))
    # Each row its own record (a file naming one twice is read again in full by the import:
    # queues.imports.digests.DuplicateLine).
    for n, row in enumerate(rows):
        for name in ("mrn", "rx_id", "fill_id"):
            if name in header:
                row[header.index(name)] = f"{name[0].upper()}{n}"
    return kind, header, rows


def _text(header: list[str], rows: list[list[str]], quote_all: bool, end: str) -> str:
    out = io.StringIO()
    writer = csv.writer(
        out, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL, lineterminator=end
    )
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _records(kind: str, read: CsvResult) -> dict[str, Any]:
    return dict(vars(read.batch)[kind])


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    made=exports(),
    edits=st.lists(
        st.tuples(st.integers(0, 11), st.integers(0, 20), st.integers(0, 11), st.booleans()),
        max_size=3,
    ),
    form=st.tuples(st.booleans(), st.booleans(), st.sampled_from(["\n", "\r\n"])),
    again_form=st.tuples(st.booleans(), st.booleans(), st.sampled_from(["\n", "\r\n"])),
)
def test_a_line_passed_over_is_a_record_stored_as_it_is(
    tmp_path: Path,
    made: tuple[str, list[str], list[list[str]]],
    edits: list[tuple[int, int, int, bool]],
    form: tuple[bool, bool, str],
    again_form: tuple[bool, bool, str],
) -> None:
    kind, header, rows = made
    bom, quote_all, end = form
    first_path = tmp_path / "first.csv"
    text = _text(header, rows, quote_all, end)
    first_path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode())
    first = LineDigests(kind, set(), DAYS)
    stored_read = read_csv(kind, first_path, DAYS, digests=first)
    stored = {d for d in first.of.values() if d is not None}
    before = _records(kind, stored_read)

    # The next export: some values changed — to another value, or to another line of the
    # export itself inside a quoted value ("\n<the line>\n", which strips to a good value).
    changed = [list(r) for r in rows]
    lines = _text(header, rows, False, "\n").splitlines()[1:]
    for row, column, other, as_line in edits:
        if not changed:
            break
        target = changed[row % len(changed)]
        at = column % len(header)
        if as_line and lines:
            target[at] = "\n" + lines[other % len(lines)] + "\n"
        else:
            target[at] = TRICKY[other % len(TRICKY)]
    bom, quote_all, end = again_form
    again_path = tmp_path / "again.csv"
    again_path.write_bytes(
        (codecs.BOM_UTF8 if bom else b"") + _text(header, changed, quote_all, end).encode()
    )

    plain = read_csv(kind, again_path, DAYS)
    digests = LineDigests(kind, stored, DAYS)
    got = read_csv(kind, again_path, DAYS, digests=digests)
    read, expected = _records(kind, got), _records(kind, plain)
    for key, record in expected.items():
        if key in read:
            assert read[key] == record
        else:  # passed over: only as the earlier export stored it
            assert before.get(key) == record, key
    assert set(read) <= set(expected)
    assert [str(e) for e in got.errors] == [str(e) for e in plain.errors]
