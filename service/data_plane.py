"""The data plane and the facade the HTTP layer uses: predict, model lists, summaries, cards."""

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from service.aliases import AliasFollower
from service.contract import CLASS_NAMES, IMAGE_SIDE, check_target, validate_alias, validate_name
from service.errors import BadRequest, BatchTooLarge, FileNotFound
from service.events import Observers
from service.loader import LoadedModel, Loader
from service.preprocess import Preprocessed, preprocess, preprocess_images
from service.registry import MODEL_FILE, Registry
from service.runtime import choose_providers, provider_names, provider_options
from service.settings import Settings

if TYPE_CHECKING:
    from service.activations import Activations, Inspector

# A version's stored files anyone may fetch: the training job's plots. The model itself and
# anything else in the version folder stay private.
PUBLIC_FILES = ("training.png", "confusion.png")


@dataclass(frozen=True)
class Result:
    """Probabilities for a batch, and which model version produced them."""

    model: LoadedModel
    alias: str | None
    probabilities: np.ndarray

    def predictions(self) -> list[dict[str, Any]]:
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


class InferenceService:
    """One process's core: versions it loaded, aliases it follows, and the predictions."""

    def __init__(self, settings: Settings) -> None:
        validate_name(settings.default_model)  # once here, not per request (model())
        validate_alias(settings.default_alias)
        self.settings = settings
        self.observers = Observers()  # the HTTP layer appends its metrics here
        self._registry = Registry(settings.model_dir)
        # Fails at start, before any model is touched, when FASHION_DEVICE=cuda has no CUDA.
        self.providers = choose_providers(settings.device)
        self._loader = Loader(
            self._registry,
            settings,
            self.providers,
            self.observers,
            pinned=lambda: self._aliases.pinned(),
        )
        self._aliases = AliasFollower(self._registry, settings, self._loader, self.observers)
        self._inspector: Inspector | None = None
        self._inspector_lock = threading.Lock()

    # -- lifecycle and readiness ---------------------------------------------------------------

    def start(self) -> None:
        """Load the default model's default alias, then follow alias changes in the background."""
        self._aliases.start()

    def close(self) -> None:
        """Stop following alias changes."""
        self._aliases.close()

    def is_ready(self) -> bool:
        """True once the default model's default alias answers (with a verified version)."""
        return self._aliases.is_ready()

    def status(self) -> dict[str, Any]:
        """What this process serves and what it refused, for /readyz.

        "degraded": some followed alias answers with a verified version other than its target's
        registry copy (refused: corrupt, missing, unloadable); it still answers, so it is ready.
        """
        serving, refused = self._aliases.report()
        ready = self.is_ready()
        degraded = any(entry["degraded"] for entry in serving)
        return {
            "ready": ready,
            "status": "degraded" if ready and degraded else "ready" if ready else "not_ready",
            "pid": os.getpid(),  # which worker answered: each gunicorn worker has its own state
            "default": {
                "model": self.settings.default_model,
                "alias": self.settings.default_alias,
            },
            "serving": serving,
            "loaded": [
                {"model": m.name, "version": m.version, "providers": m.model.providers}
                for m in self._loader.loaded()
            ],
            "refused": refused,
        }

    # -- resolution ----------------------------------------------------------------------------

    def model(
        self, name: str | None = None, version: int | None = None, alias: str | None = None
    ) -> tuple[LoadedModel, str | None]:
        """The loaded model answering for (name, version | alias); default alias if neither."""
        # The defaults were validated with the settings: only names a client gave are checked.
        name = validate_name(name) if name else self.settings.default_model
        check_target(version, alias)
        if version is not None:
            loaded = self._loader.get(name, version)
            return (loaded or self._loader.load(name, version, on_demand=True)), None
        alias = validate_alias(alias) if alias else self.settings.default_alias
        return self._aliases.get(name, alias), alias

    # -- the registry as the HTTP layer shows it -------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """Every model in the registry with its versions and aliases."""
        registry = self._registry
        return [
            {
                "name": name,
                "versions": registry.versions(name),
                "aliases": registry.aliases(name),
                "default": name == self.settings.default_model,
            }
            for name in registry.models()
        ]

    def describe_model(self, name: str) -> dict[str, Any]:
        """One model: its versions (with headline metrics), aliases and alias history."""
        registry = self._registry
        name = validate_name(name)
        versions = []
        for version in registry.versions(name):
            card = registry.card(name, version)
            metrics = card.get("metrics")  # a card is free-form JSON: null, a list, ...
            versions.append(
                {
                    "version": version,
                    "created_at": card.get("created_at"),
                    "test_accuracy": metrics.get("test_accuracy")
                    if isinstance(metrics, dict)
                    else None,
                }
            )
        return {
            "name": name,
            "versions": versions,
            "aliases": registry.aliases(name),
            "alias_history": registry.alias_history(name),
        }

    def version_card(self, name: str, version: int) -> dict[str, Any]:
        """A version's card, plus whether this process has it loaded and on which providers."""
        name = validate_name(name)
        card = self._registry.card(name, version)
        loaded = self._loader.get(name, version)
        folder = self._registry.version_dir(name, version)
        files = {
            file: (folder / file).stat().st_size
            for file in (MODEL_FILE, *PUBLIC_FILES)
            if (folder / file).is_file()
        }
        return {
            **card,
            "files": files,
            "serving": {
                "loaded": loaded is not None,
                "device": self.settings.device,
                "providers": loaded.model.providers if loaded else provider_names(self.providers),
                # The options each provider runs with (CUDA: use_tf32 "0"), as onnxruntime
                # reports them once loaded, else as they would be passed.
                "provider_options": loaded.model.provider_options
                if loaded
                else provider_options(self.providers),
            },
        }

    def version_file(self, name: str, version: int, filename: str) -> Path:
        """The absolute path of one of a version's public stored files (PUBLIC_FILES)."""
        name = validate_name(name)
        if filename not in PUBLIC_FILES:
            raise FileNotFound(f"no such file; a version serves {', '.join(PUBLIC_FILES)}")
        self._registry.card(name, version)  # an unknown model or version: its own error first
        path = self._registry.version_dir(name, version) / filename
        if not path.is_file():
            raise FileNotFound(f"version {version} of {name} has no {filename}")
        return path.resolve()

    def versions(self, name: str, version: int | None = None) -> list[int]:
        """A model's versions, once the version (default: the production alias's) is found."""
        name = validate_name(name)
        self._registry.resolve(name, version=version)
        return self._registry.versions(name)

    # -- management ----------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        """Point an alias at a version after proving this process can load it."""
        return self._aliases.set_alias(name, alias, version)

    def rollback(self, name: str, alias: str) -> dict[str, Any]:
        """Move an alias back to the version it pointed at before."""
        return self._aliases.rollback(name, alias)

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

    def explain_image(
        self,
        data: bytes,
        name: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        **reading: str,
    ) -> "tuple[Result, Activations]":
        """Classify one encoded image and read the answering version's hidden layers for it.

        `reading` holds the image options /predict takes (invert, mode), passed on unchanged to
        preprocess_images, so the two endpoints always read an upload the same way.
        """
        loaded, alias = self.model(name, version, alias)
        images = preprocess_images([data], max_pixels=self.settings.max_pixels, **reading)
        # The bytes are checked against the card this process loaded: a version folder replaced
        # by hand is refused (IntegrityError), never explained with another graph.
        key = (loaded.name, loaded.version, loaded.card.get("sha256"))
        activations = self._inspect().activations(
            key,
            lambda: self._registry.verified_bytes(loaded.name, loaded.version, loaded.card),
            images[0],
        )
        # One run answers both: the probabilities come from the session that exposes the layers.
        return Result(loaded, alias, activations.probabilities[np.newaxis]), activations

    def _inspect(self) -> "Inspector":
        with self._inspector_lock:
            if self._inspector is None:
                # Imported on first use: the onnx package would cost every worker ~0.4 s and
                # 12 MB at start, and most workers never explain an image.
                from service.activations import Inspector

                settings = self.settings
                self._inspector = Inspector(self.providers, settings.threads, settings.max_loaded)
            return self._inspector

    def _result(self, loaded: LoadedModel, alias: str | None, images: np.ndarray) -> Result:
        probabilities = loaded.model.run(images)
        if self.observers:
            self.observers.notify(
                "on_result", loaded.name, loaded.version, probabilities.argmax(axis=1)
            )
        return Result(loaded, alias, probabilities)

    def _check_batch(self, count: int) -> None:
        if count == 0:
            raise BadRequest("no image in the request")
        if count > self.settings.max_batch:
            raise BatchTooLarge(
                f"{count} images in one request; the limit is {self.settings.max_batch}"
            )
