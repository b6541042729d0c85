"""A version's integrity: model.onnx's bytes against the sha256 its card records."""

from pathlib import Path
from typing import Any

from service.errors import IntegrityError

from . import _files


def checked_bytes(name: str, version: int, card: dict[str, Any], model_file: Path) -> bytes:
    """model_file's bytes, read once, if the card is this version's and records their sha256."""
    label = f"{name} version {version}"
    if card.get("name") != name or card.get("version") != version:
        described = f"{card.get('name')!r} version {card.get('version')!r}"
        raise IntegrityError(f"{label}: model.json describes {described}")
    expected = card.get("sha256")
    if not isinstance(expected, str):
        raise IntegrityError(f"{label}: model.json records no sha256")
    try:
        data = model_file.read_bytes()
    except FileNotFoundError as exc:
        raise IntegrityError(f"{label}: {model_file.name} is missing") from exc
    except OSError as exc:
        raise IntegrityError(f"{label}: cannot read {model_file.name}: {exc.strerror}") from exc
    actual = _files.sha256_bytes(data)
    if actual != expected:
        raise IntegrityError(
            f"{label}: {model_file.name} has sha256 {actual}, but its card records {expected}"
        )
    return data
