"""Wrap-up drafts on local disk: what an agent entered survives a crash or a lost database link.

The journal, as another program may read it (a kill harness, a person after a crash):

- Where: `<[ui].drafts_path>/<database-id>/<username>/<uid>.json` for a wrap-up, one file per call
  (the attempt's uid); the script's progress is the same format under
  `<drafts_path>/<database-id>/scripts/<username>/`, named `script-<lease_token>.json`.
  `<database-id>` is the id of the database the draft was typed against (a uuid4 in the database
  itself, `queues.identity`; the same for a restored backup, never its URL): a draft is reopened
  and saved only on that database, whatever else the same user signs in to from this computer.
  Folders are created 0700, files 0600.
- Before drafts were kept per database (the "legacy" layout): `<drafts_path>/<username>/<uid>.json`
  and `<drafts_path>/scripts/<username>/`. At sign-in the console moves a legacy wrap-up draft
  into the signed-in database's folder only when that database shows it was typed there (the
  draft's `user_id` is the signed-in user's and the database holds that user's claim of the
  draft's patient within 12 hours before the file was last written, or within an hour before the
  draft's `started_at`, which a later write or a copy of the file does not move:
  `queues.identity.claimed_here`);
  any other stays where it is, untouched, and the agent is told how many and where. A legacy
  script progress file is taken up by the claim whose lease token it is named after.
- A database whose id is replaced (`outreach db new-id`, a database made afresh by `outreach demo
  --reset`, or a downgrade below migration 0021 and back) leaves its drafts under the id it had.
  They are never reopened on the new id (a copy given its own id is another database). At each
  sign-in the console notes in `<drafts_path>/<database-id>/database-addresses.json` (a JSON list)
  the address it reached that database at (backend, host, port and database name, or the SQLite
  file's absolute path; no user name or password); a folder of another id noted at the address
  signed in to now is a former id of it here: the agent is told how many of their wrap-up drafts
  are kept there and where, and they stay as they are.
- What: one JSON object. The keys of `queues.views.outcome.Outcome` (datetimes in ISO 8601 with
  their offset, `actions` as a list of `{"kind", "prescription_id", "detail"}` objects):
  `disposition` is the one shown as chosen ("" for none), `notes` the notes as typed,
  `callback_at` the callback time when what was typed is a valid time (else null),
  `callback_mine` the checkbox. A wrap-up's file also has `"form"`: what the form held that an
  Outcome cannot say — `{"version": 1, "suggested": str, "callback_text": str, "seq": int}`:
  the disposition the call suggested, the callback field exactly as typed (even half a date),
  and a counter that grows with every version this console wrote of this draft.
- When: the wrap-up screen asks for a write at every change (a disposition chosen, a key in the
  notes or the callback field, a slot picked, the checkbox) through `DraftWriter.save_soon`; the
  writer's thread writes the newest version at most `DEBOUNCE_SECONDS` after the first change it
  has not written yet (so a field typed is on disk within about 0.3 s plus one fsync, even while
  the agent keeps typing). Save writes the form at once (`DraftWriter.save`) before it is sent.
- How: the new version goes to `<uid>.tmp`, is fsynced, renamed over `<uid>.json`, and the folder
  is fsynced: a reader sees the old whole version or the new whole version, never half of one. A
  `.tmp` left by a kill mid-write is ignored.
- Removed: once the database has the attempt (on time or stored late); a retried send carries the
  same uid, so the database stores it once. A draft the database refused as invalid stays: it is
  what the agent typed, and the form shows the problem. A draft whose `user_id` is not the
  signed-in user's is never saved: it stays, and the agent is told so.
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from queues.views.outcome import ActionRequest, Outcome
from queues.views.user import SignedInUser

_DATETIMES = {"started_at", "ended_at", "connected_at", "callback_at"}
FORM_VERSION = 1
# A burst of keys costs one write: the first change not yet on disk is written this long after it.
DEBOUNCE_SECONDS = 0.3
# The threads that write drafts, by name: a process that ends without Python's teardown waits for
# them first (console/cli/ending.py). A screen closes its writers at unmount on a thread named
# here; each writer is a WRITER_THREAD.
WRITER_THREAD = "draft-writer"
WRAP_UP_CLOSING = "wrap-up-drafts"
WORKSPACE_CLOSING = "workspace-stop"


@dataclass(frozen=True)
class FormState:
    """What the wrap-up form holds beside the Outcome (see the module's docstring)."""

    suggested: str = ""
    callback_text: str = ""
    seq: int = 0


@dataclass(frozen=True)
class Draft:
    outcome: Outcome
    form: FormState | None  # None: written before the form was journaled (or a script's)
    written: float  # the file's modification time (time.time())


def _outcome(raw: dict[str, Any]) -> Outcome:
    known = {f.name for f in fields(Outcome)}
    values: dict[str, Any] = {
        k: (datetime.fromisoformat(v) if k in _DATETIMES and v else v)
        for k, v in raw.items()
        if k in known
    }
    # JSON gives the follow-up actions back as plain objects.
    values["actions"] = tuple(
        a if isinstance(a, ActionRequest) else ActionRequest(**a) for a in values.get("actions", ())
    )
    return Outcome(**values)


def _form(raw: Any) -> FormState | None:
    if not isinstance(raw, dict):
        return None
    return FormState(
        suggested=str(raw.get("suggested") or ""),
        callback_text=str(raw.get("callback_text") or ""),
        seq=int(raw.get("seq") or 0),
    )


def database_folder(root: Path, database_id: str) -> Path:
    """`<drafts_path>/<database-id>`; ValueError when `database_id` is not a database's id (a
    uuid), so no draft is ever kept where any database would read it."""
    try:
        canonical = str(uuid.UUID(database_id))
    except (ValueError, TypeError, AttributeError):
        raise ValueError(
            f"drafts: {database_id!r} is not a database id (a uuid; the signed-in user's)"
        ) from None
    return root / canonical


def _read(path: Path) -> Draft | None:
    try:
        written = path.stat().st_mtime
        raw: dict[str, Any] = json.loads(path.read_text())
        return Draft(_outcome(raw), _form(raw.get("form")), written)
    except (OSError, ValueError, TypeError):
        return None  # gone meanwhile, or a file a reader cannot use


class DraftStore:
    """One user's drafts typed against one database: `<root>/<database_id>/<username>` (or
    `<root>/<database_id>/scripts/<username>` for the script's progress)."""

    def __init__(
        self, root: Path, database_id: str, username: str, *, scripts: bool = False
    ) -> None:
        folder = _made_database_folder(root, database_id)
        if scripts:
            folder = folder / "scripts"
            _make_folder(folder)
        self.dir = folder / username
        _make_folder(self.dir)

    @classmethod
    def of(cls, root: Path, user: SignedInUser, *, scripts: bool = False) -> DraftStore:
        """The signed-in user's drafts on the database they signed in to."""
        return cls(root, user.database_id, user.username, scripts=scripts)

    def save(self, outcome: Outcome, form: FormState | None = None) -> None:
        data: dict[str, Any] = {
            k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(outcome).items()
        }
        if form is not None:
            data["form"] = {"version": FORM_VERSION, **asdict(form)}
        target = self.dir / f"{outcome.uid}.json"
        _write_json(target, target.with_suffix(".tmp"), data)

    def _sync_dir(self) -> None:
        """The rename (or unlink) itself survives a power cut only once the folder is synced."""
        _sync_folder(self.dir)

    def adopt(self, legacy: Path) -> bool:
        """Move a legacy-layout draft file into this store (its name kept); False, and nothing
        moved, when this store has a draft of that name already."""
        target = self.dir / legacy.name
        if target.exists():
            return False
        os.replace(legacy, target)  # the same file system: both under drafts_path
        self._sync_dir()
        _sync_folder(legacy.parent)
        return True

    def discard(self, uid: str) -> None:
        path = self.dir / f"{uid}.json"
        if path.exists():
            path.unlink(missing_ok=True)
            self._sync_dir()

    def load(self, uid: str) -> Draft | None:
        """One draft by its uid, or None (none, or torn)."""
        return _read(self.dir / f"{uid}.json")

    def drafts(self) -> list[Draft]:
        """Every draft on disk, in file-name order."""
        return [d for p in sorted(self.dir.glob("*.json")) if (d := _read(p)) is not None]

    def pending(self) -> list[Outcome]:
        return [d.outcome for d in self.drafts()]


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(target: Path, tmp: Path, data: Any) -> None:
    """`data` as `target`, whole or not at all: written to `tmp` (0600), fsynced, renamed over
    `target`, and the folder synced (the rename survives a power cut only then)."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    _sync_folder(target.parent)


def _made_database_folder(root: Path, database_id: str) -> Path:
    """`<root>/<database_id>`, made (and `root` too, with the default mode) unless it is there."""
    if not root.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        _sync_folder(root.parent)
    folder = database_folder(root, database_id)
    _make_folder(folder)
    return folder


def _make_folder(folder: Path) -> None:
    """Make `folder` (0700) unless it is there, and sync its entry in its parent: a draft written
    or moved into a folder made a moment before must not sit in a folder a power cut forgets (an
    adopted legacy draft's old entry is gone for good once its folder is synced)."""
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        return
    _sync_folder(folder.parent)


@dataclass(frozen=True)
class LegacyDraft:
    """A wrap-up draft in the layout from before drafts were kept per database."""

    path: Path
    draft: Draft


def legacy_folder(root: Path, username: str, *, scripts: bool = False) -> Path:
    """Where drafts were kept before they were kept per database (see the module's docstring)."""
    return (root / "scripts" if scripts else root) / username


def legacy_drafts(root: Path, username: str) -> list[LegacyDraft]:
    """The user's wrap-up drafts in the legacy layout, in file-name order (nothing is made)."""
    folder = legacy_folder(root, username)
    if not folder.is_dir():
        return []
    return [LegacyDraft(p, d) for p in sorted(folder.glob("*.json")) if (d := _read(p)) is not None]


# In a database's folder, beside its users' folders: '-' is in no user name (queues.auth.add_user).
ADDRESSES_NOTE = "database-addresses.json"


# A server URL's host, port and database as SQLAlchemy reads them (sqlalchemy.engine.url's
# pattern): the password runs to its '@' and may hold an unquoted '/', '?', '#' or '[', which
# urlsplit takes for the path, the query, a fragment or an IPv6 host (then failing, or keeping the
# user name and the password's first characters as the host and port).
_SERVER_URL = re.compile(
    r"[\w+]+://(?:[^:/]*(?::[^@]*)?@)?"
    r"(?:(?:\[(?P<ipv6host>[^/?]+)\]|(?P<ipv4host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?"
    r"(?:/(?P<database>[^?]*))?"
)


def database_address(url: str) -> str:
    """Where a database URL reaches, as this computer names it: the backend, host, port and
    database name, or for SQLite the file's absolute path (as the console opens it); no driver,
    user name, password or options. "" for a database in memory (it has no address) or a URL
    SQLAlchemy would not open."""
    backend = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if backend == "sqlite":
        path = unquote(url.split("://", 1)[1].split("?", 1)[0])[1:]
        if not path or path == ":memory:" or "mode=memory" in url:
            return ""
        if not path.startswith("file:"):
            path = str(Path(path).absolute())
        return f"sqlite:///{path}"
    found = _SERVER_URL.match(url)
    if not backend or found is None:
        return ""
    host = (found["ipv4host"] or found["ipv6host"] or "").lower()
    try:
        port = int(found["port"]) if found["port"] else (5432 if backend == "postgresql" else "")
    except ValueError:  # SQLAlchemy refuses it too: no database is reached there
        return ""
    return f"{backend}://{host}:{port}/{unquote(found['database'] or '')}"


def _addresses(note: Path) -> set[str]:
    try:
        raw = json.loads(note.read_text())
    except (OSError, ValueError):
        return set()
    return {a for a in raw if isinstance(a, str)} if isinstance(raw, list) else set()


def note_address(root: Path, database_id: str, address: str) -> None:
    """Note (in `<root>/<database_id>/`) that this computer reached that database at `address`;
    nothing is written when it is noted already."""
    note = database_folder(root, database_id) / ADDRESSES_NOTE
    known = _addresses(note)
    if not address or address in known:
        return
    folder = _made_database_folder(root, database_id)
    tmp = folder / f"{ADDRESSES_NOTE}.{uuid.uuid4().hex}.tmp"  # two consoles at once: each its own
    _write_json(note, tmp, sorted(known | {address}))


@dataclass(frozen=True)
class FormerIdDrafts:
    """A user's wrap-up drafts kept under a former id of the database signed in to."""

    folder: Path  # <root>/<former id>/<username>
    count: int


def former_id_drafts(
    root: Path, database_id: str, address: str, username: str
) -> list[FormerIdDrafts]:
    """The user's wrap-up drafts under ids other than `database_id` that this computer noted at
    `address` (see the module's docstring), by folder name; nothing is made or moved."""
    current = database_folder(root, database_id).name
    found: list[FormerIdDrafts] = []
    if not address:
        return found
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            if folder.name == current or str(uuid.UUID(folder.name)) != folder.name:
                continue
        except ValueError:
            continue
        if address not in _addresses(folder / ADDRESSES_NOTE):
            continue
        mine = folder / username
        count = sum(1 for p in mine.glob("*.json") if _read(p) is not None)
        if count:
            found.append(FormerIdDrafts(mine, count))
    return found


_Job = tuple[str, Any]


class DraftWriter:
    """Saves and discards drafts on one background thread, in the order they were asked for: the
    UI thread only enqueues (never waits on a lock or a disk), and a later save can never be
    overwritten by an earlier one. `save_soon` coalesces a burst of changes into one write at
    most `debounce` seconds after the first of them. `on_error` is called on the writer thread
    with a failed write's OSError."""

    def __init__(
        self,
        store: DraftStore,
        on_error: Callable[[OSError], None],
        debounce: float = DEBOUNCE_SECONDS,
    ) -> None:
        self.store = store
        self._on_error = on_error
        self._debounce = debounce
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=WRITER_THREAD, daemon=True)
        self._thread.start()

    def save(self, outcome: Outcome, form: FormState | None = None) -> None:
        """Write this version now (after what was asked before it)."""
        self._jobs.put(("save", (outcome, form)))

    def save_soon(self, outcome: Outcome, form: FormState | None = None) -> None:
        """Write this version within `debounce` seconds of the first change not yet written; a
        newer version asked meanwhile replaces it."""
        self._jobs.put(("soon", (outcome, form)))

    def discard(self, uid: str) -> None:
        self._jobs.put(("discard", uid))

    def finish(self, uid: str) -> None:
        """The database has this draft's attempt: remove it, and ignore any later save of it (a
        key typed while the save was on its way must not bring the draft back)."""
        self._jobs.put(("finish", uid))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything asked so far is on disk (from a worker: it waits on the disk).
        False when the timeout came first."""
        done = threading.Event()
        self._jobs.put(("flush", done))
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop (from a worker or at exit: it may wait on the disk)."""
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        soon: dict[str, tuple[Outcome, FormState | None]] = {}
        finished: set[str] = set()
        deadline: float | None = None
        while True:
            try:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                job = self._jobs.get(timeout=wait)
            except queue.Empty:
                self._write_all(soon)
                deadline = None
                continue
            if job is None:
                self._write_all(soon)
                return
            kind, what = job
            if kind == "soon":
                outcome, form = what
                if outcome.uid not in finished:
                    soon[outcome.uid] = what
                    if deadline is None:
                        deadline = time.monotonic() + self._debounce
            elif kind == "save":
                outcome, form = what
                soon.pop(outcome.uid, None)
                if outcome.uid not in finished:
                    self._write(self.store.save, outcome, form)
            elif kind in ("discard", "finish"):
                soon.pop(what, None)
                if kind == "finish":
                    finished.add(what)
                self._write(self.store.discard, what)
            elif kind == "flush":
                self._write_all(soon)
                deadline = None
                what.set()
            if not soon:
                deadline = None

    def _write_all(self, soon: dict[str, tuple[Outcome, FormState | None]]) -> None:
        for outcome, form in soon.values():
            self._write(self.store.save, outcome, form)
        soon.clear()

    def _write(self, job: Callable[..., None], *args: Any) -> None:
        try:
            job(*args)
        except OSError as exc:
            self._on_error(exc)
