"""`outreach serve` behind its sign-in: a real server on 127.0.0.1, real HTTP and websocket
clients (aiohttp), the console processes it starts counted in /proc.

Nothing starts a console but a signed-in session: no session → 401, another Origin → 403, over
a cap → 429/503, each with no process; a signed-in socket's console opens already signed in
through a one-time ticket that works once; HTTPS from a certificate made here; the lockout after
5 failed sign-ins holds here too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from console.config import load_settings
from queues.auth import hash_password
from queues.console_tickets import TicketRefused, issue_console_ticket, redeem_console_ticket
from queues.errors import ConfigError
from queues.store.db import make_engine, session_factory, transaction
from queues.store.models import AuditEvent, ConsoleTicket, Pharmacy, User
from queues.timeutil import utcnow
from tests.conftest import add_pharmacy
from tests.console.test_serve import ROOT, free_port, stop, wait_for_port

PASSWORD = "correct-horse-1"
ANSI = re.compile(
    r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)"
)


@dataclass
class Served:
    url: str  # http(s)://127.0.0.1:PORT
    db: str
    proc: subprocess.Popen[bytes]
    ssl: ssl.SSLContext | None = None

    @property
    def origin(self) -> str:
        return self.url

    def consoles(self) -> int:
        """Console processes the server started: its descendants running `console console`."""
        return sum(1 for cmd in _descendants(self.proc.pid) if "console console" in cmd)


def _descendants(pid: int) -> list[str]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            found.append(Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
        todo.extend(parents.get(child, []))
    return found


def make_world(url: str) -> str:
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        add_pharmacy(session, "TX1")
        tx1 = session.scalars(select(Pharmacy)).one()
        for name, role in (("sue", "supervisor"), ("ann", "agent"), ("bob", "agent")):
            session.add(
                User(
                    username=name,
                    display_name=name.title(),
                    role=role,
                    password_hash=hash_password(PASSWORD),
                    pharmacies=[tx1],
                )
            )
    engine.dispose()
    return url


def start_server(
    tmp_path: Path, url: str, serve_conf: str = "", args: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], int]:
    config = tmp_path / "config.toml"
    config.write_text(f'[log]\npath = "{tmp_path / "outreach.log"}"\n\n[serve]\n{serve_conf}\n')
    port = free_port()
    log = (tmp_path / "serve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "serve", "--database", url, "--port", str(port), *args],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OUTREACH_CONFIG": str(config)},
    )
    log.close()
    return proc, port


@pytest.fixture
def world(sqlite_url: str) -> str:
    return make_world(sqlite_url)


@pytest.fixture
def serve_conf() -> str:
    return "max_consoles = 2\nmax_consoles_per_user = 1"


@pytest.fixture
def served(tmp_path: Path, world: str, serve_conf: str) -> Iterator[Served]:
    proc, port = start_server(tmp_path, world, serve_conf)
    try:
        wait_for_port(port, proc, _deadline(30))
        yield Served(f"http://127.0.0.1:{port}", world, proc)
    finally:
        stop(proc)


def _deadline(seconds: float) -> float:
    import time

    return time.monotonic() + seconds


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A cookie jar that keeps cookies for an IP address (the server is 127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def sign_in(
    http: aiohttp.ClientSession,
    served: Served,
    user: str = "sue",
    password: str = PASSWORD,
    origin: str | None = None,
) -> aiohttp.ClientResponse:
    async with http.post(
        f"{served.url}/sign-in",
        data={"username": user, "password": password, "code": ""},
        headers={"Origin": origin or served.origin},
        allow_redirects=False,
        ssl=served.ssl or True,
    ) as resp:
        await resp.read()
        return resp


class Console:
    """A console's websocket as the page drives it: the screen's text as it arrives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.screen = ""
        self.downloads: list[str] = []
        self.closed = asyncio.Event()
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                self.screen += ANSI.sub("", msg.data.decode("utf-8", "replace"))
                self.changed.set()
            elif msg.type == aiohttp.WSMsgType.TEXT:
                kind, *rest = json.loads(msg.data)
                if kind == "deliver_file_start":  # a file for the browser to fetch
                    self.downloads.append(rest[0])
                    self.changed.set()
        self.closed.set()
        self.changed.set()

    async def wait_for(self, text: str, timeout: float = 90) -> None:
        async def seen() -> None:
            while text not in self.screen:
                if self.closed.is_set():
                    raise AssertionError(
                        f"the socket closed before {text!r}: {self.screen[-300:]!r}"
                    )
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(seen(), timeout)
        except TimeoutError:
            raise AssertionError(f"{text!r} never came; last: {self.screen[-300:]!r}") from None

    async def press(self, keys: str) -> None:
        await self.ws.send_str(json.dumps(["stdin", keys]))


