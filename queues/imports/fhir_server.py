"""FHIR input from a server's base URL, with httpx: paged searches that follow `next` links, or a bulk
`$export` (kick-off, polling Content-Location as Retry-After says, downloading each NDJSON file).

Authorization: a bearer token, or SMART Backend Services (client credentials with a JWT signed by
the client's private key, RFC 7523); the secrets come from environment variables, never a file.
A 429 or 503 is retried after its Retry-After (tenacity); a 401 with a token fetches a new one once.
A server that refuses one resource type's search (404, 403, 400… often with an OperationOutcome
saying why: a type it does not support, or one the client may not read) has that type counted as
skipped with its reason, and the rest imported; a refused Patient search fails the import.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from tenacity import RetryCallState, retry, retry_if_exception_type, stop_after_attempt

from queues.imports.fhir import READ, FhirReader
from queues.imports.fhir_files import POOL_MIN_BYTES, read_document, read_lines
from queues.imports.records import Rejected, SourceUnreadable

FHIR_JSON = "application/fhir+json"
RETRIES = 6  # tries of one request that a server answers 429/503
LONGEST_WAIT = 120.0  # seconds, whatever a Retry-After asks
EXPORT_TIMEOUT = 3600.0  # seconds a bulk export may take to be ready
# What a server answers a search for a resource type it does not serve or lets this client read.
REFUSED = (400, 403, 404, 405, 410, 501)
# How a refused type is named among the skipped resources: "Kind (search refused: 404: why)".
SEARCH_REFUSED = "search refused"
# How the errors a bulk export reports (its manifest's `error` files) are named among the
# rejected: "$export error (OperationOutcome.ndjson:3)", with the issue's text only.
EXPORT_ERROR = "$export error"


@dataclass(frozen=True)
class ServerAuth:
    """How to authorize; every secret is the *name* of an environment variable holding it."""

    token_env: str = ""  # a bearer token
    client_id: str = ""  # SMART Backend Services
    private_key_env: str = ""  # PEM of the client's key (RS384 or ES384)
    key_id: str = ""
    token_url: str = ""  # empty: from the server's .well-known/smart-configuration
    scope: str = "system/*.read"
    algorithm: str = "RS384"


class _Retry(Exception):
    def __init__(self, wait: float, why: str) -> None:
        self.wait, self.why = wait, why
        super().__init__(why)


class SearchRefused(SourceUnreadable):
    """The server refused a request for a reason that will not pass by retrying."""

    def __init__(self, url: str, status: int, reason: str) -> None:
        self.status, self.reason = status, reason
        super().__init__(f"{url}: the server answered {status}" + (f": {reason}" if reason else ""))


def _outcome_reason(response: httpx.Response) -> str:
    """What an OperationOutcome says (its first issue's diagnostics or details), shortened."""
    try:
        data = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        return ""
    return _outcome_text(data)


def _outcome_text(data: Any) -> str:
    """An OperationOutcome's first issue's diagnostics or details text, shortened ("" for
    anything else): never the rest of it, which may carry the resource it is about."""
    if not isinstance(data, dict) or data.get("resourceType") != "OperationOutcome":
        return ""
    for issue in data.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        details = issue.get("details")
        text = issue.get("diagnostics") or (
            details.get("text") if isinstance(details, dict) else ""
        )
        if isinstance(text, str) and text.strip():
            return " ".join(text.split())[:160]
    return ""


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After", "")
    if value.strip().isdigit():
        return min(float(value), LONGEST_WAIT)
    try:
        at = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return default
    return min(max(0.0, at - time.time()), LONGEST_WAIT)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    return error.wait if isinstance(error, _Retry) else 1.0


class FhirServer:
    """One server; `get` is a request with the retries and the token handling above."""

    def __init__(
        self,
        base_url: str,
        auth: ServerAuth,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.auth = auth
        self.client = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
        self._token: str | None = None
        self._signing_key: Any = None  # the SMART client's private key, parsed once
        self._sleep = sleep

    def close(self) -> None:
        self.client.close()

    # --- authorization -------------------------------------------------------------------------
    def _secret(self, name: str, what: str) -> str:
        value = os.environ.get(name, "")
        if not value:
            raise SourceUnreadable(f"{what}: set the environment variable {name}")
        return value

    def _bearer(self, fresh: bool = False) -> str | None:
        if self.auth.client_id:
            if self._token is None or fresh:
                self._token = self._client_credentials()
            return self._token
        if self.auth.token_env:  # unset: a server that asks for no authorization
            return os.environ.get(self.auth.token_env) or None
        return None

    def _client_credentials(self) -> str:
        import jwt  # PyJWT, with cryptography for RS384/ES384

        token_url = self.auth.token_url or self._discover_token_url()
        if self._signing_key is None:
            # Parsed (and, for RSA, checked by cryptography: ~40 ms) once, not at every token:
            # a server whose tokens run out often had an import re-read it every few requests.
            pem = self._secret(self.auth.private_key_env, "the SMART client's private key")
            self._signing_key = jwt.get_algorithm_by_name(self.auth.algorithm).prepare_key(pem)
        key = self._signing_key
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": self.auth.client_id,
                "sub": self.auth.client_id,
                "aud": token_url,
                "exp": now + 300,
                "jti": uuid.uuid4().hex,
            },
            key,
            algorithm=self.auth.algorithm,
            headers={"kid": self.auth.key_id} if self.auth.key_id else None,
        )
        response = self._send(
            "POST",
            token_url,
            data={
                "grant_type": "client_credentials",
                "scope": self.auth.scope,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
            authorize=False,
        )
        token = response.json().get("access_token") if response.content else None
        if not isinstance(token, str):
            raise SourceUnreadable(f"{token_url}: the token endpoint gave no access_token")
        return token

    def _discover_token_url(self) -> str:
        url = f"{self.base}/.well-known/smart-configuration"
        found = self._send("GET", url, authorize=False).json().get("token_endpoint")
        if not isinstance(found, str):
            raise SourceUnreadable(f"{url}: no token_endpoint (set the token URL in [import])")
        return found

    # --- requests ------------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        url: str,
        *,
        authorize: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        sleep = self._sleep

        @retry(
            retry=retry_if_exception_type(_Retry),
            wait=_wait,
            stop=stop_after_attempt(RETRIES),
            sleep=sleep,
            reraise=True,
        )
        def attempt() -> httpx.Response:
            return self._once(method, url, authorize, headers or {}, kwargs)

        try:
            return attempt()
        except _Retry as error:
            raise SourceUnreadable(f"{url}: {error.why} {RETRIES} times; try again later") from None

    def _once(
        self,
        method: str,
        url: str,
        authorize: bool,
        headers: dict[str, str],
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        sent = dict(headers)
        token = self._bearer() if authorize else None
        if token:
            sent["Authorization"] = f"Bearer {token}"
        try:
            response = self.client.request(method, url, headers=sent, **kwargs)
            if response.status_code == 401 and token and self.auth.client_id:
                # The token expired: one new one, and the same request again.
                sent["Authorization"] = f"Bearer {self._bearer(fresh=True)}"
                response = self.client.request(method, url, headers=sent, **kwargs)
        except httpx.TimeoutException:
            raise _Retry(1.0, "timed out") from None
        except httpx.TransportError as error:
            raise SourceUnreadable(f"{url}: {error}") from None
        if response.status_code in (429, 503):
            raise _Retry(_retry_after(response, 1.0), f"the server answered {response.status_code}")
        if response.status_code in REFUSED:
            raise SearchRefused(url, response.status_code, _outcome_reason(response))
        if response.status_code >= 400:
            raise SourceUnreadable(f"{url}: the server answered {response.status_code}")
        return response

    # --- reading -------------------------------------------------------------------------------
    def search(self, reader: FhirReader, advance: Callable[[int], None]) -> None:
        """Every resource type an import reads, each as a paged search following `next`.

        A type whose first search the server refuses is counted skipped, named with the server's
        reason ("MedicationDispense (search refused: 404 …)"); the others are read. A refusal on a
        later page, or of the Patient search, fails the import: half a type would be stored as if
        whole, and without patients there is nothing to import."""
        for kind in READ:
            url: str | None = f"{self.base}/{kind}?_count=1000"
            page = 0
            while url:
                page += 1
                try:
                    response = self._send("GET", url, headers={"Accept": FHIR_JSON})
                except SearchRefused as refused:
                    if page > 1 or kind == "Patient":
                        raise
                    why = (
                        f"{refused.status}: {refused.reason}" if refused.reason else refused.status
                    )
                    reader.batch.skip(f"{kind} ({SEARCH_REFUSED}: {why})")
                    break
                advance(len(response.content))
                bundle = _json(response, url)
                read_document(bundle, f"{kind} page {page}", reader)
                url = next(
                    (
                        link.get("url")
                        for link in bundle.get("link", [])
                        if isinstance(link, dict) and link.get("relation") == "next"
                    ),
                    None,
                )

    def bulk_export(self, reader: FhirReader, advance: Callable[[int], None]) -> None:
        """`$export` (FHIR Bulk Data): kick off, poll until complete, read each output file."""
        kick = self._send(
            "GET",
            f"{self.base}/$export?_type={','.join(READ)}",
            headers={"Accept": FHIR_JSON, "Prefer": "respond-async"},
        )
        status_url = kick.headers.get("Content-Location")
        if kick.status_code != 202 or not status_url:
            raise SourceUnreadable(f"{self.base}/$export: no 202 with a Content-Location")
        deadline = time.monotonic() + EXPORT_TIMEOUT
        while True:
            status = self._send("GET", status_url, headers={"Accept": "application/json"})
            if status.status_code == 200:
                break
            if time.monotonic() > deadline:
                raise SourceUnreadable(f"{status_url}: the export was not ready in time")
            self._sleep(_retry_after(status, 1.0))  # 202: in progress
        manifest = _json(status, status_url)
        for output in manifest.get("output", []):
            url = output.get("url") if isinstance(output, dict) else None
            if not isinstance(url, str):
                continue
            headers = {"Accept": "application/fhir+ndjson"}
            if manifest.get("requiresAccessToken") is False:
                response = self._send("GET", url, headers=headers, authorize=False)
            else:
                response = self._send("GET", url, headers=headers)
            advance(len(response.content))
            name = url.rsplit("/", 1)[-1]
            content = response.content
            lines = enumerate(_lines(content), 1)
            read_lines(lines, name, reader, parallel=len(content) >= POOL_MIN_BYTES)
        self._export_errors(manifest, reader, advance)

    def _export_errors(
        self, manifest: dict[str, Any], reader: FhirReader, advance: Callable[[int], None]
    ) -> None:
        """The manifest's `error` files (NDJSON of OperationOutcomes, Bulk Data IG): each issue
        is counted and named among the rejected by its text alone; an error file that cannot be
        fetched is named so. They fail nothing: what the export did give is whole."""
        for entry in manifest.get("error") or []:
            url = entry.get("url") if isinstance(entry, dict) else None
            if not isinstance(url, str):
                continue
            name = url.rsplit("/", 1)[-1]
            headers = {"Accept": "application/fhir+ndjson"}
            try:
                response = self._send(
                    "GET",
                    url,
                    headers=headers,
                    authorize=manifest.get("requiresAccessToken") is not False,
                )
            except SourceUnreadable as error:
                why = f"the error file could not be fetched: {error}"
                reader.batch.rejected.append(Rejected(f"{EXPORT_ERROR} ({name})", why))
                continue
            advance(len(response.content))
            for number, line in enumerate(_lines(response.content), 1):
                if not line.strip():
                    continue
                try:
                    text = _outcome_text(orjson.loads(line))
                except orjson.JSONDecodeError:
                    text = ""
                reader.batch.rejected.append(
                    Rejected(
                        f"{EXPORT_ERROR} ({name}:{number})",
                        text or "an error the server did not explain (no OperationOutcome text)",
                    )
                )


def _lines(content: bytes) -> Iterator[bytes]:
    yield from content.splitlines()


def _json(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise SourceUnreadable(f"{url}: the server's answer is not JSON") from None
    if not isinstance(data, dict):
        raise SourceUnreadable(f"{url}: the server's answer is not a JSON object")
    return data
