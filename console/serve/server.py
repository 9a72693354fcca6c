"""textual-serve's Server behind a sign-in: nothing starts a console but a signed-in session.

Built on `textual_serve.server.Server` (its page, its static files, its websocket protocol and
its AppService, which runs one console process per socket); what is ours:
- `/sign-in`: user name, password and one-time code, checked by the console's own `Accounts`
  (queues.auth: the lockout per account, the slowing per source, here "web@ADDRESS"); success
  opens a session (a random token in an HttpOnly, SameSite=Strict cookie, Secure over TLS).
- `/` and `/ws` refuse without a session (401), from another Origin (403) and over the caps
  (429 for one user, 503 for the server), before any process is started.
- A console is started with a one-time ticket (queues.console_tickets) and opens signed in.
- A console that ends on its own (signed out, quit, crashed) ends its session and its sockets.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.server import Server, to_int

from console.serve import is_loopback
from console.serve.pages import refusal_page, sign_in_page
from console.serve.process import ServedConsole
from console.serve.refusals import RefusalCounter
from console.serve.sessions import Refused, WebSession, WebSessions
from console.serve.settings import ServeSettings, origin_of
from console.services.accounts import Accounts
from console.services.store import Store
from queues.audit import record
from queues.console_tickets import issue_console_ticket
from queues.errors import (
    AuthenticationFailed,
    DatabaseUnavailable,
    NotAllowed,
    SecondFactorRequired,
    SignInSlowed,
)
from queues.store.db import transaction
from queues.timeutil import utcnow

log = logging.getLogger("outreach.serve")

COOKIE = "outreach_session"
# A typed password or code longer than this is refused unread (argon2 would hash it whole).
MAX_FIELD = 256


class GuardedServer(Server):
    def __init__(
        self,
        command: str,
        *,
        store: Store,
        settings: ServeSettings,
        host: str,
        port: int,
        public_origin: str | None,
        ssl_context: ssl.SSLContext | None,
        behind_tls_proxy: bool,
    ) -> None:
        self.tls = ssl_context is not None
        scheme = "https" if self.tls else "http"
        self.public_origin = public_origin
        super().__init__(
            command,
            host=host,
            port=port,
            title="Outreach Console",
            public_url=public_origin or origin_of(scheme, host, port),
        )
        self.store = store
        self.ssl_context = ssl_context
        self.behind_tls_proxy = behind_tls_proxy
        self.loopback = is_loopback(host)
        self.sessions = WebSessions(
            max_consoles=settings.max_consoles,
            max_consoles_per_user=settings.max_consoles_per_user,
            idle_seconds=settings.session_idle_minutes * 60,
        )
        self._refusals = RefusalCounter()
        # Secure when the browser reaches us over HTTPS: ours, or the proxy's in front.
        self.secure_cookie = self.tls or behind_tls_proxy

    # -- the aiohttp application ----------------------------------------------------------
    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[_security_headers], client_max_size=64 * 1024)
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.get("/sign-in", self.handle_sign_in_page, name="sign_in"),
                web.post("/sign-in", self.handle_sign_in, name="sign_in_post"),
                web.post("/sign-out", self.handle_sign_out, name="sign_out"),
                web.get("/ws", self.handle_websocket, name="websocket"),
                web.get("/download/{key}", self.handle_download, name="download"),
                web.static("/static", self.statics_path, name="static"),
            ]
        )
        app.on_startup.append(self.on_startup)
        app.on_shutdown.append(self.on_shutdown)
        return app

    def initialize_logging(self) -> None:
        """The CLI has set up the product's log file; textual-serve's terminal logging stays off."""

    async def on_startup(self, app: web.Application) -> None:
        print(f"outreach serve: browsers sign in at {self.public_url}/", file=sys.stderr)

    async def on_shutdown(self, app: web.Application) -> None:
        for session in self.sessions:
            for close in self.sessions.end(session):
                close()
        for source, count in self._refusals.overflowed(everything=True):
            await self.audit("serve_refusals_not_itemized", None, source=source, count=count)

    def serve(self, debug: bool = False) -> None:
        """Serve until SIGINT or SIGTERM (textual-serve's loop, with our TLS context)."""
        import signal

        self.debug = debug
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_exit)
        web.run_app(
            self._make_app(),
            host=self.host,
            port=self.port,
            ssl_context=self.ssl_context,
            handle_signals=False,
            loop=loop,
            print=lambda *args: None,
            access_log=None,
        )

    # -- who and where ----------------------------------------------------------------------
    def source(self, request: web.Request) -> str:
        """The sign-in source: the browser's address (behind a proxy on this machine, the last
        address its X-Forwarded-For names: the one the proxy saw)."""
        address = request.remote or "unknown"
        forwarded = request.headers.get("X-Forwarded-For", "")
        if self.behind_tls_proxy and forwarded and is_loopback(address):
            address = forwarded.split(",")[-1].strip()[:64] or address
        return f"web@{address}"

    def allowed_origin(self, request: web.Request) -> str | None:
        """The one Origin we answer: the public URL's, else on loopback the Host the browser
        asked for (a loopback name only), else the listening address's."""
        if self.public_origin:
            return self.public_origin
        scheme = "https" if self.tls else "http"
        if self.loopback:
            try:
                asked = urlsplit(f"//{request.host}")
                host, port = asked.hostname, asked.port
            except ValueError:
                return None
            if not host or not is_loopback(host):
                return None
            return origin_of(scheme, host, port)
        return origin_of(scheme, self.host, self.port)

    def origin_ok(self, request: web.Request) -> bool:
        allowed = self.allowed_origin(request)
        sent = request.headers.get("Origin")
        if allowed is None or not sent:
            return False
        try:
            parts = urlsplit(sent)
            return (
                parts.scheme in ("http", "https")
                and bool(parts.hostname)
                and origin_of(parts.scheme, parts.hostname or "", parts.port) == allowed
            )
        except ValueError:
            return False

    def session_of(self, request: web.Request) -> WebSession | None:
        return self.sessions.find(request.cookies.get(COOKIE))

    async def audit(self, action: str, user_id: int | None, **detail: Any) -> None:
        def write() -> None:
            with transaction(self.store.sessions) as session:
                record(session, action, user_id=user_id, detail=detail)

        try:
            await asyncio.to_thread(write)
        except DatabaseUnavailable:
            log.warning("serve: could not audit %s (database unreachable)", action)

    async def refuse(
        self, request: web.Request, status: int, why: str, message: str, user_id: int | None
    ) -> web.Response:
        source = self.source(request)
        if self._refusals.count(source):
            await self.audit("serve_refused", user_id, source=source, path=request.path, why=why)
        for source, count in self._refusals.overflowed():
            await self.audit("serve_refusals_not_itemized", None, source=source, count=count)
        titles = {401: "Sign in first", 403: "Refused", 429: "Too many consoles"}
        return _html(refusal_page(titles.get(status, "Not now"), message), status)

    # -- pages ------------------------------------------------------------------------------
    async def handle_sign_in_page(self, request: web.Request) -> web.Response:
        return _html(sign_in_page(), 200)

    async def handle_sign_in(self, request: web.Request) -> web.Response:
        if not self.origin_ok(request):
            return await self.refuse(
                request, 403, "origin", "This sign-in did not come from this site's page.", None
            )
        form = await request.post()
        username = str(form.get("username", ""))[:64].strip()
        password = str(form.get("password", ""))
        code = str(form.get("code", "")).strip() or None
        if not username or not password:
            return _html(sign_in_page("Enter your user name and password.", username), 401)
        if len(password) > MAX_FIELD:
            return _html(sign_in_page(AuthenticationFailed.GENERIC, username), 401)
        source = self.source(request)
        accounts = Accounts(self.store, source=source)
        try:
            user = await asyncio.to_thread(accounts.sign_in, username, password, code)
        except SecondFactorRequired as asked:
            return _html(sign_in_page(f"{asked} Type your password again with it.", username), 401)
        except SignInSlowed as slowed:
            response = _html(sign_in_page(str(slowed), username), 429)
            response.headers["Retry-After"] = str(slowed.wait_seconds)
            return response
        except (AuthenticationFailed, NotAllowed) as refused:
            return _html(sign_in_page(str(refused), username), 401)
        except DatabaseUnavailable:
            return _html(
                sign_in_page("The database is unreachable: try again in a moment.", username),
                503,
            )
        session = self.sessions.open(user, source)
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            COOKIE,
            session.token,
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookie,
            path="/",
        )
        raise response

    async def handle_sign_out(self, request: web.Request) -> web.Response:
        if not self.origin_ok(request):
            return await self.refuse(request, 403, "origin", "Not from this site's page.", None)
        session = self.session_of(request)
        if session is not None:
            await self.end_session(session, "signed_out")
        response = web.HTTPSeeOther("/sign-in")
        response.del_cookie(COOKIE, path="/")
        raise response

    async def end_session(self, session: WebSession, why: str) -> None:
        for close in self.sessions.end(session):
            close()
        await self.audit("serve_session_ended", session.user.id, source=session.source, why=why)

    async def handle_index(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        if session is None:
            # The sign-in form, as the 401's body: nothing of the console without a session.
            return _html(sign_in_page(), 401)
        try:
            self.sessions.check_room(session)
        except Refused as refused:
            return await self.refuse(
                request, refused.status, refused.why, str(refused), session.user.id
            )
        base = self.allowed_origin(request) or self.public_url
        ws_base = ("wss:" if base.startswith("https:") else "ws:") + base.split(":", 1)[1]
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{ws_base}/ws",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
        }
        response = aiohttp_jinja2.render_template("app_index.html", request, context)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def handle_download(self, request: web.Request) -> web.StreamResponse:
        session = self.session_of(request)
        if session is None:
            raise web.HTTPUnauthorized(text="Sign in first.")
        try:
            download = await self.download_manager.get_download_metadata(request.match_info["key"])
        except KeyError:
            raise web.HTTPNotFound(text="No such download.") from None
        app_service = download.app_service
        if getattr(app_service, "web_session", None) is not session:
            raise web.HTTPNotFound(text="No such download.")
        return await super().handle_download(request)

    # -- the console's websocket --------------------------------------------------------------
    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        if not self.origin_ok(request):
            # Another site's page (or no page at all): refused before anything is started.
            session = self.session_of(request)
            await self.refuse(
                request, 403, "origin", "Refused.", session.user.id if session else None
            )
            raise web.HTTPForbidden(text="This socket did not come from this site's page.")
        session = self.session_of(request)
        if session is None:
            await self.refuse(request, 401, "no_session", "Sign in first.", None)
            raise web.HTTPUnauthorized(text="Sign in first.")
        websocket = web.WebSocketResponse(heartbeat=15)
        try:
            console = self.sessions.add_console(session, _closer(websocket))
        except Refused as refused:
            await self.refuse(request, refused.status, refused.why, str(refused), session.user.id)
            over = web.HTTPTooManyRequests if refused.status == 429 else web.HTTPServiceUnavailable
            raise over(text=str(refused)) from None
        try:
            ticket = await asyncio.to_thread(self._issue_ticket, session)
        except DatabaseUnavailable:
            self.sessions.remove_console(session, console)
            raise web.HTTPServiceUnavailable(text="The database is unreachable.") from None
        except BaseException:
            self.sessions.remove_console(session, console)
            raise
        if console not in session.consoles:  # signed out meanwhile
            raise web.HTTPUnauthorized(text="Signed out.")
        app_service: ServedConsole | None = None
        try:
            await websocket.prepare(request)
            app_service = ServedConsole(
                self.command,
                ticket=ticket,
                # Signed out in the console (or it quit or died): the browser's session ends
                # with it, and its other consoles' sockets.
                on_ended=lambda: self.end_session(session, "console_ended"),
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            app_service.web_session = session  # type: ignore[attr-defined]
            width = to_int(request.query.get("width", "80"), 80)
            height = to_int(request.query.get("height", "24"), 24)
            await app_service.start(width, height)
            await self._process_messages(websocket, app_service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception:
            log.exception("serve: a console's socket failed")
        finally:
            self.sessions.remove_console(session, console)
            if app_service is not None:
                await app_service.stop()
        return websocket

    def _issue_ticket(self, session: WebSession) -> str:
        with transaction(self.store.sessions) as db:
            return issue_console_ticket(db, session.user.id, session.source, utcnow())


def _closer(websocket: web.WebSocketResponse) -> Callable[[], object]:
    def close() -> object:
        if websocket.prepared and not websocket.closed:
            return asyncio.ensure_future(websocket.close(message=b"session ended"))
        return None

    return close


def _html(body: str, status: int) -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        _harden(exc.headers)
        raise
    if not response.prepared:
        _harden(response.headers)
    return response


def _harden(headers: Any) -> None:
    # The console is never framed by another site's page (clickjacking), and our URLs are never
    # sent elsewhere (same-origin, not no-referrer: under no-referrer a browser's form POST
    # carries "Origin: null", and the sign-in's Origin check refused Chromium).
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Content-Type-Options", "nosniff")
