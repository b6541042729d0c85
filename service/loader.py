"""Model versions in this process: verify (sha256, load, contract), warm up, evict the oldest.

Loading happens outside every lock that serving takes; a refused version stays refused, without
being read again, until its files change; on-demand loads (``?version=``) share a time budget so
that cycling versions cannot starve the aliases' traffic.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.errors import FashionServeError, LoadThrottled
from service.events import Observers
from service.novelty import Judgement, judgement
from service.registry import Registry
from service.runtime import CPU, OnnxModel, Providers
from service.settings import Settings

log = logging.getLogger("fashion_serve.loader")

VersionKey = tuple[str, int]

# On-demand loads may use this share of a worker's time in the long run, after a burst of
# LOAD_BURST seconds, so that a client cycling versions cannot take the aliases' traffic's CPU.
LOAD_SHARE = 0.1
LOAD_BURST = 1.0
# How long a request waits for the same version another request is loading right now.
LOAD_WAIT = 30.0


def check_model(data: bytes, providers: Providers = (CPU,), threads: int = 1) -> OnnxModel:
    """Load model bytes in onnxruntime, check the contract, run once; ModelLoadError if not."""
    model = OnnxModel(data, providers, threads)
    model.warm_up()
    return model


@dataclass(frozen=True)
class LoadedModel:
    """One version of a model, verified, loaded and warmed up in this process."""

    name: str
    version: int
    card: dict[str, Any]
    model: OnnxModel
    load_seconds: float
    # None: the version does not judge its inputs (its answers carry no in_distribution).
    judgement: Judgement | None = None


class LoadBudget:
    """Seconds of on-demand loading: a bucket of ``burst`` refilled at ``share`` per second."""

    def __init__(
        self,
        share: float = LOAD_SHARE,
        burst: float = LOAD_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.share, self.burst, self._clock = share, burst, clock
        self._seconds = burst
        self._at = clock()
        self.busy = False  # one on-demand load at a time per process

    def take(self) -> None:
        """Start an on-demand load, or raise LoadThrottled (callers hold the loader's lock)."""
        now = self._clock()
        self._seconds = min(self.burst, self._seconds + (now - self._at) * self.share)
        self._at = now
        if self.busy or self._seconds <= 0:
            wait = max(1, math.ceil(round(-self._seconds / self.share, 3)))
            raise LoadThrottled(
                "this worker is loading other model versions at its limit; retry shortly or"
                " ask for an alias",
                retry_after=wait,
            )
        self.busy = True

    def spend(self, seconds: float) -> None:
        """End an on-demand load that took ``seconds``."""
        self._seconds -= seconds
        self.busy = False


class Loader:
    """Loads versions on demand; keeps those aliases serve plus at most max_loaded others."""

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        providers: Providers,
        observers: Observers,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.providers = providers
        self.observers = observers
        self.budget = LoadBudget()
        # Guards the maps below, never held while loading: reads on the serving path skip it.
        self._lock = threading.Lock()
        self._versions: dict[VersionKey, LoadedModel] = {}  # insertion order = age
        self._loading: dict[VersionKey, threading.Event] = {}
        self._refused: dict[VersionKey, tuple[object, FashionServeError]] = {}
        self._pinned: frozenset[VersionKey] = frozenset()  # the versions aliases serve

    def get(self, name: str, version: int) -> LoadedModel | None:
        """The version if this process has it loaded, else None (no loading, no I/O)."""
        return self._versions.get((name, version))

    def loaded(self) -> list[LoadedModel]:
        """Every version loaded in this process, by (name, version)."""
        with self._lock:
            return [self._versions[key] for key in sorted(self._versions)]

    def verify(self, data: bytes) -> None:
        """The registry's verifier for this process: the bytes load on its providers."""
        check_model(data, self.providers, self.settings.threads)

    def load(self, name: str, version: int, on_demand: bool = False) -> LoadedModel:
        """The version, loaded now if needed: card, verified bytes, session, warm-up.

        ``on_demand`` loads (a request naming a version) draw on the load budget and raise
        LoadThrottled beyond it; alias targets always load.
        """
        key = (name, version)
        while True:
            with self._lock:
                loaded = self._versions.get(key)
                if loaded is not None:
                    return loaded
                self._raise_if_refused(key)
                pending = self._loading.get(key)
                if pending is None:
                    if on_demand:
                        self.budget.take()
                    pending = self._loading[key] = threading.Event()
                    break
            if not pending.wait(LOAD_WAIT):
                raise LoadThrottled(f"{name} v{version} is still loading", retry_after=1)
        started = time.perf_counter()
        try:
            loaded = self._load(name, version)
        except BaseException as error:
            with self._lock:
                self._finish(key, on_demand, started)
                if isinstance(error, FashionServeError):
                    self._refuse(key, error, on_demand)
            pending.set()
            raise
        with self._lock:
            self._finish(key, on_demand, started)
            # Stored before the waiters wake, so none of them loads it again.
            self._versions[key] = loaded
            self._refused.pop(key, None)
            self._evict()
        pending.set()
        self.observers.on_load(name, version, loaded.load_seconds)
        log.info(
            "loaded %s v%d on %s in %.0f ms",
            name,
            version,
            ",".join(loaded.model.providers),
            loaded.load_seconds * 1000,
        )
        if loaded.model.unfused_int8:
            log.warning(
                "%s v%d: its int8 weights use 8 bits, which this CPU's int8 kernels (x86 "
                "without VNNI) would overflow; its quantized layers run dequantized, exact "
                "and slower",
                name,
                version,
            )
        return loaded

    def _finish(self, key: VersionKey, on_demand: bool, started: float) -> None:
        """The end of a load, whatever its outcome (callers hold the lock)."""
        if on_demand:
            self.budget.spend(time.perf_counter() - started)
        del self._loading[key]

    def _load(self, name: str, version: int) -> LoadedModel:
        started = time.perf_counter()
        card = self.registry.card(name, version)  # ModelNotFound / VersionNotFound
        data = self.registry.verified_bytes(name, version, card)  # IntegrityError on mismatch
        model = check_model(data, self.providers, self.settings.threads)
        judged = judgement(card, model.judges)  # ModelLoadError when card and graph disagree
        return LoadedModel(name, version, card, model, time.perf_counter() - started, judged)

    def _raise_if_refused(self, key: VersionKey) -> None:
        """Raise a version's refusal again, without reading it, while its files are unchanged."""
        refused = self._refused.get(key)
        if refused is not None:
            stamp, error = refused
            if stamp == self.registry.version_stamp(*key):
                raise error
            del self._refused[key]

    def _refuse(self, key: VersionKey, error: FashionServeError, on_demand: bool) -> None:
        if isinstance(error, LookupError):  # an unknown model or version: nothing to cache
            return
        self._refused[key] = (self.registry.version_stamp(*key), error)
        if on_demand:  # an alias's refusal is logged once by the alias follower instead
            log.error("refused %s v%d: %s", key[0], key[1], error)

    def pin(self, versions: frozenset[VersionKey]) -> None:
        """Keep these versions (the ones aliases serve) loaded; evict the oldest others."""
        with self._lock:
            self._pinned = versions
            self._evict()

    def _evict(self) -> None:
        """Forget the oldest versions beyond max_loaded that no alias is serving."""
        spare = [key for key in self._versions if key not in self._pinned]
        for key in spare[: max(0, len(spare) - self.settings.max_loaded)]:
            del self._versions[key]
