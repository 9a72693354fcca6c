"""A small FHIR server on 127.0.0.1 for the import tests: SMART Backend Services tokens (that
expire), paged searches, a bulk $export with polling, and a 429 and a 503 on the way."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt

CLIENT_ID = "outreach-test"
TOKEN_USES = 3  # a token is good for this many requests, then 401 (expired)


@dataclass
class ServerState:
    files: dict[str, list[str]]  # resource type -> NDJSON lines
    public_key: Any
    base: str = ""
    tokens: dict[str, int] = field(default_factory=dict)  # token -> uses left
    issued: int = 0
    expired_answers: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    status_polls: int = 0
    page_size: int = 5
    # resource type -> (status, body) its search is answered with (a type the server refuses)
    refused: dict[str, tuple[int, Any]] = field(default_factory=dict)
    # a bulk export's error files: name -> NDJSON lines of OperationOutcomes (None: listed in the
    # manifest, answered 404)
    errors: dict[str, list[str] | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
            data = (
                b""
                if body is None
                else (body if isinstance(body, bytes) else json.dumps(body).encode())
            )
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            with state.lock:
                left = state.tokens.get(token, 0)
                if left <= 0:
                    state.expired_answers += 1
                    return False
                state.tokens[token] = left - 1
            return True

        def do_POST(self) -> None:  # the token endpoint
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            assertion = form.get("client_assertion", [""])[0]
            try:
                claims = jwt.decode(
                    assertion,
                    state.public_key,
                    algorithms=["RS384"],
                    audience=f"{state.base}/token",
                )
            except jwt.PyJWTError:
                self._send(401, {"error": "invalid_client"})
                return
            assert claims["iss"] == claims["sub"] == CLIENT_ID
            assert form["grant_type"] == ["client_credentials"]
            with state.lock:
                state.issued += 1
                token = f"token-{state.issued}"
                state.tokens[token] = TOKEN_USES
            self._send(200, {"access_token": token, "token_type": "bearer", "expires_in": 300})

        def do_GET(self) -> None:
            url = urlparse(self.path)
            with state.lock:
                state.hits[url.path] += 1
                hit = state.hits[url.path]
            if url.path == "/.well-known/smart-configuration":
                self._send(200, {"token_endpoint": f"{state.base}/token"})
                return
            if not self._authorized():
                self._send(401, {"resourceType": "OperationOutcome"})
                return
            if url.path == "/$export":
                if hit == 1:  # the first kick-off: too many requests
                    self._send(429, headers={"Retry-After": "0"})
                    return
                self._send(202, headers={"Content-Location": f"{state.base}/status/1"})
                return
            if url.path == "/status/1":
                state.status_polls += 1
                if state.status_polls == 1:
                    self._send(202, headers={"Retry-After": "0", "X-Progress": "50%"})
                    return
                if state.status_polls == 2:
                    self._send(503, headers={"Retry-After": "0"})
                    return
                output = [{"type": k, "url": f"{state.base}/files/{k}.ndjson"} for k in state.files]
                self._send(
                    200,
                    {
                        "transactionTime": "2026-12-02T00:00:00Z",
                        "requiresAccessToken": True,
                        "output": output,
                        "error": [
                            {"type": "OperationOutcome", "url": f"{state.base}/errors/{name}"}
                            for name in state.errors
                        ],
                    },
                )
                return
            if url.path.startswith("/errors/"):
                found = state.errors.get(url.path.removeprefix("/errors/"))
                if found is None:
                    self._send(404, {"resourceType": "OperationOutcome"})
                else:
                    self._send(200, ("\n".join(found) + "\n").encode())
                return
            if url.path.startswith("/files/"):
                kind = url.path.removeprefix("/files/").removesuffix(".ndjson")
                self._send(200, ("\n".join(state.files.get(kind, [])) + "\n").encode())
                return
            kind = url.path.strip("/")
            if kind == "Patient" and hit == 1:  # the first search: unavailable for a moment
                self._send(503, headers={"Retry-After": "0"})
                return
            if kind in state.refused:
                self._send(*state.refused[kind])
                return
            page = int(parse_qs(url.query).get("page", ["0"])[0])
            lines = state.files.get(kind, [])
            chunk = lines[page * state.page_size : (page + 1) * state.page_size]
            bundle: dict[str, Any] = {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": json.loads(line)} for line in chunk],
                "link": [],
            }
            if (page + 1) * state.page_size < len(lines):
                bundle["link"].append(
                    {"relation": "next", "url": f"{state.base}/{kind}?page={page + 1}"}
                )
            self._send(200, bundle)

    return Handler


@contextmanager
def fhir_server(folder: Path, kinds: tuple[str, ...], public_key: Any) -> Iterator[ServerState]:
    files = {k: (folder / f"{k}.000.ndjson").read_text().splitlines() for k in kinds}
    state = ServerState(files, public_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
