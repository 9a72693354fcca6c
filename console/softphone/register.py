"""Optional registration with a PBX (RFC 3261 §10): REGISTER, digest challenge, refresh, remove;
423 Interval Too Brief is answered with the Min-Expires the registrar asks for (§10.2.8).

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
        secure = account.registrar.startswith("sips:") or account.transport == "tls"
        registrar = account.registrar.removeprefix("sips:").removeprefix("sip:")
        self.domain = registrar.split(";")[0]
        host, _, port = self.domain.partition(":")
        self.host, self.port = host, int(port) if port.isdigit() else (5061 if secure else 5060)
        self.scheme = "sips" if secure else "sip"
        self.proto = "tls" if secure else account.transport
        self.call_id = f"{uuid.uuid4().hex}@{transport.host}"  # one Call-ID for all refreshes
        self.tag = token()
        self.cseq = 0
        self.tx: ClientTx | None = None
        self.next_at = 0.0
        self.registered = False
        self.expires = account.register_expires  # raised by a 423's Min-Expires
        self.too_brief = 0
        self.auth_tries = 0
        self.removing = False
        self.contact_hostport = f"{transport.host}:{transport.port}"

    @property
    def busy(self) -> bool:
        return self.tx is not None and self.tx.pending

    def next_deadline(self) -> float:
        return math.inf if self.busy or self.removing else self.next_at

    def on_time(self, now: float) -> None:
        if not self.busy and not self.removing and self.next_at <= now:
            self.next_at = math.inf
            self.auth_tries = 0
            self.too_brief = 0
            self._send(now, self.expires)

    def remove(self, now: float) -> None:
        """Unregister (Expires: 0) when the console closes; nothing to do if never registered."""
        self.removing = True
        if self.registered:
            self.auth_tries = 0
            self._send(now, 0)

    def _send(self, now: float, expires: int, auth: tuple[str, str] | None = None) -> None:
        self.cseq += 1
        aor = f"{self.scheme}:{self.account.username}@{self.domain}"
        try:
            hop = (self.account.server, self.account.port) if self.account.server else None
            host, port = hop or (self.host, self.port)
            dest = resolve(host, port)
            self.transport.use(dest, self.proto, host)
            via = self.transport.via(new_branch(), dest)
            contact = self.transport.contact(self.account.username, dest)
        except TransportError as exc:
            self._failed(f"registration failed: {exc}", None, now)
            return
        self.contact_hostport = contact.split("@", 1)[-1].split(";")[0].rstrip(">")
        headers = [
            ("Via", via),
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
        req = request("REGISTER", f"{self.scheme}:{self.domain}", headers)
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
                    uri=f"{self.scheme}:{self.domain}",
                    username=self.account.auth_user,
                    password=self.account.password,
                )
                self._send(now, expires, auth=(challenges[0].header, value))
                return
        if resp.status == 423 and expires and self.too_brief < 2:
            # §10.2.8: ask again for at least the Min-Expires the registrar names.
            minimum = (resp.get("Min-Expires") or "").strip()
            if minimum.isdigit() and int(minimum) > expires:
                self.too_brief += 1
                self.auth_tries = 0  # a new request: a fresh challenge may follow
                self.expires = int(minimum)
                log.info("registrar wants at least %s s (423); registering again", minimum)
                self._send(now, self.expires)
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
            if self.contact_hostport in contact and "expires=" in contact:
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
