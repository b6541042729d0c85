"""The protocol-agnostic core: resolve a model, preprocess, run, label; follow alias moves."""

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from service.errors import (
    BadRequest,
    BatchTooLarge,
    FashionServeError,
    NotReady,
)
from service.labels import CLASS_NAMES
from service.preprocess import IMAGE_SIDE, Preprocessed, preprocess
from service.registry import Registry, validate_name
from service.runtime import OnnxModel, choose_providers
from service.settings import Settings

log = logging.getLogger("fashion_serve")


@dataclass(frozen=True)
class LoadedModel:
    """One version of a model, verified, loaded and warmed up in this process."""

    name: str
    version: int
    card: dict
    model: OnnxModel
    load_seconds: float


@dataclass(frozen=True)
class Refusal:
    """A version this process would not serve, and why."""

    name: str
    alias: str
    version: int | None
    reason: str
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict:
        """JSON-ready form for /readyz details."""
        return {
            "model": self.name,
            "alias": self.alias,
            "version": self.version,
            "reason": self.reason,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
        }


@dataclass(frozen=True)
class Result:
    """Probabilities for a batch, and which model version produced them."""

    model: LoadedModel
    alias: str | None
    probabilities: np.ndarray

    def predictions(self) -> list[dict]:
        """One labelled entry per image: top class, its confidence, and all ten probabilities."""
        best = self.probabilities.argmax(axis=1).tolist()
        return [
            {
                "label": CLASS_NAMES[top],
                "class_id": top,
                "confidence": row[top],
                "probabilities": dict(zip(CLASS_NAMES, row, strict=True)),
            }
            for top, row in zip(best, self.probabilities.tolist(), strict=True)
        ]


class Events:
    """What the core tells observers (metrics, ...); override the calls of interest, keep them fast.

    An observer must not raise: the core logs and ignores anything it does, serving goes on.
    """

    def on_load(self, name: str, version: int, seconds: float) -> None:
        """A version was loaded, verified and warmed up in this process."""

    def on_switch(self, name: str, alias: str, version: int) -> None:
        """An alias now answers with this version in this process."""

    def on_refusal(self, name: str, alias: str, version: int | None, reason: str) -> None:
        """An alias's target was refused (missing, corrupt, unloadable); the old one serves on."""

    def on_result(self, name: str, version: int, classes: np.ndarray) -> None:
        """A batch was classified: the predicted class id of each image."""


