"""Follow alias moves: poll aliases.json, switch to a new target once it loads, else refuse it."""

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from service.contract import validate_name
from service.errors import FashionServeError, NotReady
from service.events import Observers
from service.loader import LoadedModel, Loader, VersionKey
from service.registry import Registry
from service.settings import Settings

log = logging.getLogger("fashion_serve")

AliasKey = tuple[str, str]  # (model, alias)


@dataclass(frozen=True)
class Refusal:
    """A version this process would not serve, and why."""

    name: str
    alias: str
    version: int | None
    reason: str
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for /readyz details."""
        return {
            "model": self.name,
            "alias": self.alias,
            "version": self.version,
            "reason": self.reason,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
        }


class AliasFollower:
    """Which version answers for each followed alias, kept in step with the registry."""

    def __init__(
        self, registry: Registry, settings: Settings, loader: Loader, observers: Observers
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.loader = loader
        self.observers = observers
        self._lock = loader.lock
        self._serving: dict[AliasKey, LoadedModel] = {}  # what answers for each alias
        self._tracked: set[AliasKey] = set()  # aliases followed, loaded or not
        self._stamps: dict[str, object] = {}
        self._refusals: dict[AliasKey, Refusal] = {}
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load the default model's default alias, then follow alias changes in the background."""
        self._tracked.add((self.settings.default_model, self.settings.default_alias))
        self.refresh()
        self._poller = threading.Thread(target=self._poll, name="alias-poller", daemon=True)
        self._poller.start()

    def close(self) -> None:
        """Stop following alias changes."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.reload_interval):
            try:
                self.refresh()
            except Exception:  # the poller must survive anything a broken registry throws
                log.exception("alias refresh failed; will retry")

    # -- readiness ---------------------------------------------------------------------------

    def is_ready(self) -> bool:
        """True once the default model's default alias is loaded and answering."""
        return (self.settings.default_model, self.settings.default_alias) in self._serving

    def serving(self) -> list[dict[str, Any]]:
        """Each followed alias that answers, and with which version, for /readyz."""
        return [
            {"model": name, "alias": alias, "version": loaded.version}
            for (name, alias), loaded in sorted(self._serving.items())
        ]

    def refusals(self) -> list[dict[str, Any]]:
        """The refused alias targets, and why, for /readyz."""
        return [refusal.as_dict() for refusal in self._refusals.values()]

    def pinned(self) -> set[VersionKey]:
        """The versions some alias serves: never evicted."""
        return {(m.name, m.version) for m in self._serving.values()}

    # -- following ---------------------------------------------------------------------------

    def get(self, name: str, alias: str) -> LoadedModel:
        """What answers for the alias; start following it on its first use."""
        loaded = self._serving.get((name, alias))
        return loaded if loaded is not None else self._follow(name, alias)

    def _follow(self, name: str, alias: str) -> LoadedModel:
        """Start following an alias on its first use; raise if it does not exist or won't load."""
        with self._lock:
            key = (name, alias)
            if key in self._serving:
                return self._serving[key]
            try:
                target = self.registry.resolve(name, alias=alias)
            except LookupError as error:
                if key == (self.settings.default_model, self.settings.default_alias):
                    # The default is promised by /readyz: its absence means "not ready", not 404.
                    raise NotReady(f"the default model is not available: {error}") from None
                raise
            self._tracked.add(key)
            self._switch(key, target)
            if key not in self._serving:
                raise NotReady(
                    f"{name}:{alias} → version {target} was refused: {self._refusals[key].reason}"
                )
            return self._serving[key]

    def _switch(self, key: AliasKey, target: int) -> None:
        """Load and warm the alias's new target, then swap; on failure keep the old one."""
        name, alias = key
        current = self._serving.get(key)
        if current is not None and current.version == target:
            self._refusals.pop(key, None)
            return
        try:
            loaded = self.loader.load(name, target)
        except FashionServeError as error:
            self._refuse(Refusal(name, alias, target, str(error)))
            log.error(
                "refused %s v%d for alias %s: %s; still serving %s",
                name,
                target,
                alias,
                error,
                f"v{current.version}" if current else "nothing",
            )
            return
        self._serving[key] = loaded  # requests in flight keep their reference to the old one
        self._refusals.pop(key, None)
        self.loader.evict()
        self.observers.notify("on_switch", name, alias, target)
        log.info(
            "alias %s:%s now serves v%d (was %s)",
            name,
            alias,
            target,
            f"v{current.version}" if current else "nothing",
        )

    def refresh(self, force: bool = False) -> None:
        """Re-read the aliases of every followed model whose aliases.json changed."""
        with self._lock:
            for name in sorted({name for name, _ in self._tracked}):
                stamp: object
                try:
                    stamp = self.registry.aliases_stamp(name)
                except FashionServeError as error:
                    stamp = ("error", str(error))
                if not force and name in self._stamps and stamp == self._stamps[name]:
                    continue
                self._stamps[name] = stamp
                self._refresh_model(name)

    def _refresh_model(self, name: str) -> None:
        try:
            aliases = self.registry.aliases(name)
        except FashionServeError as error:
            for key in [k for k in self._tracked if k[0] == name]:
                self._refuse(Refusal(name, key[1], None, str(error)))
            log.error("cannot read aliases of %s: %s", name, error)
            return
        for key in sorted(k for k in self._tracked if k[0] == name):
            target = aliases.get(key[1])
            if target is None:
                self._refuse(Refusal(name, key[1], None, "alias does not exist"))
                continue
            self._switch(key, target)

    def _refuse(self, refusal: Refusal) -> None:
        key = (refusal.name, refusal.alias)
        known = self._refusals.get(key)
        self._refusals[key] = refusal
        # The poller re-reads a broken alias on every change: count each refusal once, not per look.
        if known is None or (known.version, known.reason) != (refusal.version, refusal.reason):
            self.observers.notify(
                "on_refusal", refusal.name, refusal.alias, refusal.version, refusal.reason
            )

    # -- management --------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        """Point an alias at a version after proving this process can load it."""
        name, alias = validate_name(name), validate_name(alias, "alias")
        self.loader.load(name, version)  # a version that won't load is never promoted
        with self._lock:
            previous = self.registry.set_alias(name, alias, version)
            self._tracked.add((name, alias))
            self.refresh(force=True)
        return {"model": name, "alias": alias, "version": version, "previous": previous}

    def rollback(self, name: str, alias: str) -> dict[str, Any]:
        """Move an alias back to the version it pointed at before."""
        name, alias = validate_name(name), validate_name(alias, "alias")
        with self._lock:
            previous = self.registry.resolve(name, alias=alias)
            version = self.registry.rollback(name, alias)
            self._tracked.add((name, alias))
            self.refresh(force=True)
        return {"model": name, "alias": alias, "version": version, "previous": previous}
