"""Feedback: predictions remembered for a while, joined with the true class a client reports.

Both live as journals in the registry's folder (service/journal.py), so feedback reaches the
version and the class that answered whichever worker or replica answered, and survives
restarts. Live accuracy per version is tallied from the feedback journal, incrementally.
"""

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.contract import CLASS_NAMES
from service.errors import BadRequest, PredictionNotFound, RegistryError
from service.events import Observer
from service.journal import Journal, Tail
from service.settings import Settings

if TYPE_CHECKING:
    from service.data_plane import Result

LIVE_FOLDER = ".live"  # not a model name (names start with a letter or digit): never listed
PREDICTION_WINDOW = 600  # seconds per predictions file: lookups read the windows within the TTL
FEEDBACK_WINDOW = 3600
FEEDBACK_KEEP = 7 * 24 * 3600  # live accuracy looks back a week
MAX_FILE_BYTES = 16 * 1024 * 1024  # per writer and window: the journals' size bound


def class_id(label: object) -> int:
    """A class given by name ("Ankle boot") or id (0..9); BadRequest otherwise."""
    if isinstance(label, str) and label in CLASS_NAMES:
        return CLASS_NAMES.index(label)
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(CLASS_NAMES):
        return label
    raise BadRequest(f"unknown class {label!r:.60}: give one of {list(CLASS_NAMES)} or its index")


class Tally:
    """Per (model, version): a confusion matrix of feedback, the latest per prediction counted."""

    def __init__(self, tail: Tail) -> None:
        self._tail = tail
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, int], tuple[str, int, int, int]] = {}
        self._matrices: dict[tuple[str, int], list[list[int]]] = {}

    def matrices(self) -> dict[tuple[str, int], list[list[int]]]:
        """rows: the true class, columns: the class answered; read up to the journal's end."""
        with self._lock:
            restarted, records = self._tail.new_records()
            if restarted:
                self._latest, self._matrices = {}, {}
            for record in records:
                self._count(record)
            return {key: [row[:] for row in matrix] for key, matrix in self._matrices.items()}

    def _count(self, record: dict[str, Any]) -> None:
        try:
            key = (str(record["id"]), int(record["i"]))
            entry = (str(record["m"]), int(record["v"]), int(record["pred"]), int(record["true"]))
        except (KeyError, TypeError, ValueError):
            return
        if not all(0 <= c < len(CLASS_NAMES) for c in entry[2:]):
            return
        previous = self._latest.get(key)
        if previous is not None:  # feedback given again for one prediction: the latest counts
            self._matrix(previous)[previous[3]][previous[2]] -= 1
        self._latest[key] = entry
        self._matrix(entry)[entry[3]][entry[2]] += 1

    def _matrix(self, entry: tuple[str, int, int, int]) -> list[list[int]]:
        size = len(CLASS_NAMES)
        return self._matrices.setdefault(entry[:2], [[0] * size for _ in range(size)])


def journals(registry_root: Path, prediction_ttl: float) -> tuple[Journal, Journal]:
    """The predictions and feedback journals of a registry (what a rollout reads, too)."""
    root = registry_root / LIVE_FOLDER
    return (
        Journal(root / "predictions", PREDICTION_WINDOW, prediction_ttl, MAX_FILE_BYTES),
        Journal(root / "feedback", FEEDBACK_WINDOW, FEEDBACK_KEEP, MAX_FILE_BYTES),
    )


class Failures(Observer):
    """Writes each failed classification to the predictions journal: a rollout's error rate."""

    def __init__(self, predictions: Journal) -> None:
        self.predictions = predictions

    def on_failure(self, name: str, version: int, reason: str) -> None:
        self.predictions.append(
            {"t": round(time.time(), 3), "m": name, "v": version, "err": reason[:100]}
        )


class Feedback:
    """Remembers predictions, joins feedback to them, and tallies live accuracy."""

    def __init__(self, settings: Settings) -> None:
        self.ttl = settings.prediction_ttl
        self.predictions, self.feedback = journals(settings.model_dir, self.ttl)
        self.tally = Tally(Tail(self.feedback))

    def remember(self, request_id: str, result: "Result", seconds: float | None = None) -> None:
        """Keep what answered the request, so feedback can name it (never fails the request).

        seconds: how long decoding and classifying took, which a rollout compares per version.
        """
        probabilities, classes = result.probabilities, result.classes
        record = {
            "id": request_id,
            "t": round(time.time(), 3),
            "m": result.model.name,
            "v": result.model.version,
            "a": result.alias,
            "c": classes.tolist(),
            "p": [round(p, 5) for p in probabilities.max(axis=1).tolist()],
            "ms": None if seconds is None else round(seconds * 1000, 3),
        }
        if result.in_distribution is not None:  # the version's judgement, for drift's OOD share
            record["j"] = result.in_distribution.tolist()
        self.predictions.append(record)

    def give(self, request_id: str, label: object, index: object = 0) -> dict[str, Any]:
        """Record the true class of one image of a remembered request; what it is joined to."""
        true = class_id(label)
        record = self.predictions.find("id", request_id)
        if (
            record is None
            or not isinstance(record.get("t"), float | int)
            or (record["t"] < time.time() - self.ttl)
        ):
            raise PredictionNotFound(
                f"no prediction with request ID {request_id!r} in the last {self.ttl:g} s"
            )
        classes = record.get("c")
        if not isinstance(classes, list) or not classes:
            raise PredictionNotFound(f"the prediction {request_id!r} is unreadable")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(classes):
            raise BadRequest(
                f"index must be an image's position in that request, 0..{len(classes) - 1}"
            )
        predicted = int(classes[index])
        written = self.feedback.append(
            {"id": request_id, "i": index, "t": round(time.time(), 3), "m": record["m"],
             "v": record["v"], "pred": predicted, "true": true}
        )  # fmt: skip
        if not written:
            raise RegistryError(self.feedback.broken or "the feedback journal is full; try later")
        return {
            "request_id": request_id,
            "index": index,
            "model": {"name": record["m"], "version": record["v"], "alias": record.get("a")},
            "predicted": CLASS_NAMES[predicted],
            "label": CLASS_NAMES[true],
            "correct": predicted == true,
        }

    def summary(self, name: str) -> dict[str, Any]:
        """Live accuracy of each of a model's versions that received feedback."""
        versions = []
        for (model, version), matrix in sorted(self.tally.matrices().items()):
            if model != name:
                continue
            total = sum(map(sum, matrix))
            correct = sum(matrix[c][c] for c in range(len(matrix)))
            versions.append(
                {
                    "version": version,
                    "feedback": total,
                    "correct": correct,
                    "accuracy": correct / total if total else None,
                }
            )
        return {"model": name, "versions": versions}
