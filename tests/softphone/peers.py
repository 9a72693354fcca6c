"""Kamailio (registrar and proxy, digest with qop, a TLS listener) and baresip (an auto-answering
callee, SRTP) started on loopback on free ports for the interop tests, and stopped after them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.softphone.ports import free_tcp_port, free_udp_port, wait_bound, wait_listening

SIP_DIR = Path(__file__).resolve().parents[1] / "sip"
PASSWORD = "s3cret-pw"
KAMAILIO_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"


@dataclass
class Kamailio:
    udp_port: int  # UDP and TCP
    tls_port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        stop(self.proc)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End the peer and every process it forked (kamailio's workers): each peer starts in a
    session of its own, and a worker left behind by a run stopped midway once span on a closed
    socket, writing its log until the disk was full."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def kamailio_available() -> bool:
    return shutil.which("kamailio") is not None and Path(KAMAILIO_MODULES, "tls.so").exists()


def start_kamailio(workdir: Path, cert: Path, key: Path, *, min_expires: int = 60) -> Kamailio:
    workdir.mkdir(parents=True, exist_ok=True)
    udp, tls = free_udp_port(), free_tcp_port()
    tls_cfg = workdir / "tls.cfg"
    text = (SIP_DIR / "kamailio-tls.cfg").read_text()
    tls_cfg.write_text(text.replace("@KEY@", str(key)).replace("@CERT@", str(cert)))
    values = {
        "@RUNDIR@": str(workdir),
        "@UDP_PORT@": str(udp),
        "@TLS_PORT@": str(tls),
        "@MODULES@": KAMAILIO_MODULES,
        "@TLS_CFG@": str(tls_cfg),
        "@PASSWORD@": PASSWORD,
        "@MIN_EXPIRES@": str(min_expires),
    }
    cfg = (SIP_DIR / "kamailio.cfg").read_text()
    for name, value in values.items():
        cfg = cfg.replace(name, value)
    (workdir / "kamailio.cfg").write_text(cfg)
    log = workdir / "kamailio.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                "kamailio",
                "-f",
                str(workdir / "kamailio.cfg"),
                "-DD",
                "-E",
                "-w",
                str(workdir),
                "-P",
                str(workdir / "kamailio.pid"),
                "-Y",
                str(workdir),
                "-m",
                "32",
                "-M",
                "8",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
        )
    peer = Kamailio(udp, tls, proc, log)
    try:
        wait_bound(udp)
        wait_listening(tls, "kamailio")
    except RuntimeError:
        peer.stop()
        raise RuntimeError(f"kamailio did not start:\n{peer.output()[-3000:]}") from None
    return peer


@dataclass
class Baresip:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        stop(self.proc)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def baresip_available() -> bool:
    return shutil.which("baresip") is not None


def start_baresip(workdir: Path, registrar_port: int, *, srtp: str = "srtp-mand") -> Baresip:
    """baresip as bob, registered with Kamailio, answering every call at once; `srtp` is its
    mediaenc (srtp-mand: SDES-keyed SRTP or no call; "" plain RTP)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_udp_port()
    (workdir / "config").write_text(
        "\n".join(
            [
                f"sip_listen\t127.0.0.1:{port}",
                "module_path\t/usr/lib/baresip/modules",
                "module\tg711.so",
                "module\tausine.so",
                "module\taufile.so",
                "module\tsrtp.so",
                "module_app\taccount.so",
                "module_app\tmenu.so",
                "audio_source\tausine,440",
                "ausrc_srate\t48000",  # ausine makes 48 kHz only; baresip resamples to 8 kHz
                "auplay_srate\t48000",
                "ausrc_channels\t2",  # … in stereo only
                "auplay_channels\t2",
                f"audio_player\taufile,{workdir / 'heard.wav'}",
                "audio_alert\taufile,/dev/null",
                "rtp_stats\tyes",
                "sip_trans_def\tudp",
                "",
            ]
        )
    )
    enc = f";mediaenc={srtp}" if srtp else ""
    (workdir / "accounts").write_text(
        f"<sip:bob@127.0.0.1:{registrar_port}>;auth_pass={PASSWORD};answermode=auto"
        f";regint=600;ptime=20;audio_codecs=PCMU,PCMA{enc}\n"
    )
    log = workdir / "baresip.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["baresip", "-f", str(workdir), "-4"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
        )
    peer = Baresip(port, proc, log)
    try:
        wait_bound(port)
    except RuntimeError:
        peer.stop()
        raise RuntimeError(f"baresip did not start:\n{peer.output()[-3000:]}") from None
    return peer
