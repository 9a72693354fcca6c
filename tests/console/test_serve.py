"""`outreach serve` in a real headless Chromium on loopback: sign in on the server's page as a
supervisor, find the monitor already signed in (no second login).

Chromium is driven over the DevTools protocol with aiohttp's websocket client (aiohttp comes with
textual-serve): no browser-driver package. The page draws the terminal on a canvas, so the test
reads what the app sent to the page — the websocket frames the browser received — as the screen's
text, and keeps a screenshot next to the test's files.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from queues.auth import hash_password
from queues.store.db import make_engine, session_factory, transaction
from queues.store.models import AuditEvent, User
from tests.conftest import add_pharmacy, require_service

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct-horse-1"
ANSI = re.compile(
    r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"outreach serve exited with {proc.returncode}; see serve.log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)  # polling a port with a deadline, not timing a result
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Ask the process to end; kill it if it has not within ten seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def served(tmp_path: Path, sqlite_url: str) -> Iterator[str]:
    """A database with supervisor sue, served on a free loopback port; stopped on teardown."""
    url = sqlite_url
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        add_pharmacy(session, "TX1")
        from queues.store.models import Pharmacy

        tx1 = session.scalars(select(Pharmacy)).one()
        session.add(
            User(
                username="sue",
                display_name="Sue",
                role="supervisor",
                password_hash=hash_password(PASSWORD),
                pharmacies=[tx1],
            )
        )
    engine.dispose()
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "serve", "--database", url, "--port", str(port)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        # The project's root on the path: the server and each tab's console run from tmp_path.
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_for_port(port, proc, time.monotonic() + 30)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(proc)
        log.close()


class Page:
    """One Chromium tab over the DevTools protocol, collecting the app's output frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.screen = ""  # all text the app sent to the page, escape sequences removed
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.replies:
                self.replies.pop(data["id"]).set_result(data)
            elif data.get("method") == "Network.webSocketFrameReceived":
                frame = data["params"]["response"]
                raw = frame["payloadData"]
                if frame.get("opcode") == 2:
                    raw = base64.b64decode(raw).decode("utf-8", "replace")
                self.screen += ANSI.sub("", raw)
                self.changed.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        self.replies[n] = asyncio.get_running_loop().create_future()
        await self.ws.send_json({"id": n, "method": method, "params": params})
        reply = await asyncio.wait_for(self.replies[n], 30)
        assert "error" not in reply, reply
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def wait_for_text(self, text: str, since: int = 0, timeout: float = 30) -> None:
        async def seen() -> None:
            while text not in self.screen[since:]:
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(seen(), timeout)
        except TimeoutError:
            raise AssertionError(f"{text!r} never appeared; last: {self.screen[-400:]!r}") from None

    async def wait_for_page(
        self,
        check: Any,
        expression: str = "document.body ? document.body.innerText : ''",
        equals: str | None = None,
        timeout: float = 30,
    ) -> None:
        """Until the page's DOM passes `check` (or `expression` gives `equals`); it is polled,
        there being no DevTools event for "this text is on the page"."""
        deadline = time.monotonic() + timeout
        value = ""
        while time.monotonic() < deadline:
            reply = await self.send("Runtime.evaluate", expression=expression)
            value = str(reply.get("result", {}).get("value", ""))
            if (value == equals) if equals is not None else check(value):
                return
            await asyncio.sleep(0.1)  # polling the page with a deadline, not timing a result
        raise AssertionError(f"the page never showed what was expected; last: {value[:300]!r}")

    async def type(self, text: str) -> None:
        await self.send("Input.insertText", text=text)

    async def enter(self) -> None:
        await self._key("Enter", 13, "\r")

    async def tab(self) -> None:
        await self._key("Tab", 9, "\t")

    async def _key(self, key: str, code: int, text: str) -> None:
        for kind in ("keyDown", "keyUp"):
            await self.send(
                "Input.dispatchKeyEvent",
                type=kind,
                key=key,
                code=key,
                windowsVirtualKeyCode=code,
                **({"text": text} if kind == "keyDown" else {}),
            )


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Page]:
    require_service("Chromium", os.path.exists(CHROMIUM), "apt-get install chromium")
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",  # tests run as root
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            # Loopback only: the page's web font (a public CDN) is never fetched.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--window-size=1280,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            assert proc.poll() is None, f"Chromium exited with {proc.returncode}"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            target = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.send("Network.enable")
                await page.send("Page.enable")
                yield page
                page.reader.cancel()
    finally:
        stop(proc)


async def test_supervisor_signs_in_through_the_browser_and_sees_the_monitor(
    served: str, browser: Page, tmp_path: Path
) -> None:
    await browser.send("Page.navigate", url=served)
    # The server's own sign-in page comes first: no console (no process) before it.
    await browser.wait_for_page(lambda text: "Sign in" in text and "One-time code" in text)
    await browser.send("Runtime.evaluate", expression="document.querySelector('#username').focus()")
    await browser.type("sue")
    await browser.tab()
    await browser.type(PASSWORD)
    await browser.wait_for_page(
        lambda _: True, "document.querySelector('#password').value.length", str(len(PASSWORD))
    )
    before = len(browser.screen)
    await browser.enter()  # submits the form; the console page opens its socket
    try:
        # Already signed in: the floor, with no console login screen on the way.
        await browser.wait_for_text("Queues", since=before, timeout=60)  # a loaded machine
        await browser.wait_for_text("Agents", since=before)
        assert "Password" not in browser.screen[before:]
    finally:  # what the page received, kept with the screenshot as the test's artefacts
        (tmp_path / "screen.txt").write_text(browser.screen[before:])
    shot = await browser.send("Page.captureScreenshot", format="png")
    (tmp_path / "monitor.png").write_bytes(base64.b64decode(shot["data"]))

    engine = make_engine(f"sqlite:///{tmp_path / 'outreach.db'}")
    with session_factory(engine)() as session:
        logins = session.scalars(
            select(AuditEvent.user_id).where(AuditEvent.action == "login")
        ).all()
        sue = session.scalar(select(User.id).where(User.username == "sue"))
    engine.dispose()
    assert logins == [sue]
