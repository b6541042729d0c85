"""Follow alias moves: poll the registry, switch to a new target once it verifies, else refuse it.

A refused target leaves the alias on what it served before (a new worker: on the latest earlier
target that verifies, degraded). A refusal is decided once per change of the registry's files,
so requests never read or hash anything to learn it again.
"""

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from service.canary import Canary, choose
from service.contract import validate_alias, validate_name
from service.errors import AliasNotFound, FashionServeError, NotReady
from service.events import Observers
from service.loader import LoadedModel, Loader
from service.registry import Registry
from service.settings import Settings

log = logging.getLogger("fashion_serve.aliases")

AliasKey = tuple[str, str]  # (model, alias)


@dataclass(frozen=True)
class AliasStamp:
    """The registry files an alias was judged on: a change to any of them judges it again."""

    aliases: object  # aliases.json's stamp
    target: int | None  # the version it pointed at
    files: object  # that version's files' stamp
    canaries: object = None  # canaries.json's stamp


@dataclass(frozen=True)
class Refusal:
    """Why an alias does not answer with its target, in this process."""

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
        # Guards the maps below. The serving path reads _serving without it; the poller holds it
        # while a new target loads, so switches never interleave.
        self._lock = threading.RLock()
        self._serving: dict[AliasKey, LoadedModel] = {}  # what answers for each alias
        self._canaries: dict[AliasKey, Canary] = {}  # a second version taking a share of one
        self._tracked: set[AliasKey] = set()  # aliases followed, answering or not
        self._stamps: dict[AliasKey, AliasStamp] = {}  # the registry files each was last judged on
        self._refusals: dict[AliasKey, Refusal] = {}
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load the default model's default alias, then follow alias changes in the background."""
        with self._lock:
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
        """True once the default model's default alias answers (degraded or not)."""
        return (self.settings.default_model, self.settings.default_alias) in self._serving

    def report(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """What each followed alias answers with (and whether degraded), and the refusals."""
        with self._lock:
            serving = [
                {
                    "model": name,
                    "alias": alias,
                    "version": loaded.version,
                    "degraded": (name, alias) in self._refusals,
                }
                for (name, alias), loaded in sorted(self._serving.items())
            ]
            refusals = [refusal.as_dict() for _, refusal in sorted(self._refusals.items())]
        return serving, refusals

    # -- following ---------------------------------------------------------------------------

    def get(self, name: str, alias: str) -> LoadedModel:
        """What answers for the alias; start following it on its first use."""
        loaded = self._serving.get((name, alias))
        return loaded if loaded is not None else self._follow(name, alias)

    def route(self, name: str, alias: str, key: str | None) -> LoadedModel:
        """What answers this request for the alias: its target, or its canary for key's share."""
        loaded = self.get(name, alias)
        canary = self._canaries.get((name, alias))
        return loaded if canary is None else choose(name, alias, key, loaded, canary)

    def canaries(self) -> dict[AliasKey, Canary]:
        """The canaries this process serves, by (model, alias)."""
        return dict(self._canaries)

    def _follow(self, name: str, alias: str) -> LoadedModel:
        """Start following an alias on its first use; NotReady when it has nothing to serve."""
        key = (name, alias)
        with self._lock:
            if key not in self._tracked:
                # Only aliases that exist are followed: a client cannot make the set grow.
                if alias not in self.registry.aliases(name):
                    raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
                self._tracked.add(key)
                self._stamps[key] = self._judge(key)
            loaded = self._serving.get(key)
            if loaded is not None:
                return loaded
            refusal = self._refusals.get(key)
            reason = refusal.reason if refusal else "not loaded yet"
            # Cached until the registry changes: no request re-reads or re-hashes anything.
            raise NotReady(f"{name}:{alias} has no version to serve: {reason}")

    def refresh(self, force: bool = False) -> None:
        """Judge again every followed alias whose registry files changed (all with force)."""
        with self._lock:
            for key in sorted(self._tracked):
                judged = self._stamps.get(key)
                if force or judged is None or self._stamp(key[0], judged.target) != judged:
                    self._stamps[key] = self._judge(key)

    def _stamp(self, name: str, target: int | None) -> AliasStamp:
        """The change detector of an alias: its aliases.json, and its target's files."""
        files = self.registry.version_stamp(name, target) if target is not None else None
        registry = self.registry
        return AliasStamp(
            registry.aliases_stamp(name), target, files, registry.canaries_stamp(name)
        )

    def _judge(self, key: AliasKey) -> AliasStamp:
        """Serve the alias's target if it verifies; else keep or find a verified version.

        Returns the stamp of the files it judged, each taken before it was read, so that a change
        made meanwhile is seen on the next poll.
        """
        name, alias = key
        aliases_stamp = self.registry.aliases_stamp(name)
        canaries_stamp = self.registry.canaries_stamp(name)
        target: int | None = None
        try:
            target = self.registry.aliases(name).get(alias)
            problem = None if target is not None else "the alias does not exist"
        except FashionServeError as error:
            problem = str(error)
        files = self.registry.version_stamp(name, target) if target is not None else None
        if target is not None:
            problem = self._serve(key, target)
        if problem is None:
            self._clear(key)
        else:
            self._refuse(Refusal(name, alias, target, problem))
            if key not in self._serving:
                self._fall_back(key, target)
        self._judge_canary(key)
        return AliasStamp(aliases_stamp, target, files, canaries_stamp)

    def _judge_canary(self, key: AliasKey) -> None:
        """Serve the alias's canary if it has one that loads; otherwise all goes to the target."""
        name, alias = key
        try:
            entry = self.registry.canaries(name).get(alias)
        except FashionServeError as error:
            log.error("cannot read the canaries of %s: %s; serving no canary", name, error)
            entry = None
        current = self._canaries.get(key)
        if entry is None:
            if self._canaries.pop(key, None) is not None:
                self._pin()
            return
        if current is not None and current.model.version == entry["version"]:
            self._canaries[key] = Canary(current.model, entry["weight"])
            return
        try:
            loaded = self.loader.load(name, entry["version"])
        except FashionServeError as error:
            log.error("refused canary v%d of %s:%s: %s", entry["version"], name, alias, error)
            self._canaries.pop(key, None)
        else:
            self._canaries[key] = Canary(loaded, entry["weight"])
            log.info("alias %s:%s sends %d%% to v%d", name, alias, entry["weight"], loaded.version)
        self._pin()

    def _pin(self) -> None:
        versions = [*self._serving.values(), *(c.model for c in self._canaries.values())]
        self.loader.pin(frozenset((m.name, m.version) for m in versions))

    def _serve(self, key: AliasKey, target: int) -> str | None:
        """Make the target answer for the alias; the reason it cannot, else None."""
        name, _ = key
        current = self._serving.get(key)
        if current is not None and current.version == target:
            try:  # its files changed on disk: does the registry's copy still verify?
                self.registry.verify_version(name, target)
            except FashionServeError as error:
                return f"{error}; serving the copy verified when it was loaded"
            return None
        try:
            loaded = self.loader.load(name, target)
        except FashionServeError as error:
            return str(error)
        self._switch(key, loaded)
        return None

    def _fall_back(self, key: AliasKey, refused: int | None) -> None:
        """Serve the latest earlier target of the alias that verifies, if any."""
        name, alias = key
        try:
            earlier = self.registry.alias_history(name).get(alias, [])
        except FashionServeError:
            earlier = []
        for version in dict.fromkeys(reversed(earlier)):
            if version == refused:
                continue
            try:
                loaded = self.loader.load(name, version)
            except FashionServeError:
                continue
            log.warning(
                "alias %s:%s serves last good v%d while its target is refused",
                name,
                alias,
                version,
            )
            self._switch(key, loaded)
            return

    def _switch(self, key: AliasKey, loaded: LoadedModel) -> None:
        name, alias = key
        current = self._serving.get(key)
        self._serving[key] = loaded  # requests in flight keep their reference to the old one
        self._pin()
        self.observers.on_switch(name, alias, loaded.version)
        log.info(
            "alias %s:%s now serves v%d (was %s)",
            name,
            alias,
            loaded.version,
            f"v{current.version}" if current else "nothing",
        )

    def _refuse(self, refusal: Refusal) -> None:
        key = (refusal.name, refusal.alias)
        known = self._refusals.get(key)
        if known is not None and (known.version, known.reason) == (refusal.version, refusal.reason):
            return  # the same refusal seen again: counted and logged once
        self._refusals[key] = refusal
        serving = self._serving.get(key)
        self.observers.on_refusal(refusal.name, refusal.alias, refusal.version, refusal.reason)
        self.observers.on_degraded(refusal.name, refusal.alias, True)
        log.error(
            "refused %s v%s for alias %s: %s; serving %s",
            refusal.name,
            refusal.version if refusal.version is not None else "?",
            refusal.alias,
            refusal.reason,
            f"v{serving.version}" if serving else "nothing",
        )

    def _clear(self, key: AliasKey) -> None:
        if self._refusals.pop(key, None) is not None:
            self.observers.on_degraded(key[0], key[1], False)
            log.info("alias %s:%s serves its target again", *key)

    # -- management --------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        """Point an alias at a version once it verifies and loads here; then switch to it."""
        name, alias = validate_name(name), validate_alias(alias)
        previous = self.registry.set_alias(name, alias, version, verify=self.loader.verify)
        self._moved(name, alias)
        return {"model": name, "alias": alias, "version": version, "previous": previous}

    def rollback(self, name: str, alias: str) -> dict[str, Any]:
        """Move an alias back to its latest earlier target that exists and verifies."""
        name, alias = validate_name(name), validate_alias(alias)
        previous, version = self.registry.rollback(name, alias, verify=self.loader.verify)
        self._moved(name, alias)
        return {"model": name, "alias": alias, "version": version, "previous": previous}

    def set_canary(self, name: str, alias: str, version: int, weight: int) -> dict[str, Any]:
        """Send weight % of an alias's traffic to a version once it verifies and loads here."""
        name, alias = validate_name(name), validate_alias(alias)
        previous = self.registry.set_canary(name, alias, version, weight, verify=self.loader.verify)
        self._moved(name, alias)
        return {"model": name, "alias": alias, "canary": {"version": version, "weight": weight},
                "previous": previous}  # fmt: skip

    def clear_canary(self, name: str, alias: str, reason: str) -> dict[str, Any]:
        """Send all of an alias's traffic back to its target."""
        name, alias = validate_name(name), validate_alias(alias)
        self.registry.versions(name)  # an unknown model is a 404, not an empty answer
        previous = self.registry.clear_canary(name, alias, reason)
        self._moved(name, alias)
        return {"model": name, "alias": alias, "canary": None, "previous": previous}

    def _moved(self, name: str, alias: str) -> None:
        with self._lock:
            self._tracked.add((name, alias))
            self.refresh(force=True)
