"""Shadow versions: a copy of an alias's live requests answered off the request path, compared.

The request path only offers the batch it already preprocessed to a bounded queue (dropped and
counted when full, never waited for); each comparison is appended to the shadow journal
(<registry>/.live/shadow), which the agreement summary and a rollout read from every worker and
replica. Which version shadows which alias is the registry's shadows.json, polled like
aliases.json by one thread per process.

Under the event-loop worker the loop compares a queued copy whenever it has nothing ready
(service/idle.py), one at a time, looking for requests in between: a request waits for one
comparison of at most STEP_IMAGES images, and no thread hands the GIL back and forth with the
requests (a thread doing it cost the tail, bench/README.md). Under another worker (gthread)
the thread compares too. Comparisons may spend FASHION_SHADOW_SHARE of the CPU the worker's
process spends serving, and only while it gets a CPU when it needs one (service/cpu_budget.py):
the served requests keep all but that share of the worker's CPU, and a worker waiting for a CPU
(a saturated host, a throttled quota) compares almost nothing rather than delay them.
"""

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from service.contract import CLASS_NAMES, validate_alias, validate_name
from service.cpu_budget import CpuBudget
from service.errors import FashionServeError
from service.feedback import LIVE_FOLDER, MAX_FILE_BYTES, PREDICTION_WINDOW
from service.idle import LOOP, IdleLoop
from service.journal import Journal, Tail
from service.loader import LoadedModel, Loader
from service.logs import Throttled
from service.registry import Registry
from service.settings import Settings

if TYPE_CHECKING:
    from service.data_plane import Result

log = logging.getLogger("fashion_serve.shadow")

AliasKey = tuple[str, str]  # (model, alias)
# Copies waiting to be compared. Small: a shadow that cannot keep up is sampled, not
# queued behind (memory and staleness stay bounded whatever the load).
QUEUE_SIZE = 64
# Images one comparison takes at most: under the event loop a request that arrives meanwhile
# waits for one comparison, and eight images are about 2 ms of version 7 where a batch of 256
# would be 70 ms. A larger batch is queued as several copies.
STEP_IMAGES = 8
BURST = 0.05  # CPU seconds the shadow may spend at once after an idle spell
# A shadow that fails fails for every copy: its first failure is logged, then one line a minute.
FAILURE_LOG_INTERVAL = 60.0
# Per (model, alias, shadow version, served version): rows the class served, columns the shadow's.
Matrices = dict[tuple[str, str, int, int], list[list[int]]]


@dataclass(frozen=True)
class Job:
    """A served batch (at most STEP_IMAGES of it) waiting for its shadow: what answered it and
    what the model saw."""

    name: str
    alias: str
    served: int
    served_classes: np.ndarray
    images: np.ndarray
    shadow: LoadedModel


@dataclass(frozen=True)
class Comparison:
    """A shadow's classes for a served batch, beside the classes that were served."""

    name: str
    alias: str
    served: int
    shadow: int
    served_classes: list[int]
    shadow_classes: list[int]


class ShadowObserver(Protocol):
    """Told of each comparison and each batch not copied (the metrics); must not raise."""

    def on_compared(self, comparison: Comparison) -> None:
        """A shadow answered a served batch."""

    def on_dropped(self, name: str, alias: str, shadow: int) -> None:
        """A served batch was not copied: the queue was full or the CPU budget spent."""

    def on_failed(self, name: str, alias: str, shadow: int) -> None:
        """The shadow version raised on a copy (the served answer was not affected)."""


def shadow_journal(registry_root: Path, ttl: float) -> Journal:
    """The comparisons of a registry's shadows, kept as long as predictions are."""
    return Journal(registry_root / LIVE_FOLDER / "shadow", PREDICTION_WINDOW, ttl, MAX_FILE_BYTES)


