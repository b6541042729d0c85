"""The data plane: which loaded version answers a request, and predict, preprocess, explain."""

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from service.aliases import AliasFollower
from service.contract import CLASS_NAMES, IMAGE_SIDE, check_target, validate_alias, validate_name
from service.deadline import Deadline
from service.errors import BadRequest, BatchTooLarge, FashionServeError, ModelRunError, NotClothing
from service.events import Observers
from service.loader import LoadedModel
from service.preprocess import DEFAULT_READING, Preprocessed, Reading, read_images
from service.registry import Registry
from service.runtime import Providers
from service.settings import Settings

if TYPE_CHECKING:
    from service.activations import Activations, Inspector

log = logging.getLogger("fashion_serve.data_plane")


@dataclass(frozen=True)
class Result:
    """Probabilities for a batch, which model version produced them, and its judgement.

    novelty and in_distribution are None for a version that does not judge its inputs.
    """

    model: LoadedModel
    alias: str | None
    probabilities: np.ndarray
    novelty: np.ndarray | None = None
    in_distribution: np.ndarray | None = None
    images: np.ndarray | None = None  # the [N,28,28] the model saw, for payload capture

    @cached_property
    def classes(self) -> np.ndarray:
        """Each image's top class id: the answers, observers and the feedback journal share it."""
        classes: np.ndarray = self.probabilities.argmax(axis=1)
        return classes

    def predictions(self) -> list[dict[str, Any]]:
        """One labelled entry per image: top class, its confidence, all ten probabilities, and
        the version's judgement (null fields for a version without one)."""
        best = self.classes.tolist()
        count = len(best)
        novelty = [None] * count if self.novelty is None else self.novelty.tolist()
        judged = [None] * count if self.in_distribution is None else self.in_distribution.tolist()
        return [
            {
                "label": CLASS_NAMES[top],
                "class_id": top,
                "confidence": row[top],
                "probabilities": dict(zip(CLASS_NAMES, row, strict=True)),
                "in_distribution": inside,
                "novelty": score,
            }
            for top, row, inside, score in zip(
                best, self.probabilities.tolist(), judged, novelty, strict=True
            )
        ]

    def reject_unknown(self) -> None:
        """NotClothing naming the first image this version judged not in distribution."""
        judged, novelty, judgement = self.in_distribution, self.novelty, self.model.judgement
        if judged is None or novelty is None or judgement is None or judged.all():
            return
        index = int(np.argmin(judged))
        raise NotClothing(
            f"image {index + 1} of {len(judged)} does not look like clothing to version"
            f" {self.model.version} of {self.model.name} (novelty {float(novelty[index]):.4g},"
            f" threshold {judgement.threshold:.4g})"
        )


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
        # Given each served batch, with what the model saw (service/shadow.py's offer).
        self.shadow: Callable[[Result], None] | None = None

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
        reject_unknown: bool = False,
        key: str | None = None,
    ) -> Result:
        """Decode, normalize and classify encoded images (one request's batch).

        ``reject_unknown``: NotClothing instead of an answer when the version judges any image
        not in distribution (a version without a judgement never rejects).
        """
        deadline = self._deadline()
        self._check_batch(len(blobs))
        loaded, alias = self.model(name, version, alias, key)
        images = read_images(blobs, reading, self.settings.max_pixels, deadline).images
        result = self._result(loaded, alias, images, deadline)
        if reject_unknown:
            result.reject_unknown()
        return result

    def preprocess(
        self, blobs: Sequence[bytes], reading: Reading = DEFAULT_READING
    ) -> Preprocessed:
        """The [N,28,28] a model would receive for these images, within this service's limits."""
        self._check_batch(len(blobs))
        return read_images(blobs, reading, self.settings.max_pixels, self._deadline())

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
        deadline = self._deadline()
        self._check_batch(len(images))
        loaded, alias = self.model(name, version, alias, key)
        tensor = np.ascontiguousarray(images, dtype=np.float32)
        return self._result(loaded, alias, tensor, deadline)

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
        probabilities = activations.probabilities[np.newaxis]
        return self._judged(loaded, alias, probabilities, activations.novelty), activations

    def _inspect(self) -> "Inspector":
        with self._inspector_lock:
            if self._inspector is None:
                # Imported on first use: most workers never explain an image.
                from service.activations import Inspector

                settings = self.settings
                self._inspector = Inspector(self._providers, settings.threads, settings.max_loaded)
            return self._inspector

    def _deadline(self) -> Deadline:
        """This request's budget, from now: checked between images and between model runs."""
        return Deadline(self.settings.request_timeout)

    def _result(
        self, loaded: LoadedModel, alias: str | None, images: np.ndarray, deadline: Deadline
    ) -> Result:
        # One session run answers both outputs; the judgement is made here, once, for every
        # protocol.
        try:
            probabilities, novelty = loaded.model.run_judged(images, deadline)
        except FashionServeError:  # the request's own budget ran out: not the version's fault
            raise
        except Exception as error:  # onnxruntime raises its own untyped errors
            log.error("%s v%d failed on a batch of %d: %s", loaded.name, loaded.version,
                      len(images), error)  # fmt: skip
            self._observers.on_failure(loaded.name, loaded.version, type(error).__name__)
            raise ModelRunError(
                f"version {loaded.version} of {loaded.name} failed to classify these images"
            ) from None
        result = self._judged(loaded, alias, probabilities, novelty, images)
        if self.shadow is not None:
            self.shadow(result)
        if self._observers:
            self._observers.on_result(loaded.name, loaded.version, result.classes)
            judged = result.in_distribution
            flagged = 0 if judged is None else len(judged) - int(judged.sum())
            if flagged:
                self._observers.on_flagged(loaded.name, loaded.version, flagged)
        return result

    @staticmethod
    def _judged(
        loaded: LoadedModel,
        alias: str | None,
        probabilities: np.ndarray,
        novelty: np.ndarray | None,
        images: np.ndarray | None = None,
    ) -> Result:
        """The result with the version's judgement of each image (None without one)."""
        if novelty is None or loaded.judgement is None:
            return Result(loaded, alias, probabilities, images=images)
        judged = loaded.judgement.in_distribution(novelty)
        return Result(loaded, alias, probabilities, novelty, judged, images)

    def _check_batch(self, count: int) -> None:
        if count == 0:
            raise BadRequest("no image in the request")
        if count > self.settings.max_batch:
            raise BatchTooLarge(
                f"{count} images in one request; the limit is {self.settings.max_batch}"
            )
