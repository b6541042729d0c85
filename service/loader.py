"""Model versions in this process: verify (sha256, contract), load, warm up, evict the oldest."""

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from service.events import Observers
from service.registry import Registry
from service.runtime import OnnxModel
from service.settings import Settings

log = logging.getLogger("fashion_serve")

VersionKey = tuple[str, int]


@dataclass(frozen=True)
class LoadedModel:
    """One version of a model, verified, loaded and warmed up in this process."""

    name: str
    version: int
    card: dict[str, Any]
    model: OnnxModel
    load_seconds: float


class Loader:
    """Loads versions on demand and keeps at most max_loaded of them, never one an alias serves."""

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        providers: list[str],
        observers: Observers,
        lock: threading.RLock,
        pinned: Callable[[], Iterable[VersionKey]],
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.providers = providers
        self.observers = observers
        self.lock = lock  # shared with the alias follower: loads and switches never interleave
        self._pinned = pinned
        self._versions: dict[VersionKey, LoadedModel] = {}  # insertion order = age

    def get(self, name: str, version: int) -> LoadedModel | None:
        """The version if this process has it loaded, else None (no loading, no I/O)."""
        return self._versions.get((name, version))

    def loaded(self) -> list[LoadedModel]:
        """Every version loaded in this process, by (name, version)."""
        return [self._versions[key] for key in sorted(self._versions)]

    def load(self, name: str, version: int) -> LoadedModel:
        """The version, loaded now if needed: card, verified bytes, session, warm-up."""
        with self.lock:
            loaded = self._versions.get((name, version))
            if loaded is not None:
                return loaded
            started = time.perf_counter()
            card = self.registry.card(name, version)  # ModelNotFound / VersionNotFound
            data = self.registry.read_verified(name, version)  # IntegrityError on sha mismatch
            model = OnnxModel(data, self.providers, self.settings.threads)
            model.warm_up()
            loaded = LoadedModel(name, version, card, model, time.perf_counter() - started)
            self._versions[(name, version)] = loaded
            self.evict()
            self.observers.notify("on_load", name, version, loaded.load_seconds)
            log.info(
                "loaded %s v%d on %s in %.0f ms",
                name,
                version,
                ",".join(model.providers),
                loaded.load_seconds * 1000,
            )
            return loaded

    def evict(self) -> None:
        """Forget the oldest versions beyond max_loaded that no alias is serving."""
        pinned = set(self._pinned())
        spare = [key for key in self._versions if key not in pinned]
        for key in spare[: max(0, len(self._versions) - self.settings.max_loaded)]:
            del self._versions[key]