class InferenceService:
    """Holds this process's loaded versions, serves predictions, and follows alias changes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.observers: list[Events] = []  # the HTTP layer appends its metrics here
        self.registry = Registry(settings.model_dir)
        # Fails at start, before any model is touched, when FASHION_DEVICE=cuda has no CUDA.
        self.providers = choose_providers(settings.device)
        self._lock = threading.RLock()
        self._serving: dict[tuple[str, str], LoadedModel] = {}  # (model, alias) → what answers
        self._tracked: set[tuple[str, str]] = set()  # aliases followed, loaded or not
        self._versions: dict[tuple[str, int], LoadedModel] = {}  # insertion order = age
        self._stamps: dict[str, object] = {}
        self._refusals: dict[tuple[str, str], Refusal] = {}
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
        key = (self.settings.default_model, self.settings.default_alias)
        return key in self._serving

    def status(self) -> dict:
        """What this process serves and what it refused, for /readyz."""
        return {
            "ready": self.is_ready(),
            "default": {
                "model": self.settings.default_model,
                "alias": self.settings.default_alias,
            },
            "serving": [
                {"model": name, "alias": alias, "version": loaded.version}
                for (name, alias), loaded in sorted(self._serving.items())
            ],
            "loaded": [
                {"model": name, "version": version, "providers": loaded.model.providers}
                for (name, version), loaded in sorted(self._versions.items())
            ],
            "refused": [refusal.as_dict() for refusal in self._refusals.values()],
        }

    # -- resolution and loading --------------------------------------------------------------

    def model(
        self, name: str | None = None, version: int | None = None, alias: str | None = None
    ) -> tuple[LoadedModel, str | None]:
        """The loaded model answering for (name, version | alias); default alias if neither."""
        name = validate_name(name or self.settings.default_model)
        if version is not None and alias is not None:
            raise BadRequest("give either a version or an alias, not both")
        if version is not None:
            loaded = self._versions.get((name, version))
            return (loaded or self._load_version(name, version)), None
        alias = validate_name(alias or self.settings.default_alias, "alias")
        loaded = self._serving.get((name, alias))
        if loaded is None:
            loaded = self._follow(name, alias)
        return loaded, alias

    def loaded_version(self, name: str, version: int) -> LoadedModel | None:
        """The version if this process has it loaded, else None (no loading, no I/O)."""
        return self._versions.get((name, version))

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

    def _load_version(self, name: str, version: int) -> LoadedModel:
        with self._lock:
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
            self._evict()
            self._notify("on_load", name, version, loaded.load_seconds)
            log.info(
                "loaded %s v%d on %s in %.0f ms",
                name,
                version,
                ",".join(model.providers),
                loaded.load_seconds * 1000,
            )
            return loaded

    def _evict(self) -> None:
        """Forget the oldest versions beyond max_loaded that no alias is serving."""
        pinned = {(m.name, m.version) for m in self._serving.values()}
        spare = [key for key in self._versions if key not in pinned]
        for key in spare[: max(0, len(self._versions) - self.settings.max_loaded)]:
            del self._versions[key]

    def _switch(self, key: tuple[str, str], target: int) -> None:
        """Load and warm the alias's new target, then swap; on failure keep the old one."""
        name, alias = key
        current = self._serving.get(key)
        if current is not None and current.version == target:
            self._refusals.pop(key, None)
            return
        try:
            loaded = self._load_version(name, target)
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
        self._evict()
        self._notify("on_switch", name, alias, target)
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
            self._notify("on_refusal", refusal.name, refusal.alias, refusal.version, refusal.reason)

    def _notify(self, event: str, *args) -> None:
        for observer in self.observers:
            try:
                getattr(observer, event)(*args)
            except Exception:  # an observer's bug must never stop a load, a switch or a prediction
                log.exception("observer %r failed on %s", observer, event)

    # -- management --------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> dict:
        """Point an alias at a version after proving this process can load it."""
        name, alias = validate_name(name), validate_name(alias, "alias")
        self._load_version(name, version)  # a version that won't load is never promoted
        with self._lock:
            previous = self.registry.set_alias(name, alias, version)
            self._tracked.add((name, alias))
            self.refresh(force=True)
        return {"model": name, "alias": alias, "version": version, "previous": previous}

    def rollback(self, name: str, alias: str) -> dict:
        """Move an alias back to the version it pointed at before."""
        name, alias = validate_name(name), validate_name(alias, "alias")
        with self._lock:
            previous = self.registry.resolve(name, alias=alias)
            version = self.registry.rollback(name, alias)
            self._tracked.add((name, alias))
            self.refresh(force=True)
        return {"model": name, "alias": alias, "version": version, "previous": previous}

    # -- inference ---------------------------------------------------------------------------

    def predict_images(
        self,
        blobs: Sequence[bytes],
        name: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        invert: str = "auto",
        mode: str = "auto",
    ) -> Result:
        """Decode, normalize and classify encoded images (one request's batch)."""
        self._check_batch(len(blobs))
        loaded, alias = self.model(name, version, alias)
        return self._result(loaded, alias, self.preprocess(blobs, invert, mode).images)

    def preprocess(
        self, blobs: Sequence[bytes], invert: str = "auto", mode: str = "auto"
    ) -> Preprocessed:
        """The [N,28,28] a model would receive for these images, within this service's limits."""
        self._check_batch(len(blobs))
        return preprocess(blobs, invert, self.settings.max_pixels, mode)

    def predict_array(
        self,
        images: np.ndarray,
        name: str | None = None,
        version: int | None = None,
        alias: str | None = None,
    ) -> Result:
        """Classify an already-normalized float32 [N,28,28] batch (tensor protocols)."""
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or not len(images):
            raise BadRequest(
                f"expected a [N,28,28] batch of images, got shape {list(images.shape)}"
            )
        if not np.isfinite(images).all():
            raise BadRequest("pixel values must be finite numbers")
        self._check_batch(len(images))
        loaded, alias = self.model(name, version, alias)
        return self._result(loaded, alias, np.ascontiguousarray(images, dtype=np.float32))

    def _result(self, loaded: LoadedModel, alias: str | None, images: np.ndarray) -> Result:
        probabilities = loaded.model.run(images)
        if self.observers:
            self._notify("on_result", loaded.name, loaded.version, probabilities.argmax(axis=1))
        return Result(loaded, alias, probabilities)

    def _check_batch(self, count: int) -> None:
        if count == 0:
            raise BadRequest("no image in the request")
        if count > self.settings.max_batch:
            raise BatchTooLarge(
                f"{count} images in one request; the limit is {self.settings.max_batch}"
            )
