"""The report as a pharmacy gets it, rendered: the PDF through poppler (pdftoppm, pdftotext), the
HTML printed by a real headless Chromium. Page size, page count, the first page's figures, no
page holding a line or two, no internal names; a period past today says it was measured to today.
The PNGs are kept next to the test's files to look at."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from demo.world import seed_demo
from queues.reports import ProgramReport, Requester, export_report
from queues.store.db import make_engine, session_factory, transaction, upgrade
from tests.conftest import require_service

START = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # the practice clock: Wednesday 10:00 in Miami
FIRST, LAST = date(2026, 10, 1), date(2026, 12, 31)  # a quarter that runs past today
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SIZES = {"letter": "612 x 792 pts", "a4": "595.28 x 841.89 pts"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> sessionmaker[Session]:
    path = tmp_path_factory.mktemp("report") / "demo.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    sessions = session_factory(engine)
    seed_demo(sessions, patients=300, seed=7, now=START, history_days=90)
    return sessions


def _tool(name: str) -> None:
    require_service(name, shutil.which(name) is not None, "apt-get install -y poppler-utils")


def _run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def _info(pdf: Path) -> dict[str, str]:
    out = {}
    for line in _run("pdfinfo", str(pdf)).splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def _pages(pdf: Path, pages: int) -> list[str]:
    return [
        _run("pdftotext", "-layout", "-f", str(n), "-l", str(n), str(pdf), "-")
        for n in range(1, pages + 1)
    ]


def _make(
    sessions: sessionmaker[Session], pharmacy: str, fmt: str, paper: str
) -> tuple[bytes, ProgramReport]:
    with transaction(sessions) as s:
        made = export_report(
            s, Requester.operator("operator:root"), pharmacy, FIRST, LAST, fmt, START, paper=paper
        )
    return made.content, made.report


def _check_first_page(text: str, report: ProgramReport) -> None:
    s = report.sections
    assert "October 1 – December 31, 2026" in text or "October 1 - December 31, 2026" in text
    assert "measured to December 2, 2026" in text  # the period runs past today, and says so
    reached = sum(x.patients_reached for x in s)
    filled = sum(x.refills.filled for x in s)
    for label, value in (
        ("Patients reached", f"{reached:,}"),
        ("Refills captured", f"{filled:,}"),
        ("Calls outside policy", "0"),
    ):
        # The figure's label, then its value at the start of the next line (or beside it).
        assert re.search(
            rf"{label}[^\n]*\n\s*{re.escape(value)}\s|{re.escape(value)}\s+{label}", text
        ), (label, value)
    assert re.search(r"Time to fill[^\n]*\n\s*\d+ days?\s|\d+ days?\s+Time to fill", text)
    assert re.search(
        r"Adherence change[^\n]*\n\s*[+-]\d+\.\d pts|[+-]\d+\.\d pts\s+Adherence change", text
    )
    if len(s) == 1:
        assert f"{s[0].name} ({s[0].code})" in text


def _check_pages(pages: list[str]) -> None:
    for n, text in enumerate(pages, 1):
        body = [line for line in text.splitlines() if line.strip() and "Page " not in line]
        assert len(body) >= 5, f"page {n} holds only {body}"
    everything = "\n".join(pages)
    for internal in ("queues.", "operator:", "root"):
        assert internal not in everything


@pytest.mark.parametrize(
    ("pharmacy", "paper", "pages"), [("FL-MIA", "letter", 4), ("all", "a4", 10)]
)
def test_the_pdf_report_on_paper(
    demo: sessionmaker[Session], tmp_path: Path, pharmacy: str, paper: str, pages: int
) -> None:
    _tool("pdftoppm")
    content, report = _make(demo, pharmacy, "pdf", paper)
    pdf = tmp_path / f"report-{pharmacy}.pdf"
    pdf.write_bytes(content)
    info = _info(pdf)
    assert info["Page size"].startswith(SIZES[paper])
    assert int(info["Pages"]) == pages
    texts = _pages(pdf, pages)
    _check_first_page(texts[0], report)
    _check_pages(texts)
    _run("pdftoppm", "-r", "72", "-png", str(pdf), str(tmp_path / "page"))
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == pages
    from PIL import Image

    width, height = Image.open(pngs[0]).size
    assert (width, height) == ((612, 792) if paper == "letter" else (596, 842))


def test_the_html_report_printed_by_chromium(demo: sessionmaker[Session], tmp_path: Path) -> None:
    require_service("Chromium", Path(CHROMIUM).exists(), "apt-get install -y chromium")
    _tool("pdftotext")
    content, report = _make(demo, "FL-MIA", "html", "letter")
    page = tmp_path / "report.html"
    page.write_bytes(content)
    printed = tmp_path / "printed.pdf"
    common = (CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run")
    subprocess.run(
        [*common, "--no-pdf-header-footer", f"--print-to-pdf={printed}", page.as_uri()],
        capture_output=True,
        check=True,
        timeout=120,
    )
    subprocess.run(  # kept to look at
        [
            *common,
            f"--screenshot={tmp_path / 'report.png'}",
            "--window-size=1000,1300",
            page.as_uri(),
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    info = _info(printed)
    assert info["Page size"].startswith(SIZES["letter"])  # the page's own @page size
    pages = int(info["Pages"])
    texts = _pages(printed, pages)
    _check_first_page(texts[0], report)
    # The first page is the cover alone; the charts and the tables follow on their own pages.
    assert "Patients called and reached, by campaign" not in texts[0]
    assert "By campaign" in "\n".join(texts[1:])
    _check_pages(texts)
