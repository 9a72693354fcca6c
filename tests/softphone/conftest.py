"""A real SIP peer (sipp, on loopback, on free ports) and a real softphone for each test."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from console.softphone import (
    CallEvent,
    CallState,
    DialPermit,
    PhoneEvent,
    SipAccount,
    SipTimers,
    Softphone,
)
from tests.conftest import require_service
from tests.softphone.ports import free_udp_port, wait_bound, wait_listening

SCENARIOS = Path(__file__).resolve().parents[1] / "sip"
EVENT_WAIT = 20.0  # seconds: a bound on waiting for an event, never a pause


@dataclass
class SippPeer:
    scenario: str
    port: int
    media_port: int
    proc: subprocess.Popen[bytes]
    messages: Path
    errors: Path

    @property
    def uri(self) -> str:
        return f"sip:patient@127.0.0.1:{self.port}"

    def wait(self, timeout: float = 30.0) -> int:
        """sipp's exit status: 0 when every call's dialog went as the scenario demands."""
        return self.proc.wait(timeout=timeout)

    def trace(self) -> str:
        return self.messages.read_text(errors="replace") if self.messages.exists() else ""

    def received(self, method: str) -> list[str]:
        """The `method` requests sipp received (text), from its -trace_msg file."""
        found = []
        for block in re.split(r"^-{40,} .*$", self.trace(), flags=re.M):
            head, _, text = block.strip("\n").partition("\n")
            if "message received" in head and text.strip().startswith(method + " "):
                found.append(text.strip())
        return found

    def sent(self, status: int) -> list[str]:
        """The responses with `status` sipp sent."""
        found = []
        for block in re.split(r"^-{40,} .*$", self.trace(), flags=re.M):
            head, _, text = block.strip("\n").partition("\n")
            if "message sent" in head and text.strip().startswith(f"SIP/2.0 {status} "):
                found.append(text.strip())
        return found


def permit(target: str, seconds: float = 60.0) -> DialPermit:
    """A permit to call `target` with the account's caller ID, valid for `seconds`."""
    return DialPermit.for_seconds(target, seconds)


def header(message: str, name: str) -> str:
    for line in message.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


@dataclass(frozen=True)
class Certs:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that signed nothing here: trusting only it must fail the handshake


def make_certs(where: Path) -> Certs:
    """openssl CLI: a CA, a server key and certificate (SAN IP:127.0.0.1, DNS:localhost)."""
    certs = Certs(where / "ca.pem", where / "server.pem", where / "server.key", where / "other.pem")
    if certs.cert.exists():
        return certs
    require_service("openssl", shutil.which("openssl") is not None, "apt-get install -y openssl")
    where.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True)

    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign"]
    for name, cn in (("ca", "Outreach Test CA"), ("other", "Someone Else's CA")):
        run(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-subj",
            f"/CN={cn}",
            *ca_ext,
        )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    )
    (where / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n"
    )
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    )
    return certs


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def sipp(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., SippPeer]]:
    require_service("sipp", shutil.which("sipp") is not None, "apt-get install -y sip-tester")
    started: list[SippPeer] = []

    def start(
        scenario: str, *extra: str, calls: int | None = 1, transport: str = "udp"
    ) -> SippPeer:
        # A sipp that never comes up on its ports (one CI run in many: it exited at start, its
        # error file gone with the run) is started again on fresh ports, twice at most; what it
        # wrote to stderr is in the error if the third fails too.
        for attempt in range(3):
            port, media = free_udp_port(), free_udp_port(pair=True)
            n = len(started)
            messages, errors = tmp_path / f"sipp_{n}_msg.log", tmp_path / f"sipp_{n}_err.log"
            args = ["sipp", "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port)]
            args += ["-mi", "127.0.0.1", "-mp", str(media), "-nostdin", "-trace_msg"]
            args += ["-message_file", str(messages), "-trace_err", "-error_file", str(errors)]
            if calls is not None:
                args += ["-m", str(calls)]
            if transport == "tcp":
                args += ["-t", "t1"]
            elif transport == "tls":
                certs: Certs = request.getfixturevalue("certs")
                args += ["-t", "l1", "-tls_cert", str(certs.cert), "-tls_key", str(certs.key)]
            stderr = tmp_path / f"sipp_{n}_{attempt}_stderr.log"
            with stderr.open("wb") as err:
                proc = subprocess.Popen(
                    [*args, *extra], stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path
                )
            try:
                if transport == "udp":
                    wait_bound(port)
                else:
                    wait_listening(port)
            except RuntimeError as error:
                proc.kill()
                proc.wait()
                if attempt == 2:
                    said = stderr.read_text(errors="replace").strip()[-500:]
                    raise RuntimeError(f"{error}; sipp said: {said or 'nothing'}") from error
                continue
            peer = SippPeer(scenario, port, media, proc, messages, errors)
            started.append(peer)
            return peer
        raise AssertionError("unreachable")

    yield start
    for peer in started:
        if peer.proc.poll() is None:
            peer.proc.send_signal(signal.SIGTERM)
            try:
                peer.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                peer.proc.kill()
                peer.proc.wait()


@dataclass
class Phone:
    """A started softphone and the events it reported, in order."""

    phone: Softphone
    events: queue.SimpleQueue[PhoneEvent]
    seen: list[PhoneEvent] = field(default_factory=list)

    def next_call_event(self, timeout: float = EVENT_WAIT) -> CallEvent:
        while True:
            event = self.events.get(timeout=timeout)
            self.seen.append(event)
            if isinstance(event, CallEvent):
                return event

    def wait_for(self, state: CallState, timeout: float = EVENT_WAIT) -> CallEvent:
        while True:
            event = self.next_call_event(timeout)
            if event.state == state:
                return event
            if event.state == CallState.ENDED:
                raise AssertionError(f"call ended ({event.reason}, {event.detail}) before {state}")

    def states(self) -> list[str]:
        return [e.state.value for e in self.seen if isinstance(e, CallEvent)]


@pytest.fixture
def make_phone() -> Iterator[Callable[..., Phone]]:
    phones: list[Softphone] = []

    def make(account: SipAccount | None = None, timers: SipTimers | None = None) -> Phone:
        events: queue.SimpleQueue[PhoneEvent] = queue.SimpleQueue()
        acct = account or SipAccount(caller_id="+12145550100", display_name="Main St Pharmacy")
        phone = Softphone(acct, events.put, timers=timers)
        phone.start()
        phones.append(phone)
        return Phone(phone, events)

    yield make
    for phone in phones:
        phone.stop()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
