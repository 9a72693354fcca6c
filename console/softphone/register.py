"""Optional registration with a PBX (RFC 3261 §10): REGISTER, digest challenge, refresh, remove.

A trunk that takes calls by IP needs none ([sip].registrar empty). Registration never blocks the
softphone: calls can be placed while it is pending or failing (the PBX will say 401/403 if it
insists).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable

from console.softphone import digest
from console.softphone.account import SipAccount
from console.softphone.events import RegistrationEvent
from console.softphone.message import SipMessage, new_branch, request, token
from console.softphone.transport import ClientTx, SipTransport, TransportError, resolve

log = logging.getLogger(__name__)
RETRY_SECONDS = 60.0


class Registration:
    def __init__(
        self,
        account: SipAccount,
        transport: SipTransport,
        emit: Callable[[RegistrationEvent], None],
    ) -> None:
        self.account = account
        self.transport = transport
        self._emit = emit
        registrar = account.registrar.removeprefix("sip:")
        self.domain = registrar.split(";")[0]
        host, _, port = self.domain.partition(":")
        self.host, self.port = host, int(port) if port.isdigit() else 5060
        self.call_id = f"{uuid.uuid4().hex}@{transport.host}"  # one Call-ID for all refreshes
        self.tag = token()
        self.cseq = 0
        self.tx: ClientTx | None = None
        self.next_at = 0.0
        self.registered = False
        self.expires = account.register_expires
        self.auth_tries = 0
        self.removing = False

    @property
    def busy(self) -> bool:
        return self.tx is not None and self.tx.pending

    def next_deadline(self) -> float:
        return math.inf if self.busy or self.removing else self.next_at

    def on_time(self, now: float) -> None:
        if not self.busy and not self.removing and self.next_at <= now:
            self.next_at = math.inf
            self.auth_tries = 0
            self._send(now, self.account.register_expires)

    def remove(self, now: float) -> None:
        """Unregister (Expires: 0) when the console closes; nothing to do if never registered."""
        self.removing = True
        if self.registered:
            self.auth_tries = 0
            self._send(now, 0)

    def _send(self, now: float, expires: int, auth: tuple[str, str] | None = None) -> None:
        self.cseq += 1
        aor = f"sip:{self.account.username}@{self.domain}"
        contact = f"<sip:{self.account.username}@{self.transport.host}:{self.transport.port}>"
        headers = [
            ("Via", self.transport.via(new_branch())),
            ("Max-Forwards", "70"),
            ("From", f"<{aor}>;tag={self.tag}"),
            ("To", f"<{aor}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} REGISTER"),
            ("Contact", contact),
            ("Expires", str(expires)),
            ("User-Agent", "OutreachConsole-softphone/1"),
        ]
        if auth is not None:
            headers.append(auth)
        req = request("REGISTER", f"sip:{self.domain}", headers)
        try:
            hop = (self.account.server, self.account.port) if self.account.server else None
            dest = resolve(*(hop or (self.host, self.port)))
        except TransportError as exc:
            self._failed(f"registration failed: {exc}", None, now)
            return
        self.tx = self.transport.start_transaction(
            req,
            dest,
            now,
            lambda resp: self._on_response(resp, expires),
            lambda what, network: self._failed(f"registration failed: {what}", None, now),
        )

    def _on_response(self, resp: SipMessage, expires: int) -> None:
        now = time.monotonic()
        if resp.status in (401, 407) and self.auth_tries < 2 and self.account.password:
            challenges = digest.challenges_in(resp)
            if challenges and (self.auth_tries == 0 or challenges[0].stale):
                self.auth_tries += 1
                value = digest.answer(
                    challenges[0],
                    method="REGISTER",
                    uri=f"sip:{self.domain}",
                    username=self.account.auth_user,
                    password=self.account.password,
                )
                self._send(now, expires, auth=(challenges[0].header, value))
                return
        if 200 <= resp.status < 300:
            if expires == 0:
                self.registered = False
                self._emit(RegistrationEvent(False, time.time(), "unregistered", resp.status))
                return
            granted = self._granted(resp) or expires
            self.registered = True
            self.next_at = now + max(granted * 0.8, min(granted, 5))
            self._emit(RegistrationEvent(True, time.time(), f"registered for {granted} s", 200))
            return
        self._failed(f"registration refused: {resp.status} {resp.reason}", resp.status, now)

    def _granted(self, resp: SipMessage) -> int | None:
        for contact in resp.get_all("Contact"):
            if f"{self.transport.host}:{self.transport.port}" in contact and "expires=" in contact:
                value = contact.split("expires=")[1].split(";")[0].split(",")[0].strip()
                if value.isdigit():
                    return int(value)
        value = (resp.get("Expires") or "").strip()
        return int(value) if value.isdigit() else None

    def _failed(self, detail: str, status: int | None, now: float) -> None:
        self.registered = False
        self.next_at = now + RETRY_SECONDS
        log.warning("%s", detail)
        if not self.removing:
            self._emit(RegistrationEvent(False, time.time(), detail, status))
