"""One console process per signed-in socket: textual-serve's AppService with a one-time ticket
in the process's environment, a word when it ends on its own, and its stderr kept out of the
server's output."""

from __future__ import annotations

import asyncio
import json
import logging
from asyncio.subprocess import Process
from collections.abc import Awaitable, Callable
from typing import Any

from textual_serve.app_service import AppService

from console.serve.ticket import TICKET_ENV

log = logging.getLogger("outreach.serve")


class ServedConsole(AppService):
    """One console process for one signed-in socket: its ticket goes in its environment (never
    on a command line `ps` shows), and it tells whether it ended on its own."""

    def __init__(
        self, command: str, *, ticket: str, on_ended: Callable[[], Awaitable[None]], **kwargs: Any
    ) -> None:
        super().__init__(command, **kwargs)
        self._ticket = ticket
        self._on_ended = on_ended
        self._stderr_task: asyncio.Task[None] | None = None
        self.stopping = False  # the server is stopping it (the browser went away)
        self.ended_itself = False  # it exited or died while the browser was still there

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        process = await super()._open_app_process(width, height)
        # textual-serve copies a console's stderr to the server's stdout whole; a Textual crash
        # report there lists the locals of every frame (a patient's name, a number). We keep our
        # own one-line errors ("outreach: …", which never carry health information) and the fact
        # that there was more, never the text.
        stderr, quiet = process.stderr, asyncio.StreamReader()
        quiet.feed_eof()
        process.stderr = quiet
        if stderr is not None:
            self._stderr_task = asyncio.create_task(_keep_own_errors(stderr))
        return process

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width, height)
        environment[TICKET_ENV] = self._ticket
        return environment

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            if not self.stopping:
                # The process ended (sign-out, quit, a crash): the socket ends with it; a dead
                # process behind a live socket would leave the page blank and the place taken.
                await self._ended()
                await self.remote_close()

    async def on_meta(self, data: bytes) -> None:
        if not self.stopping and json.loads(data).get("type") == "exit":
            await self._ended()
        await super().on_meta(data)

    async def _ended(self) -> None:
        """Before the socket closes: the browser must find its session gone (and the audit
        saying so) once it sees that."""
        if not self.ended_itself:
            self.ended_itself = True
            await self._on_ended()

    async def stop(self) -> None:
        self.stopping = True
        await super().stop()


async def _keep_own_errors(stderr: asyncio.StreamReader) -> None:
    other = 0
    while line := await stderr.readline():
        text = line.decode("utf-8", "replace").rstrip()
        if text.startswith("outreach: ") and len(text) < 500:
            log.warning("serve: a console said: %s", text)
        elif text:
            other += len(line)
    if other:
        log.error("serve: a console wrote %d bytes of other output on stderr (not kept)", other)
