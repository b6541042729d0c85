"""Payload capture for retraining: a sample of answered images kept in the registry (opt-in).

With FASHION_CAPTURE_RATE above 0 (off by default), that share of answered requests (/predict,
/v2 infer, TF Serving's :predict) is written to <registry>/.live/capture/, one JSON line per
image: the 28×28 the model saw (as the dataset's bytes, 0..255), the version and alias that
answered, the ten probabilities and the request ID, which the feedback journal is joined on
(training/captured.py).

Each process appends to segment files of its own (O_APPEND, one write per request), so workers
and replicas never share a file and a restart only starts a new segment. When a segment is full
the writer opens the next one and prunes the folder, whoever wrote it: segments last written
before FASHION_CAPTURE_KEEP, then the oldest until the rest and the new segment fit in
FASHION_CAPTURE_MAX_BYTES. Segments are never larger than segment_bytes, so the folder holds at
most the cap plus one open segment per other writer. Observers (the metrics) count the images
written, and those dropped: pruned, cut from a batch, or not written to an unwritable folder.

Layout: <folder>/<start ns>-<host>-<pid>-<n>.jsonl (names sort oldest first).
"""

import base64
import itertools
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import orjson

from service.contract import IMAGE_SIDE
from service.feedback import LIVE_FOLDER

if TYPE_CHECKING:
    from service.data_plane import Result

log = logging.getLogger("fashion_serve.capture")
FOLDER = "capture"
SUFFIX = ".jsonl"
MAX_SEGMENT_BYTES = 1024 * 1024
SEGMENTS = 16  # the cap holds at least this many segments: rotation drops a 16th at a time
_opened = itertools.count()  # two segments of one process never share a name
# Why sampled images are not (or no longer) in the folder: past FASHION_CAPTURE_KEEP, pruned for
# FASHION_CAPTURE_MAX_BYTES, cut from a batch larger than a segment, or the folder unwritable.
AGE, SIZE, BATCH, UNWRITABLE = "age", "size", "batch", "unwritable"


class CaptureObserver(Protocol):
    """Told what the capture wrote and what it dropped (the metrics); must not raise."""

    def on_captured(self, name: str, images: int) -> None:
        """Images of a model's answers were written."""

    def on_capture_dropped(self, reason: str, images: int) -> None:
        """Sampled images were not written, or written ones deleted, for this reason."""


def folder(registry_root: Path) -> Path:
    """Where a registry's captures live."""
    return registry_root / LIVE_FOLDER / FOLDER


def pixels(images: np.ndarray) -> np.ndarray:
    """float32 0..1 as the model saw them → the dataset's uint8 (exact for dataset images)."""
    scaled = np.rint(np.asarray(images, dtype=np.float32) * 255.0)
    converted: np.ndarray = np.clip(scaled, 0, 255).astype(np.uint8)
    return converted


def image(record: dict[str, Any]) -> np.ndarray | None:
    """A record's picture as uint8 [28,28]; None when it is not one."""
    try:
        raw = base64.b64decode(record["x"], validate=True)
    except (KeyError, TypeError, ValueError):
        return None
    if len(raw) != IMAGE_SIDE * IMAGE_SIDE:
        return None
    return np.frombuffer(raw, np.uint8).reshape(IMAGE_SIDE, IMAGE_SIDE)


def segments(where: Path) -> list[Path]:
    """The capture files in a folder, oldest first."""
    try:
        names = sorted(name for name in os.listdir(where) if name.endswith(SUFFIX))
    except OSError:  # none captured yet
        return []
    return [where / name for name in names]


def records(where: Path) -> Iterator[dict[str, Any]]:
    """Every complete record in a capture folder, oldest segment first (torn lines skipped)."""
    for path in segments(where):
        try:
            data = path.read_bytes()
        except OSError:  # pruned meanwhile
            continue
        for line in data.splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:  # a line still being written, or cut by a crash
                continue
            if isinstance(record, dict):
                yield record