class ShadowRunner:
    """Follows shadows.json, queues copies of served batches, compares them, records that."""

    def __init__(
        self,
        registry: Registry,
        loader: Loader,
        settings: Settings,
        journal: Journal,
        loop: IdleLoop = LOOP,
    ) -> None:
        self.registry, self.loader, self.settings = registry, loader, settings
        self.journal, self.loop = journal, loop
        self.observers: list[ShadowObserver] = []
        # Replaced whole, never mutated: the request path reads it without a lock.
        self._shadows: dict[AliasKey, LoadedModel] = {}
        self._models: set[str] = {settings.default_model}  # models whose shadows are followed
        self._stamps: dict[str, object] = {}
        self._lock = threading.Lock()  # one refresh at a time
        self._queue: queue.Queue[Job | None] = queue.Queue(QUEUE_SIZE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # copies not compared by this process
        self.failed = 0  # copies the shadow raised on, in this process
        self.failures = Throttled(log, FAILURE_LOG_INTERVAL)
        self.budget = CpuBudget(settings.shadow_share, BURST)

    # -- the request path ------------------------------------------------------------------

    def offer(self, result: "Result") -> None:
        """Copy a served batch to its alias's shadow, if it has one; never blocks or raises."""
        name, alias, images = result.model.name, result.alias, result.images
        self._models.add(name)  # a set of the registry's models: bounded
        if alias is None or images is None:  # ?version= names its version: nothing shadows it
            return
        shadow = self._shadows.get((name, alias))
        if shadow is None or shadow.version == result.model.version:
            return  # no shadow, or the canary is the shadow: nothing to compare with
        if self.budget.spent():
            self._drop(name, alias, shadow.version)
            return
        for start in range(0, len(images), STEP_IMAGES):
            part = slice(start, start + STEP_IMAGES)
            job = Job(name, alias, result.model.version, result.classes[part], images[part], shadow)
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self._drop(name, alias, shadow.version)
                return

    def _drop(self, name: str, alias: str, version: int) -> None:
        self.dropped += 1
        for observer in self.observers:
            observer.on_dropped(name, alias, version)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the shadow thread (it reads shadows.json first), and the loop's comparisons."""
        self.loop.add(self.step)
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the shadow thread and the loop's comparisons; batches still queued are not
        compared."""
        self.loop.remove(self.step)
        self._stop.set()
        with contextlib.suppress(queue.Full):  # full: the thread sees the event after a batch
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        refresh_at = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= refresh_at:
                try:
                    self.refresh()
                except Exception:  # the thread must survive anything a broken registry throws
                    log.exception("shadow refresh failed; will retry")
                refresh_at = time.monotonic() + self.settings.reload_interval
            wait = max(0.0, refresh_at - time.monotonic())
            if self.loop.driven:  # the worker's loop compares; this thread only follows
                self._stop.wait(wait)
                continue
            try:
                self._take(self._queue.get(timeout=wait))
            except queue.Empty:
                continue

    def step(self) -> bool:
        """Compare the next queued copy, if any; False if none was compared (the loop waits)."""
        try:
            return self._take(self._queue.get_nowait())
        except queue.Empty:
            return False

    def _take(self, job: Job | None) -> bool:
        """Compare a copy, or drop it if the budget is spent."""
        if job is None:
            return False
        if self.budget.spent() or not self.budget.refill():
            self._drop(job.name, job.alias, job.shadow.version)
            return False
        started = time.thread_time()
        self._compare(job)
        self.budget.charge(time.thread_time() - started)
        return True

    # -- following shadows.json ------------------------------------------------------------

    def refresh(self, force: bool = False) -> None:
        """Load the shadows of every followed model whose shadows.json changed."""
        with self._lock:
            shadows = dict(self._shadows)
            for name in sorted(self._models.copy()):  # copied at once: requests add to it
                stamp = self.registry.shadows_stamp(name)
                if not force and name in self._stamps and self._stamps[name] == stamp:
                    continue
                self._stamps[name] = stamp
                for key in [key for key in shadows if key[0] == name]:
                    del shadows[key]
                shadows.update(self._load(name))
            self._shadows = shadows

    def _load(self, name: str) -> dict[AliasKey, LoadedModel]:
        try:
            wanted = self.registry.shadows(name)
        except FashionServeError as error:
            log.error("cannot read the shadows of %s: %s; serving no shadow", name, error)
            return {}
        found: dict[AliasKey, LoadedModel] = {}
        for alias, version in sorted(wanted.items()):
            try:
                found[(name, alias)] = self.loader.load(name, version)
            except FashionServeError as error:
                log.error("refused shadow v%d of %s:%s: %s", version, name, alias, error)
        return found

    def serving(self) -> dict[AliasKey, int]:
        """The shadow version of each alias in this process."""
        return {key: loaded.version for key, loaded in self._shadows.items()}

    # -- management ------------------------------------------------------------------------

    def set(self, name: str, alias: str, version: int) -> dict[str, Any]:
        """Let a version shadow an alias once it verifies and loads here."""
        name, alias = validate_name(name), validate_alias(alias)
        previous = self.registry.set_shadow(name, alias, version, verify=self.loader.verify)
        self._models.add(name)
        self.refresh(force=True)
        return {"model": name, "alias": alias, "shadow": version, "previous": previous}

    def clear(self, name: str, alias: str, reason: str) -> dict[str, Any]:
        """Stop an alias's shadow."""
        name, alias = validate_name(name), validate_alias(alias)
        self.registry.versions(name)  # an unknown model is a 404, not an empty answer
        previous = self.registry.clear_shadow(name, alias, reason)
        self.refresh(force=True)
        return {"model": name, "alias": alias, "shadow": None, "previous": previous}

    # -- a comparison (in the worker's loop, or the thread under gthread) ------------------

    def _compare(self, job: Job) -> None:
        version = job.shadow.version
        try:
            probabilities, _ = job.shadow.model.run_judged(job.images)
        except Exception:  # a shadow's failure is counted and logged, never felt by the answers
            self.failed += 1
            self.failures.exception(
                (job.name, job.alias, version), "shadow v%d of %s:%s failed", version,
                job.name, job.alias,
            )  # fmt: skip
            self._tell(lambda observer: observer.on_failed(job.name, job.alias, version))
            return
        comparison = Comparison(
            job.name, job.alias, job.served, job.shadow.version,
            job.served_classes.tolist(), probabilities.argmax(axis=1).tolist(),
        )  # fmt: skip
        self.journal.append(
            {"t": round(time.time(), 3), "m": job.name, "a": job.alias, "v": comparison.shadow,
             "sv": job.served, "c": comparison.served_classes, "s": comparison.shadow_classes}
        )  # fmt: skip
        self._tell(lambda observer: observer.on_compared(comparison))

    def _tell(self, event: Callable[[ShadowObserver], None]) -> None:
        """Tell each observer; an observer's bug must not stop the shadow thread."""
        for observer in self.observers:
            try:
                event(observer)
            except Exception:
                self.failures.exception(id(observer), "shadow observer %r failed", observer)


class Agreement:
    """Per (model, alias, shadow version, served version): images compared, and a matrix
    (rows: the class served, columns: the shadow's), read incrementally from the journal."""

    def __init__(self, journal: Journal) -> None:
        self._tail = Tail(journal)
        self._lock = threading.Lock()
        self._matrices: Matrices = {}

    def matrices(self) -> Matrices:
        """Every comparison within the journal's retention, tallied."""
        with self._lock:
            restarted, records = self._tail.new_records()
            if restarted:
                self._matrices = {}
            for record in records:
                _count(self._matrices, record)
            return {key: [row[:] for row in matrix] for key, matrix in self._matrices.items()}

    def summary(self, name: str, shadows: dict[str, int]) -> dict[str, Any]:
        """A model's shadows and how often each agreed with the versions that were served."""
        comparisons = [
            {"alias": alias, "version": version, "served_version": served,
             **agreement(matrix)}
            for (model, alias, version, served), matrix in sorted(self.matrices().items())
            if model == name
        ]  # fmt: skip
        return {"model": name, "shadows": shadows, "comparisons": comparisons}


def _count(matrices: Matrices, record: dict[str, Any]) -> None:
    try:
        key = (str(record["m"]), str(record["a"]), int(record["v"]), int(record["sv"]))
        pairs = list(zip((int(c) for c in record["c"]), (int(s) for s in record["s"]), strict=True))
    except (KeyError, TypeError, ValueError):  # a foreign or torn record: skipped
        return
    size = len(CLASS_NAMES)
    if not all(0 <= c < size and 0 <= s < size for c, s in pairs):
        return
    matrix = matrices.setdefault(key, [[0] * size for _ in range(size)])
    for served, shadow in pairs:
        matrix[served][shadow] += 1


def tally(records: list[dict[str, Any]]) -> Matrices:
    """The comparison matrices of some shadow journal records (a rollout's window)."""
    matrices: Matrices = {}
    for record in records:
        _count(matrices, record)
    return matrices


def agreement(matrix: list[list[int]]) -> dict[str, Any]:
    """Images compared, how many agreed, and the disagreements by served → shadow class."""
    compared = sum(map(sum, matrix))
    agreed = sum(matrix[c][c] for c in range(len(matrix)))
    disagreements: dict[str, dict[str, int]] = {}
    for served, row in enumerate(matrix):
        for shadow, count in enumerate(row):
            if count and served != shadow:
                disagreements.setdefault(CLASS_NAMES[served], {})[CLASS_NAMES[shadow]] = count
    return {
        "compared": compared,
        "agreed": agreed,
        "agreement": agreed / compared if compared else None,
        "disagreements": disagreements,
    }
