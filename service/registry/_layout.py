"""Where a registry keeps things: its file names and its numbered version folders.

Layout (the same as TF Serving and Triton, with MLflow-style aliases)::

    <root>/<name>/<version>/model.onnx      immutable once written; versions are 1, 2, 3 ...
    <root>/<name>/<version>/model.json      the version card
    <root>/<name>/aliases.json              {"production": 3, "staging": 4}
    <root>/<name>/alias_history.json        {"production": [1, 2]}: earlier targets, oldest first
                                            (the last HISTORY_LIMIT of them)
    <root>/<name>/canaries.json             {"production": {"version": 4, "weight": 10}}: a share
                                            of an alias's traffic sent to a second version
    <root>/<name>/shadows.json              {"production": 4}: a version that receives a copy of
                                            an alias's requests, off the request path
    <root>/<name>/alias_log.json            every alias move (promote, roll back, canary), oldest
                                            first (the last LOG_LIMIT of them)
    <root>/<name>/rollout.json              the model's latest stepped rollout (service/rollout.py)
    <root>/<name>/.lock                     fcntl lock serialising registrations and alias changes
    <root>/<name>/.tmp-*                    registrations in progress (or killed): never visible
"""

import os
from pathlib import Path

from service.contract import is_version_text
from service.errors import RegistryError

MODEL_FILE = "model.onnx"
CARD_FILE = "model.json"
ALIASES_FILE = "aliases.json"
HISTORY_FILE = "alias_history.json"
CANARIES_FILE = "canaries.json"
SHADOWS_FILE = "shadows.json"
LOG_FILE = "alias_log.json"
ROLLOUT_FILE = "rollout.json"
ROLLOUT_LOCK_FILE = ".rollout.lock"
LOCK_FILE = ".lock"


def scan_versions(model_dir: Path) -> list[int]:
    """The versions in a model's folder, ascending ([] if there is no such folder)."""
    try:
        entries = list(os.scandir(model_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise RegistryError(f"cannot list model {model_dir.name!r}: {exc.strerror}") from exc
    return sorted(
        int(entry.name) for entry in entries if is_version_text(entry.name) and entry.is_dir()
    )
