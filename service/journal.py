"""Append-only JSON-lines journals in the registry's folder, shared by workers and replicas.

Each writer (one process: host and pid) appends to its own file per time window, so no two
writers ever share a file (appends from several hosts to one file on a network volume are not
atomic) and a worker's restart only starts a new file. Windows older than the retention are
deleted by whichever writer opens a new window; a file stops growing at its size cap. Readers
read every writer's files: the journal outlives any one process.

Layout: <folder>/<window>/<host>-<pid>.jsonl, window = unix time // window seconds.
"""

import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("fashion_serve.journal")
SUFFIX = ".jsonl"


class Journal:
    """One kind of record (predictions, feedback), windowed, capped and pruned."""

    def __init__(self, folder: Path, window_seconds: int, keep_seconds: float, max_file_bytes: int):
        self.folder = folder
        self.window_seconds = window_seconds
        self.keep_seconds = keep_seconds
        self.max_file_bytes = max_file_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._opened: tuple[int, int] | None = None  # (pid, window) of the open file
        self._written = 0
        self.broken: str | None = None  # why this process cannot write (a read-only volume)

    def append(self, record: dict[str, Any]) -> bool:
        """Write one record (one os.write of one line); False if it was not written."""
        # orjson: this runs on every /predict, and the standard library's encoder costs more.
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        window = int(time.time()) // self.window_seconds
        with self._lock:
            if self.broken is not None:
                return False
            try:
                fd = self._file(window)
                if self._written + len(line) > self.max_file_bytes:
                    return False  # capped: this writer's window is full
                os.write(fd, line)
            except OSError as error:
                self.broken = f"cannot write {self.folder.name}: {error.strerror}"
                log.error("%s; %s are not recorded by this process", self.broken, self.folder.name)
                return False
            self._written += len(line)
        return True

    def _file(self, window: int) -> int:
        pid = os.getpid()
        if self._fd is not None and self._opened == (pid, window):
            return self._fd
        if self._fd is not None and self._opened is not None and self._opened[0] == pid:
            os.close(self._fd)  # a forked child must not close its parent's descriptor
        directory = self.folder / str(window)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{socket.gethostname()}-{pid}{SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._opened = (pid, window)
        self._written = os.fstat(self._fd).st_size
        self._prune(window)
        return self._fd

    def _prune(self, window: int) -> None:
        """Delete the windows past retention (any writer may; the others' deletes are no-ops)."""
        oldest = window - int(self.keep_seconds // self.window_seconds) - 1
        for old in self._windows():
            if old < oldest:
                shutil.rmtree(self.folder / str(old), ignore_errors=True)

    def _windows(self) -> list[int]:
        try:
            names = os.listdir(self.folder)
        except OSError:  # none yet, or unreadable: nothing to read
            return []
        return sorted(int(name) for name in names if name.isdigit())

    def files(self, newest_first: bool = False) -> list[Path]:
        """Every writer's file in the windows within retention."""
        oldest = (time.time() - self.keep_seconds) // self.window_seconds
        windows = [w for w in self._windows() if w >= oldest]
        found: list[Path] = []
        for window in reversed(windows) if newest_first else windows:
            try:
                names = sorted(os.listdir(self.folder / str(window)))
            except OSError:  # pruned meanwhile
                continue
            found.extend(self.folder / str(window) / n for n in names if n.endswith(SUFFIX))
        return found

    def find(self, field: str, value: str) -> dict[str, Any] | None:
        """The newest record whose field equals value (a string without quotes or backslashes)."""
        needle = b'"%s":%s' % (field.encode(), orjson.dumps(value))
        for path in self.files(newest_first=True):
            try:
                data = path.read_bytes()
            except OSError:  # pruned meanwhile
                continue
            at = data.rfind(needle)
            if at >= 0:
                start = data.rfind(b"\n", 0, at) + 1
                end = data.find(b"\n", at)
                record = _parse(data[start : end if end >= 0 else len(data)])
                if record is not None:
                    return record
        return None


class Tail:
    """Reads the records added to a journal since the last call, across all writers' files."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._offsets: dict[Path, int] = {}
        self._lock = threading.Lock()

    def new_records(self) -> tuple[bool, list[dict[str, Any]]]:
        """(restarted, records): restarted when files went away (pruned): re-tally from scratch."""
        with self._lock:
            files = self.journal.files()
            restarted = any(path not in files for path in self._offsets)
            if restarted:
                self._offsets = {}
            records: list[dict[str, Any]] = []
            for path in files:
                records.extend(self._read(path))
            return restarted, records

    def _read(self, path: Path) -> Iterator[dict[str, Any]]:
        offset = self._offsets.get(path, 0)
        try:
            with open(path, "rb") as file:
                file.seek(offset)
                data = file.read()
        except OSError:  # pruned meanwhile
            return
        complete = data.rfind(b"\n") + 1  # a line still being written waits for the next call
        self._offsets[path] = offset + complete
        for line in data[:complete].splitlines():
            record = _parse(line)
            if record is not None:
                yield record


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:  # a torn or foreign line: skipped, never fatal
        return None
    return record if isinstance(record, dict) else None
