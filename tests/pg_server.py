"""A throwaway PostgreSQL server of one's own, to stop and start mid-test (shared/recipes/
postgres-for-tests.md): initdb in a temporary folder, loopback only, a free port; run as the
`postgres` user when we are root (initdb and postgres refuse root). `pg_ctl -w` waits until the
server accepts connections (or has stopped), so no sleeps are needed around a start or stop.

For tests and benchmarks only: fsync=off, trust authentication."""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian's layout, else PATH), or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.name.split(".")],
    )
    if found and (Path(found[-1]) / "pg_ctl").exists():
        return Path(found[-1])
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class OwnPostgres:
    """One server: `start()`, `stop()` (fast or immediate), `start()` again on the same port and
    data; `close()` stops it and removes its folder."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="outreach-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.root:
            command = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.dir / "pg.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args[:2])} failed: {done.stderr}\n{tail}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "pg.log"),
            "-w",
            "-o",
            options,
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop it: `fast` (connections are cut, a clean shutdown) or `immediate` (as a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def close(self) -> None:
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