class Capture:
    """Writes a sample of one process's answered requests; size-capped and pruned."""

    def __init__(self, where: Path, rate: float, max_bytes: int, keep_seconds: float) -> None:
        self.folder = where
        self.rate = rate
        self.max_bytes = max_bytes
        self.keep_seconds = keep_seconds
        self.segment_bytes = min(MAX_SEGMENT_BYTES, max_bytes // SEGMENTS)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None  # the process that opened _fd
        self._written = 0
        self.broken: str | None = None  # why this process cannot write (a read-only volume)
        self.observers: list[CaptureObserver] = []

    def sample(self, request_id: str, result: "Result") -> int:
        """Write the request's images if it is drawn into the sample; how many were written."""
        images = result.images
        if self.rate <= 0 or images is None or random.random() >= self.rate:  # noqa: S311
            return 0
        lines = self._lines(request_id, result, images)
        data = b"".join(lines)
        if len(lines) < len(images):
            self._dropped(BATCH, len(images) - len(lines))
        with self._lock:
            if self.broken is None:
                try:
                    fd = self._segment(len(data))
                    os.write(fd, data)
                    self._written += len(data)
                except OSError as error:
                    self.broken = f"cannot write captures: {error.strerror}"
                    log.error("%s; this process captures nothing more", self.broken)
        if self.broken is not None:
            self._dropped(UNWRITABLE, len(lines))
            return 0
        for observer in self.observers:
            observer.on_captured(result.model.name, len(lines))
        return len(lines)

    def _dropped(self, reason: str, images: int) -> None:
        for observer in self.observers:
            observer.on_capture_dropped(reason, images)

    def _lines(self, request_id: str, result: "Result", images: np.ndarray) -> list[bytes]:
        """One line per image, as many as fit in one segment (a large batch is cut short)."""
        now = round(time.time(), 3)
        model = result.model
        lines: list[bytes] = []
        size = 0
        rows = result.probabilities.tolist()
        for index, (picture, row, top) in enumerate(
            zip(pixels(images), rows, result.classes.tolist(), strict=True)
        ):
            line = orjson.dumps(
                {"id": request_id, "i": index, "t": now, "m": model.name, "v": model.version,
                 "a": result.alias, "c": top, "p": [round(p, 5) for p in row],
                 "x": base64.b64encode(picture.tobytes()).decode()},
                option=orjson.OPT_APPEND_NEWLINE,
            )  # fmt: skip
            if lines and size + len(line) > self.segment_bytes:
                break
            lines.append(line)
            size += len(line)
        return lines

    def _segment(self, size: int) -> int:
        """This process's open segment with room for size bytes; the next one when it is full."""
        pid = os.getpid()
        if self._fd is not None and self._pid == pid:
            if self._written + size <= self.segment_bytes:
                return self._fd
            os.close(self._fd)
        # A forked child never closes its parent's descriptor: it starts a segment of its own.
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{socket.gethostname()}-{pid}-{next(_opened)}{SUFFIX}"
        self._fd = os.open(
            self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644
        )
        self._pid, self._written = pid, 0
        self.prune(keep=self.folder / name)
        return self._fd

    def prune(self, keep: Path | None = None) -> None:
        """Delete segments past retention, then the oldest until the rest leave room for one.

        Any writer may prune any segment; another writer's delete of the same file is a no-op.
        """
        cutoff = time.time() - self.keep_seconds
        sizes: list[tuple[Path, int]] = []
        for path in segments(self.folder):
            try:
                stat = path.stat()
            except OSError:  # pruned meanwhile
                continue
            if stat.st_mtime < cutoff and path != keep:
                self._delete(path, AGE)
            else:
                sizes.append((path, stat.st_size))
        total = sum(size for _, size in sizes)
        budget = self.max_bytes - self.segment_bytes  # room for the segment this writer fills
        for path, size in sizes:
            if total <= budget:
                break
            if path != keep:
                self._delete(path, SIZE)
                total -= size

    def _delete(self, path: Path, reason: str) -> None:
        """Delete a segment and count its images (none if another writer deleted it first)."""
        try:
            images = path.read_bytes().count(b"\n")  # one line per image; at most a segment
            path.unlink()
        except FileNotFoundError:  # another writer's prune was first: it counts them
            return
        self._dropped(reason, images)
