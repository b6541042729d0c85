"""The data plane: which loaded version answers a request, and predict, preprocess, explain."""

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from service.aliases import AliasFollower
from service.contract import CLASS_NAMES, IMAGE_SIDE, check_target, validate_alias, validate_name
from service.errors import BadRequest, BatchTooLarge
from service.events import Observers
from service.loader import LoadedModel
from service.preprocess import DEFAULT_READING, Preprocessed, Reading, read_images
from service.registry import Registry
from service.runtime import Providers
from service.settings import Settings

if TYPE_CHECKING:
    from service.activations import Activations, Inspector


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


class DataPlane:
    """What a request needs: the version that answers it, and predict, preprocess, explain."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        aliases: AliasFollower,
        providers: Providers,
        observers: Observers,
    ) -> None:
        self.settings = settings
        self._registry = registry
        self._aliases = aliases
        self._loader = aliases.loader
        self._providers = providers
        self._observers = observers
        self._inspector: Inspector | None = None
        self._inspector_lock = threading.Lock()

    def model(
        self,
        name: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        key: str | None = None,
    ) -> tuple[LoadedModel, str | None]:
        """The loaded model answering for (name, version | alias); default alias if neither.

        An alias with a canary answers with its candidate for a share of the client keys
        (service/canary.py); without a key, a random request.
        """
        # The defaults were validated with the settings: only names a client gave are checked.
        name = validate_name(name) if name else self.settings.default_model
        check_target(version, alias)
        if version is not None:
            loaded = self._loader.get(name, version)
            return (loaded or self._loader.load(name, version, on_demand=True)), None
        alias = validate_alias(alias) if alias else self.settings.default_alias
        return self._aliases.route(name, alias, key), alias

    def predict_images(
        self,
        blobs: Sequence[bytes],
        name: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        reading: Reading = DEFAULT_READING,
        key: str | None = None,
    ) -> Result:
        """Decode, normalize and classify encoded images (one request's batch)."""
        self._check_batch(len(blobs))
        loaded, alias = self.model(name, version, alias, key)
        images = read_images(blobs, reading, self.settings.max_pixels).images
        return self._result(loaded, alias, images)

    def preprocess(
        self, blobs: Sequence[bytes], reading: Reading = DEFAULT_READING
    ) -> Preprocessed:
        """The [N,28,28] a model would receive for these images, within this service's limits."""
        self._check_batch(len(blobs))
        return read_images(blobs, reading, self.settings.max_pixels)

    def predict_array(
        self,
        images: np.ndarray,
        name: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        key: str | None = None,
    ) -> Result:
        """Classify an already-normalized float32 [N,28,28] batch (tensor protocols)."""
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or not len(images):
            raise BadRequest(
                f"expected a [N,28,28] batch of images, got shape {list(images.shape)}"
            )
        if not np.isfinite(images).all():
            raise BadRequest("pixel values must be finite numbers")
        self._check_batch(len(images))
        loaded, alias = self.model(name, version, alias, key)
        return self._result(loaded, alias, np.ascontiguousarray(images, dtype=np.float32))

    def explain_image(
        self,
        data: bytes,
        name: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        reading: Reading = DEFAULT_READING,
    ) -> "tuple[Result, Activations]":
        """Classify one encoded image and read the answering version's hidden layers for it."""
        loaded, alias = self.model(name, version, alias)
        images = read_images([data], reading, self.settings.max_pixels).images
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
                # Imported on first use: most workers never explain an image, and the onnx
                # package it needs is slow to import.
                from service.activations import Inspector

                settings = self.settings
                self._inspector = Inspector(self._providers, settings.threads, settings.max_loaded)
            return self._inspector

    def _result(self, loaded: LoadedModel, alias: str | None, images: np.ndarray) -> Result:
        probabilities = loaded.model.run(images)
        if self._observers:
            self._observers.on_result(loaded.name, loaded.version, probabilities.argmax(axis=1))
        return Result(loaded, alias, probabilities)

    def _check_batch(self, count: int) -> None:
        if count == 0:
            raise BadRequest("no image in the request")
        if count > self.settings.max_batch:
            raise BatchTooLarge(
                f"{count} images in one request; the limit is {self.settings.max_batch}"
            )
