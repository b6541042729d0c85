"""A version's integrity: model.onnx's bytes against its card, and the whole registry's check-up."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.errors import IntegrityError, RegistryError

from . import _files

if TYPE_CHECKING:  # the registry calls in here: a type only, no import cycle at run time
    from . import Registry


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


def problems(registry: "Registry", models: list[str]) -> list[str]:
    """What is wrong with these models' versions and aliases; [] means all is well."""
    found = []
    for model in models:
        versions = registry.versions(model)
        for version in versions:
            try:
                registry.verify_version(model, version)
            except IntegrityError as exc:
                found.append(str(exc))
        try:
            aliases = registry.aliases(model)
            registry.alias_history(model)
        except RegistryError as exc:
            found.append(str(exc))
            continue
        found.extend(
            f"{model}: alias {alias!r} points at version {target}, which does not exist"
            for alias, target in sorted(aliases.items())
            if target not in versions
        )
    return found