async def open_console(
    http: aiohttp.ClientSession, served: Served, origin: str | None = None
) -> aiohttp.ClientWebSocketResponse:
    ws_url = served.url.replace("http", "ws", 1) + "/ws?width=120&height=40"
    return await http.ws_connect(
        ws_url, origin=origin or served.origin, ssl=served.ssl or True, max_msg_size=0
    )


def audit_rows(db: str, action: str) -> list[AuditEvent]:
    engine = make_engine(db)
    try:
        with session_factory(engine)() as session:
            return list(
                session.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            )
    finally:
        engine.dispose()


# -- no session, another origin, the caps: refused, and nothing started ------------------------


async def test_without_a_session_the_page_and_the_socket_refuse_and_start_nothing(
    served: Served, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{served.url}/") as resp:
        assert resp.status == 401
        page = await resp.text()
    assert 'action="/sign-in"' in page and "ws://" not in page  # the form, not the console
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await open_console(http, served)
    assert refused.value.status == 401
    assert served.consoles() == 0
    why = [row.detail["why"] for row in audit_rows(served.db, "serve_refused")]
    assert why == ["no_session"]


async def test_another_origin_is_refused_with_a_session_and_starts_nothing(
    served: Served, http: aiohttp.ClientSession
) -> None:
    assert (await sign_in(http, served, origin="http://evil.example")).status == 403
    assert (await sign_in(http, served)).status == 303
    for origin in ("http://evil.example", "http://localhost.evil.example:1", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await open_console(http, served, origin=origin)
        assert refused.value.status == 403
    assert served.consoles() == 0
    assert [row.detail["why"] for row in audit_rows(served.db, "serve_refused")] == ["origin"] * 4


async def test_a_signed_in_browser_gets_a_console_already_signed_in_and_the_caps_hold(
    served: Served, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    resp = await sign_in(http, served)
    assert resp.status == 303
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    async with http.get(f"{served.url}/") as page:
        assert page.status == 200
        assert f'data-session-websocket-url="{served.url.replace("http", "ws")}/ws"' in (
            await page.text()
        )
    ws = await open_console(http, served)
    console = Console(ws)
    try:
        await console.wait_for("Agents")  # the supervisor's floor: no login screen on the way
        assert "Password" not in console.screen
        assert served.consoles() == 1
        # The same user again: over max_consoles_per_user = 1, told so, nothing started.
        async with http.get(f"{served.url}/") as page:
            assert page.status == 429
            assert "console" in await page.text()
        with pytest.raises(aiohttp.WSServerHandshakeError) as over:
            await open_console(http, served)
        assert over.value.status == 429
        # Another user's second console is the server's last place (max_consoles = 2) ...
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as ann:
            assert (await sign_in(ann, served, "ann")).status == 303
            ann_console = Console(await open_console(ann, served))
            await ann_console.wait_for("Ready")
            # ... and a third user finds the server full.
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as bob:
                assert (await sign_in(bob, served, "bob")).status == 303
                with pytest.raises(aiohttp.WSServerHandshakeError) as full:
                    await open_console(bob, served)
                assert full.value.status == 503
            assert served.consoles() == 2
            await ann_console.ws.close()
        # Signing out in the console (L on the floor) ends it, its socket and the session.
        await console.press("L")
        await asyncio.wait_for(console.closed.wait(), 60)
    finally:
        await ws.close()
    async with http.get(f"{served.url}/") as page:
        assert page.status == 401  # signed out: the sign-in form again
    logins = audit_rows(served.db, "login")
    assert [row.detail["source"] for row in logins] == ["web@127.0.0.1"] * 3
    used = audit_rows(served.db, "console_ticket_used")
    assert len(used) == 2 and used[0].detail == {"source": "web@127.0.0.1"}
    ended = audit_rows(served.db, "serve_session_ended")
    assert [row.detail["why"] for row in ended] == ["console_ended"]
    assert [row.detail["why"] for row in audit_rows(served.db, "serve_refused")] == [
        "cap_user",
        "cap_user",
        "cap_total",
    ]


# -- sign-in: the lockout and the slowing of the console hold here too ---------------------------


async def test_five_failed_sign_ins_lock_the_account_here_too(
    served: Served, http: aiohttp.ClientSession
) -> None:
    statuses = []
    tries = 0
    while tries < 5:
        resp = await sign_in(http, served, password="wrong-guess-x")
        statuses.append(resp.status)
        if resp.status == 429:  # slowed from the 4th failure: wait as the server says
            await asyncio.sleep(int(resp.headers["Retry-After"]))
            continue
        assert resp.status == 401
        tries += 1
    assert 429 in statuses  # the slowing per address answered at least once
    while (resp := await sign_in(http, served)).status == 429:
        await asyncio.sleep(int(resp.headers["Retry-After"]))
    assert resp.status == 401  # the right password, but the account is locked
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await open_console(http, served)
    assert served.consoles() == 0
    locked = audit_rows(served.db, "account_locked")
    assert len(locked) == 1 and locked[0].detail["source"] == "web@127.0.0.1"
    # What was typed as a password is never in the audit.
    for action in ("login_failed", "account_locked", "sign_in_slowed", "serve_refused"):
        for row in audit_rows(served.db, action):
            assert "wrong-guess-x" not in json.dumps(row.detail)
            assert PASSWORD not in json.dumps(row.detail)


# -- the ticket: once, unforgeable -----------------------------------------------------------------


def test_a_ticket_works_once_and_a_forged_or_expired_one_never(db_url: str, tmp_path: Path) -> None:
    world = make_world(db_url)
    engine = make_engine(world)
    sessions = session_factory(engine)
    try:
        with transaction(sessions) as session:
            sue = session.scalar(select(User.id).where(User.username == "sue"))
            assert sue is not None
            ticket = issue_console_ticket(session, sue, "web@127.0.0.1", utcnow())
            stale = issue_console_ticket(session, sue, "web@127.0.0.1", utcnow().replace(year=2020))
        with transaction(sessions) as session:
            stored = session.scalars(select(ConsoleTicket.token_hash)).all()
            assert ticket not in stored and len(stored) == 2  # only digests are kept
            user, source = redeem_console_ticket(session, ticket, utcnow())
        assert (user.username, source) == ("sue", "web@127.0.0.1")
        for bad in (ticket, stale, "forged-by-hand"):
            with pytest.raises(TicketRefused), transaction(sessions) as session:
                redeem_console_ticket(session, bad, utcnow())
    finally:
        engine.dispose()
    why = [row.detail["why"] for row in audit_rows(world, "console_ticket_refused")]
    assert why == ["unknown", "expired", "unknown"]
    # The console itself: a used ticket in its environment opens nothing (no login fallback).
    run = subprocess.run(
        [sys.executable, "-m", "console", "console"],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OUTREACH_DATABASE_URL": world,  # never on the command line (a password would show)
            "OUTREACH_CONSOLE_TICKET": ticket,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert "sign-in ticket is not valid" in run.stderr


# -- TLS, and where plain HTTP is refused --------------------------------------------------------


def make_certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_and_wss_with_the_configured_certificate(
    tmp_path: Path, world: str, http: aiohttp.ClientSession
) -> None:
    cert, key = make_certificate(tmp_path)
    proc, port = start_server(tmp_path, world, f'tls_cert = "{cert}"\ntls_key = "{key}"')
    try:
        wait_for_port(port, proc, _deadline(30))
        served = Served(
            f"https://127.0.0.1:{port}", world, proc, ssl.create_default_context(cafile=cert)
        )
        with pytest.raises(aiohttp.ClientError):  # plain HTTP gets nothing
            async with http.get(f"http://127.0.0.1:{port}/") as resp:
                await resp.read()
        resp = await sign_in(http, served)
        assert resp.status == 303 and "Secure" in resp.headers["Set-Cookie"]
        console = Console(await open_console(http, served))
        await console.wait_for("Agents")
        await console.ws.close()
    finally:
        stop(proc)


def run_serve(
    tmp_path: Path, world: str, serve_conf: str, *args: str
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[log]\npath = "{tmp_path / "outreach.log"}"\n\n[serve]\n{serve_conf}\n')
    return subprocess.run(
        [sys.executable, "-m", "console", "serve", "--database", world, *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OUTREACH_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_beyond_loopback_without_tls_or_a_proxy_it_refuses_to_start(
    tmp_path: Path, world: str
) -> None:
    # 192.0.2.1 (TEST-NET-1) is never bound: the refusal comes first.
    run = run_serve(tmp_path, world, "", "--host", "192.0.2.1")
    assert run.returncode == 1
    assert "plain HTTP" in run.stderr and "--behind-tls-proxy" in run.stderr
    run = run_serve(tmp_path, world, "", "--host", "192.0.2.1", "--behind-tls-proxy")
    assert run.returncode == 1 and "--public-url" in run.stderr
    run = run_serve(tmp_path, world, "behind_tls_proxy = true", "--public-url", "http://x.example")
    assert run.returncode == 1 and "https://" in run.stderr


@pytest.mark.parametrize(
    ("text", "key", "why"),
    [
        ("max_consoles = 0", "serve.max_consoles", "expected 1 to 500"),
        ("max_consoles_per_user = 99", "serve.max_consoles_per_user", "expected 1 to 20"),
        ("session_idle_minutes = true", "serve.session_idle_minutes", "expected an integer"),
        ('tls_cert = "cert.pem"', "serve.tls_key", "both"),
        ('tls_cert = "no.pem"\ntls_key = "no.key"', "serve.tls_cert", "no such file"),
        ('public_url = "https://x.example/console"', "serve.public_url", "no path"),
        ("open_to_all = true", "serve.open_to_all", "unknown key"),
    ],
)
def test_serve_settings_are_checked_naming_file_and_key(
    tmp_path: Path, text: str, key: str, why: str
) -> None:
    (tmp_path / "cert.pem").write_text("")
    config = tmp_path / "config.toml"
    config.write_text(f"[serve]\n{text}\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(ConfigError) as error:
            load_settings(config)
    finally:
        os.chdir(cwd)
    assert error.value.key == key and why in error.value.expected
    assert error.value.path == str(config)


async def test_an_account_with_a_one_time_code_signs_in_with_it(
    served: Served, http: aiohttp.ClientSession
) -> None:
    import pyotp

    secret = pyotp.random_base32()
    engine = make_engine(served.db)
    with transaction(session_factory(engine)) as session:
        ann = session.scalars(select(User).where(User.username == "ann")).one()
        ann.totp_secret = secret
    engine.dispose()
    async with http.post(
        f"{served.url}/sign-in",
        data={"username": "ann", "password": PASSWORD, "code": ""},
        headers={"Origin": served.origin},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 401
        assert "6-digit code" in await resp.text()
        assert "Set-Cookie" not in resp.headers
    async with http.post(
        f"{served.url}/sign-in",
        data={"username": "ann", "password": PASSWORD, "code": pyotp.TOTP(secret).now()},
        headers={"Origin": served.origin},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303 and "outreach_session=" in resp.headers["Set-Cookie"]


def test_a_session_ends_after_its_idle_time_unless_a_console_is_open() -> None:
    from console.serve.sessions import WebSessions
    from queues.views.user import SignedInUser

    now = [0.0]
    sessions = WebSessions(
        max_consoles=3, max_consoles_per_user=2, idle_seconds=900, clock=lambda: now[0]
    )
    sue = SignedInUser(1, "sue", "Sue", "supervisor", (1,), ("TX1",))
    first, second = sessions.open(sue, "web@a"), sessions.open(sue, "web@a")
    assert first.token != second.token  # a new token at every sign-in
    console = sessions.add_console(second, lambda: None)
    now[0] = 901
    assert sessions.find(first.token) is None  # idle past 15 minutes
    assert sessions.find(second.token) is second  # its console keeps it
    sessions.remove_console(second, console)
    now[0] = 901 + 899
    assert sessions.find(second.token) is second  # idle counts from the console's end
    now[0] = 901 + 899 + 901
    assert sessions.find(second.token) is None


async def test_signing_out_on_the_page_ends_the_session(
    served: Served, http: aiohttp.ClientSession
) -> None:
    assert (await sign_in(http, served)).status == 303
    async with http.post(
        f"{served.url}/sign-out", headers={"Origin": "http://evil.example"}, allow_redirects=False
    ) as resp:
        assert resp.status == 403  # another site's page cannot sign anyone out
    async with http.post(
        f"{served.url}/sign-out", headers={"Origin": served.origin}, allow_redirects=False
    ) as resp:
        assert resp.status == 303
    async with http.get(f"{served.url}/") as page:
        assert page.status == 401
    assert [row.detail["why"] for row in audit_rows(served.db, "serve_session_ended")] == [
        "signed_out"
    ]


async def test_behind_a_tls_proxy_the_browser_address_is_the_one_the_proxy_saw(
    tmp_path: Path, world: str, http: aiohttp.ClientSession
) -> None:
    proc, port = start_server(
        tmp_path, world, "", ("--behind-tls-proxy", "--public-url", "https://outreach.example")
    )
    try:
        wait_for_port(port, proc, _deadline(30))
        async with http.post(
            f"http://127.0.0.1:{port}/sign-in",
            data={"username": "sue", "password": PASSWORD},
            # What the proxy passes on: the browser's Origin, and the address it came from.
            headers={"Origin": "https://outreach.example", "X-Forwarded-For": "203.0.113.9"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
            assert "Secure" in resp.headers["Set-Cookie"]  # the browser is on HTTPS
        async with http.post(
            f"http://127.0.0.1:{port}/sign-in",
            data={"username": "sue", "password": PASSWORD},
            headers={"Origin": f"http://127.0.0.1:{port}"},  # around the proxy
            allow_redirects=False,
        ) as resp:
            assert resp.status == 403
    finally:
        stop(proc)
    assert [row.detail["source"] for row in audit_rows(world, "login")] == ["web@203.0.113.9"]
    assert "expecting a TLS proxy" in (tmp_path / "serve.log").read_text()


async def test_a_user_deactivated_after_signing_in_gets_no_console(
    served: Served, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    assert (await sign_in(http, served, "ann")).status == 303
    engine = make_engine(served.db)
    with transaction(session_factory(engine)) as session:
        session.scalars(select(User).where(User.username == "ann")).one().active = False
    engine.dispose()
    console = Console(await open_console(http, served))
    # The console refuses its ticket and ends; the socket and the session end with it.
    await asyncio.wait_for(console.closed.wait(), 90)
    assert "Ready" not in console.screen
    async with http.get(f"{served.url}/") as page:
        assert page.status == 401
    assert [row.detail["why"] for row in audit_rows(served.db, "console_ticket_refused")] == [
        "inactive"
    ]
    # The server's log keeps the console's own one-line error, nothing else of its stderr.
    log = (tmp_path / "outreach.log").read_text()
    assert "a console said: outreach: This console's sign-in ticket is not valid" in log


async def test_a_page_looping_on_the_socket_cannot_flood_the_audit(
    served: Served, http: aiohttp.ClientSession
) -> None:
    for _ in range(30):
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await open_console(http, served, origin="http://evil.example")
    assert served.consoles() == 0
    stop(served.proc)  # the minute's count is written as the server stops
    assert len(audit_rows(served.db, "serve_refused")) == 20
    rest = audit_rows(served.db, "serve_refusals_not_itemized")
    assert [row.detail for row in rest] == [{"source": "web@127.0.0.1", "count": 10}]


def test_refusals_past_the_minute_s_share_are_counted_and_written_when_it_is_over() -> None:
    from console.serve.refusals import RefusalCounter

    now = [0.0]
    counter = RefusalCounter(clock=lambda: now[0])
    assert [counter.count("web@a") for _ in range(25)] == [True] * 20 + [False] * 5
    assert counter.count("web@b")  # another address has its own share
    assert counter.overflowed() == []  # the minute is not over
    now[0] = 60
    assert counter.count("web@a")  # a new minute, and the last one's count is ready
    assert counter.overflowed() == [("web@a", 5)]
    assert counter.overflowed(everything=True) == []


async def test_a_report_downloads_only_to_the_session_whose_console_made_it(
    served: Served, http: aiohttp.ClientSession
) -> None:
    assert (await sign_in(http, served)).status == 303
    console = Console(await open_console(http, served))
    try:
        await console.wait_for("Agents")
        await console.press("R")
        await console.wait_for("Program report")
        await console.press("\r")  # the default pharmacy, dates and format

        async def offered() -> None:
            while not console.downloads:
                console.changed.clear()
                await console.changed.wait()

        await asyncio.wait_for(offered(), 90)
        key = console.downloads[0]
        async with (
            aiohttp.ClientSession() as stranger,  # no session
            stranger.get(f"{served.url}/download/{key}") as resp,
        ):
            assert resp.status == 401
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as ann:
            assert (await sign_in(ann, served, "ann")).status == 303
            async with ann.get(f"{served.url}/download/{key}") as resp:
                assert resp.status == 404  # another session's console made it
        async with http.get(f"{served.url}/download/{key}") as resp:
            assert resp.status == 200
            assert "attachment" in resp.headers["Content-Disposition"]
            assert len(await resp.read()) > 0
    finally:
        await console.ws.close()
