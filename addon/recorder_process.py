"""The live recorder process: started on the proxy's store, watched, restarted when it dies.

The proxy journals every exchange itself (addon/journal.py), so the recorder process
(addon/worker.py in journal mode) can die without losing anything: whatever it had not written
is still in the journal, and the next one applies it (it starts where the store says it
stopped). This module is the proxy's side:

- `start()`: the first process, waited for (a store that cannot be opened stops the proxy at
  start-up with one line); afterwards its stdout is watched on the event loop (`add_reader`),
  so its death is noticed at once (EOF), with no polling.
- Restart: at once after the first death; after deaths without progress (nothing committed
  since it started) back off 1, 2, 4 ... 30 s, saying so every time. The journal keeps every
  exchange meanwhile, up to its limit (`runtap_journal_limit`); past it new exchanges are not
  recorded, with an error line (addon/journal.py) -- recording never stops silently.
- A record that crashes the process: after CAREFUL_AFTER deaths in a row without progress, the
  next process applies the records journaled so far one at a time, announcing each
  (`trying`). If it dies on one, that record has crashed the recorder three times: the next
  process moves it aside (`<db>.journal/quarantine.seg`, one error line) and goes on.
- `close()`: tell the process to stop; it applies what the journal holds and exits. If none
  is running (backing off), one more is started for that.

`recover_journal` is `runtap recover`: the same process, told to stop at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import time

from runtap.addon.journal import JournalLock, JournalWriter, journal_dir, segments
from runtap.addon.worker import CLOSE_SECONDS, WorkerResult, read_ready, spawn
from runtap.errors import RuntapError

log = logging.getLogger("runtap.addon")

CAREFUL_AFTER = 2  # deaths in a row without progress before records are applied one at a time
MAX_BACKOFF = 30.0
START_SECONDS = 60.0
Position = tuple[int, int]


class RecorderProcess:
    """The recorder child of one proxy (see the module docstring)."""

    def __init__(
        self, db: str, *, redact: tuple[str, ...] = (), log_level: str = "INFO", otlp: str | None = None
    ) -> None:
        self.db = db
        self.redact = redact
        self.otlp = otlp  # `--otlp URL`: the process sends the spans of runs as they end (otel/live.py)
        self.log_level = log_level
        self.journal: JournalWriter | None = None  # set once the journal is open (for its end and size)
        self.restarts = 0
        self.quarantine: set[Position] = set()
        self._proc: subprocess.Popen | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer = b""
        self._applied: Position | None = None  # last commit the current process reported
        self._applied_at_start: Position | None = None
        self._trying: Position | None = None
        self._careful_until: Position | None = None
        self._no_progress = 0
        self._restart: asyncio.TimerHandle | None = None
        self._closing = False
        self._result: WorkerResult | None = None

    # --- life cycle ---------------------------------------------------------------------------------
    def start(self) -> int:
        """Start the first process and wait for it; return the journal segment the store has applied.

        RuntapError when the store cannot be opened (or a module is missing)."""
        self._proc = spawn(self._settings(), self.log_level)
        text = read_ready(self._proc, START_SECONDS)
        if not text.startswith("ready"):
            self._proc = None
            raise RuntapError(text.removeprefix("error: ") or f"the recorder process for {self.db} did not start")
        return int(text.split()[1])

    def watch(self) -> None:
        """Watch the process from the running event loop (call once, on the loop)."""
        self._loop = asyncio.get_running_loop()
        self._watch()

    def close(self, timeout: float = 2 * CLOSE_SECONDS) -> WorkerResult | None:
        """Tell the process to apply what the journal holds and exit; wait for it (`timeout`)."""
        self._closing = True
        if self._restart is not None:
            self._restart.cancel()
        if self._proc is None:  # it died and was not restarted yet: one more, to apply the rest
            try:
                self._proc = spawn(self._settings(), self.log_level)
                read_ready(self._proc, START_SECONDS)
            except OSError as exc:
                log.error("runtap: cannot start the recorder process: %s", exc)
                self._proc = None
        if self._proc is None:
            return None
        self._unwatch()
        with contextlib.suppress(OSError):
            self._proc.stdin.write(b"stop\n")
            self._proc.stdin.flush()
        self._read_until_done(timeout)
        self._reap(timeout)
        if self._result is None:
            left = self.journal.pending_bytes() if self.journal is not None else 0
            log.error(
                "runtap: the recorder process did not finish; %d KB of exchanges stay in the journal %s: "
                "the next `runtap proxy --db %s` or `runtap recover --db %s` applies them",
                left >> 10,
                journal_dir(self.db),
                self.db,
                self.db,
            )
        return self._result

    # --- the process's output -------------------------------------------------------------------------
    def _watch(self) -> None:
        if self._loop is not None and self._proc is not None:
            self._loop.add_reader(self._proc.stdout.fileno(), self._readable)

    def _unwatch(self) -> None:
        if self._loop is not None and self._proc is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._proc.stdout.fileno())

    def _readable(self) -> None:
        data = os.read(self._proc.stdout.fileno(), 65536)
        if not data:
            self._died()
            return
        self._lines(data)

    def _lines(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            word, _, rest = raw.decode(errors="replace").partition(" ")
            if word == "applied":
                self._applied = _position(rest)
                if self.journal is not None:
                    self.journal.applied(self._applied)
                if self._careful_until is not None and self._applied >= self._careful_until:
                    self._careful_until = None
            elif word == "trying":
                self._trying = _position(rest)
            elif word == "ready":
                if self.restarts:
                    log.warning("runtap: recorder process restarted on %s", self.db)
            elif word == "done":
                self._result = WorkerResult(**json.loads(rest))
            elif word == "error:":
                log.error("runtap: the recorder process cannot start: %s", rest)

    def _read_until_done(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        fd = self._proc.stdout.fileno()
        while self._result is None and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            data = os.read(fd, 65536)
            if not data:
                break
            self._lines(data)

    def _reap(self, timeout: float) -> int | None:
        proc, self._proc = self._proc, None
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("runtap: the recorder process for %s did not finish within %.0fs; stopping it", self.db, timeout)
            proc.kill()
            code = proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        return code

    # --- death and restart ------------------------------------------------------------------------------
    def _died(self) -> None:
        self._unwatch()
        code = self._reap(5.0)
        self._buffer = b""
        if self._closing:
            return
        culprit, self._trying = self._trying, None
        if culprit is not None and (self._applied is None or self._applied <= culprit):
            self.quarantine.add(culprit)
            self._no_progress, delay = 0, 0.0
            log.error(
                "runtap: the recorder process died (%s) on the exchange at journal position %d:%d, "
                "applied alone after %d deaths in a row: restarting it; the new one moves that exchange "
                "aside to %s/quarantine.seg (it is not recorded) and goes on",
                _how(code),
                culprit[0],
                culprit[1],
                CAREFUL_AFTER,
                journal_dir(self.db),
            )
        else:
            delay = self._counted_death(code)
        self._restart = self._loop.call_later(delay, self._respawn) if self._loop is not None else None

    def _counted_death(self, code: int | None) -> float:
        """Count a death, say what happens next; the delay before the next process."""
        self._no_progress = 0 if self._applied != self._applied_at_start else self._no_progress + 1
        delay = 0.0 if self._no_progress <= 1 else min(2.0 ** (self._no_progress - 2), MAX_BACKOFF)
        if self._no_progress >= CAREFUL_AFTER and self._careful_until is None and self.journal is not None:
            self._careful_until = self.journal.end()
        waiting = self.journal.pending_bytes() >> 10 if self.journal is not None else 0
        limit = self.journal.limit_bytes >> 20 if self.journal is not None else 0
        if self._no_progress <= 1:
            log.error(
                "runtap: the recorder process for %s exited unexpectedly (%s); restarting it now. "
                "Exchanges it had not written are in the journal (%d KB) and go to the store from there",
                self.db,
                _how(code),
                waiting,
            )
        else:
            log.error(
                "runtap: the recorder process for %s died again (%s; %d times in a row without writing "
                "anything); next attempt in %.0f s%s. Exchanges wait in the journal (%d KB; past %d MB new "
                "ones are not recorded)",
                self.db,
                _how(code),
                self._no_progress,
                delay,
                "; it will apply them one at a time to find the one that crashes it"
                if self._careful_until is not None
                else "",
                waiting,
                limit,
            )
        return delay

    def _respawn(self) -> None:
        self._restart = None
        if self._closing:
            return
        self.restarts += 1
        try:
            self._proc = spawn(self._settings(), self.log_level)
        except OSError as exc:
            log.error("runtap: cannot start the recorder process: %s; retrying in %.0f s", exc, MAX_BACKOFF)
            self._restart = self._loop.call_later(MAX_BACKOFF, self._respawn)
            return
        self._applied_at_start = self._applied
        self._watch()

    def _settings(self) -> dict:
        return {
            "db": self.db,
            "journal": journal_dir(self.db),
            "redact": list(self.redact),
            "max_queued_rows": 20_000,  # memory only: the recorder reads the journal no faster than it writes
            # Each batch opens and closes the store (~25 ms): fewer, bigger batches cost only
            # freshness, as the journal already holds everything; the store is <= ~1 s behind.
            "batch_rows": 2000,
            "batch_seconds": 1.0,
            "quarantine": sorted(self.quarantine),
            "careful_until": self._careful_until,
            "stop": self._closing,
            "otlp": self.otlp,
        }


def recover_journal(db: str, *, redact: tuple[str, ...] = (), log_level: str = "INFO") -> WorkerResult | None:
    """`runtap recover`: apply what the journal of `db` holds and is not in the store yet.

    None when there is no journal. RuntapError while a proxy records to `db` (it applies its
    journal itself), or when the store cannot be opened or written.
    """
    directory = journal_dir(db)
    if not segments(directory):
        return None
    lock = JournalLock(directory, "writer.lock")
    if not lock.acquire(blocking=False):
        raise RuntapError(f"a runtap proxy is recording to {db}: it applies its own journal (stop it first)")
    try:
        process = RecorderProcess(db, redact=redact, log_level=log_level)
        process._closing = True  # told to stop at once: apply everything, then exit
        process.start()
        result = process.close(timeout=24 * 3600)
    finally:
        lock.release()
    if result is None:
        raise RuntapError(f"the journal of {db} could not be applied; see the lines above")
    if result.rows_lost:
        raise RuntapError(f"{result.rows_lost} rows could not be written to {db} ({result.last_error}); run it again")
    return result


def _position(text: str) -> Position:
    segment, offset = text.split()
    return int(segment), int(offset)


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
