"""The filesystem model registry: immutable numbered versions, atomic aliases, sha256 checks.

No alias ever points at a version that fails verification: set_alias and rollback check the
target's sha256, then run the caller's ``verify`` on the very bytes they checked, before writing.
Error messages name files relative to the root: they reach anonymous HTTP clients.
"""

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from service.contract import (
    DEFAULT_ALIAS,
    check_target,
    check_version,
    is_name,
    is_version,
    validate_alias,
    validate_name,
)
from service.errors import (
    AliasNotFound,
    BadRequest,
    IntegrityError,
    ModelNotFound,
    NoAliasHistory,
    RegistryError,
    VersionNotFound,
)

from . import _canary, _files, _integrity, _register
from ._layout import (
    ALIASES_FILE,
    CANARIES_FILE,
    CARD_FILE,
    HISTORY_FILE,
    LOCK_FILE,
    LOG_FILE,
    MODEL_FILE,
    ROLLOUT_FILE,
    ROLLOUT_LOCK_FILE,
    SHADOWS_FILE,
    scan_versions,
)

__all__ = [
    "ALIASES_FILE", "CANARIES_FILE", "CARD_FILE", "HISTORY_FILE", "HISTORY_LIMIT", "LOCK_FILE",
    "LOG_FILE", "MODEL_FILE", "SHADOWS_FILE", "Registry", "Verifier",
]  # fmt: skip

# Checks a version's model bytes beyond their sha256 (loads them, checks the contract); raises.
Verifier = Callable[[bytes], object]
# Earlier targets kept per alias: rollback rarely goes further back, and the file must not grow
# with every promotion forever.
HISTORY_LIMIT = 50


class Registry:
    """A model registry rooted at a folder; every method re-reads the disk (no caching)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- reading ---------------------------------------------------------------------------------

    def models(self) -> list[str]:
        """Names of the models that have at least one version, sorted."""
        self._require_root()
        try:
            entries = list(os.scandir(self.root))
        except OSError as exc:
            raise RegistryError(f"cannot list the model registry: {exc.strerror}") from exc
        return sorted(
            entry.name
            for entry in entries
            if is_name(entry.name) and scan_versions(Path(entry.path))
        )

    def versions(self, name: str) -> list[int]:
        """The versions of a model, ascending; ModelNotFound if it has none."""
        model_dir = self._model_dir(name)
        self._require_root()
        found = scan_versions(model_dir)
        if not found:
            raise ModelNotFound(f"no model named {name!r} in the registry")
        return found

    def aliases(self, name: str) -> dict[str, int]:
        """The model's aliases and the versions they point at ({} if none)."""
        self.versions(name)
        return self._read_mapping(name, ALIASES_FILE, is_version)

    def alias_history(self, name: str) -> dict[str, list[int]]:
        """Each alias's earlier targets, oldest first: what rollback walks back through."""
        self.versions(name)
        return self._read_mapping(
            name,
            HISTORY_FILE,
            lambda value: isinstance(value, list) and all(map(is_version, value)),
        )

    def canaries(self, name: str) -> dict[str, dict[str, int]]:
        """Each alias's canary: {"version": N, "weight": percent} ({} if none)."""
        self.versions(name)
        return self._read_mapping(name, CANARIES_FILE, _canary.is_canary)

    def shadows(self, name: str) -> dict[str, int]:
        """Each alias's shadow version ({} if none): it answers a copy of the alias's requests."""
        self.versions(name)
        return self._read_mapping(name, SHADOWS_FILE, is_version)

    def alias_log(self, name: str) -> list[dict[str, Any]]:
        """Every recorded alias move of the model, oldest first ([] before the first)."""
        self.versions(name)
        path = self._model_dir(name) / LOG_FILE
        data = _files.read_json(path, self._shown(path))
        if data is None:
            return []
        if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
            raise RegistryError(f"{self._shown(path)} is not a list of alias moves")
        return data

    def rollout(self, name: str) -> dict[str, Any] | None:
        """The model's latest rollout's state (service/rollout.py owns its fields), or None."""
        self.versions(name)
        path = self._model_dir(name) / ROLLOUT_FILE
        data = _files.read_json(path, self._shown(path))
        if data is not None and not isinstance(data, dict):
            raise RegistryError(f"{self._shown(path)} is not a JSON object")
        return data

    def write_rollout(self, name: str, state: dict[str, Any], entry: dict[str, Any]) -> None:
        """Replace the rollout's state and log what happened (entry: alias, action, ...)."""
        with self._locked(name):
            self._write(name, ROLLOUT_FILE, state)
            alias, action = str(entry.pop("alias")), str(entry.pop("action"))
            self._log(name, _canary.log_entry(alias, action, **entry))

    def rollout_lock(self, name: str) -> AbstractContextManager[None]:
        """Serialises rollout steps (two step loops never both step); not the registry's lock,
        which the alias moves inside a step take themselves (flock is not reentrant)."""
        path = self._model_dir(name) / ROLLOUT_LOCK_FILE
        return _files.locked(path, self._shown(path))

    def resolve(self, name: str, version: int | None = None, alias: str | None = None) -> int:
        """The version to serve: the one given, or an alias's target ("production" by default)."""
        check_target(version, alias)
        if version is not None:
            self._require_version(name, version)
            return version
        alias = validate_alias(DEFAULT_ALIAS if alias is None else alias)
        target = self.aliases(name).get(alias)
        if target is None:
            raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
        if target not in self.versions(name):
            raise VersionNotFound(
                f"alias {alias!r} of model {name!r} points at version {target},"
                " which does not exist"
            )
        return target

    def card(self, name: str, version: int) -> dict[str, Any]:
        """The version card (model.json) of one version."""
        path = self._require_version(name, version) / CARD_FILE
        shown = self._shown(path)
        card = _files.read_json(path, shown)
        if card is None:
            raise RegistryError(f"{shown} is missing")
        if not isinstance(card, dict):
            raise RegistryError(f"{shown} is not a JSON object")
        return card

    def version_dir(self, name: str, version: int) -> Path:
        """Where a version lives (no I/O: it need not exist)."""
        return self._model_dir(name) / str(check_version(version))

    def model_path(self, name: str, version: int) -> Path:
        """Where a version's model.onnx lives (no I/O: it need not exist)."""
        return self.version_dir(name, version) / MODEL_FILE

    def aliases_stamp(self, name: str) -> tuple[int, int, int] | None:
        """A cheap change detector of aliases.json for hot reload: None while there is none."""
        # os.replace gives every new aliases.json a new inode, so even same-size,
        # same-timestamp rewrites are seen.
        return _files.stamp(self._model_dir(name) / ALIASES_FILE)

    def canaries_stamp(self, name: str) -> tuple[int, int, int] | None:
        """The same change detector for canaries.json."""
        return _files.stamp(self._model_dir(name) / CANARIES_FILE)

    def shadows_stamp(self, name: str) -> tuple[int, int, int] | None:
        """The same change detector for shadows.json."""
        return _files.stamp(self._model_dir(name) / SHADOWS_FILE)

    def version_stamp(self, name: str, version: int) -> tuple[object, object]:
        """A cheap change detector of a version's files: a refusal stands until this changes."""
        directory = self.version_dir(name, version)
        return (_files.stamp(directory / MODEL_FILE), _files.stamp(directory / CARD_FILE))

    # -- writing ---------------------------------------------------------------------------------

    def register(
        self,
        name: str,
        onnx_file: str | os.PathLike[str],
        card: dict[str, Any],
        extra_files: dict[str, str | os.PathLike[str]] | None = None,
    ) -> int:
        """Add the next version of a model, atomically, and return its number.

        The card is stored as model.json with "name", "version", "sha256" (of model.onnx) and,
        unless given, "created_at" (ISO-8601 UTC) filled in. ``extra_files`` maps file names in the
        version folder (e.g. "training.png") to the files to copy there.
        """
        validate_name(name)
        sources = _register.checked_arguments(onnx_file, card, extra_files)
        self._require_root()
        try:
            return _register.write_version(self._model_dir(name), sources, card, self._locked(name))
        except OSError as exc:
            raise RegistryError(f"cannot register {name!r} in {self.root}: {exc}") from exc

    def set_alias(
        self, name: str, alias: str, version: int, verify: Verifier | None = None
    ) -> int | None:
        """Point an alias at a verified version; return its previous target (None if it is new)."""
        validate_alias(alias)
        self._require_version(name, version)
        with self._locked(name):
            aliases = self.aliases(name)
            previous = aliases.get(alias)
            if previous == version:
                return previous
            self._verify(name, version, verify)
            if previous is not None:
                history = self.alias_history(name)
                earlier = history.setdefault(alias, [])
                earlier.append(previous)
                del earlier[:-HISTORY_LIMIT]
                # History first: a crash in between leaves only a duplicate of the current target
                # at its end, which rollback skips.
                self._write(name, HISTORY_FILE, history)
            aliases[alias] = version
            self._write(name, ALIASES_FILE, aliases)
            self._log(name, _canary.log_entry(alias, "promote", version=version, previous=previous))
            canary = self.canaries(name).get(alias)
            if canary is not None and canary["version"] == version:
                self._drop_canary(name, alias, "promoted")  # the candidate is the target now
            if self.shadows(name).get(alias) == version:
                self._drop_shadow(name, alias, "promoted")  # nothing left to compare it with
        return previous

    def set_canary(
        self, name: str, alias: str, version: int, weight: int, verify: Verifier | None = None
    ) -> dict[str, int] | None:
        """Send weight % of an alias's traffic to a verified version; return the previous canary.

        The alias must exist and point elsewhere; the rest of its traffic stays on its target.
        """
        validate_alias(alias)
        weight = _canary.check_weight(weight)
        self._require_version(name, version)
        with self._locked(name):
            self._check_second(name, alias, version)
            canaries = self.canaries(name)
            previous = canaries.get(alias)
            if previous is None or previous["version"] != version:
                self._verify(name, version, verify)
            canaries[alias] = {"version": version, "weight": weight}
            self._write(name, CANARIES_FILE, canaries)
            self._log(name, _canary.log_entry(alias, "canary", version=version, weight=weight))
        return previous

    def clear_canary(self, name: str, alias: str, reason: str) -> dict[str, int] | None:
        """Send all of an alias's traffic back to its target; return the canary (None: none)."""
        validate_alias(alias)
        with self._locked(name):
            return self._drop_canary(name, alias, reason)

    def _drop_canary(self, name: str, alias: str, reason: str) -> dict[str, int] | None:
        canaries = self.canaries(name)
        previous = canaries.pop(alias, None)
        if previous is not None:
            self._write(name, CANARIES_FILE, canaries)
            self._log(
                name,
                _canary.log_entry(alias, "canary_end", version=previous["version"], reason=reason),
            )
        return previous

    def set_shadow(
        self, name: str, alias: str, version: int, verify: Verifier | None = None
    ) -> int | None:
        """Let a verified version shadow an alias (answer a copy of its requests, unseen);
        return the previous shadow. The alias must exist and point elsewhere."""
        validate_alias(alias)
        self._require_version(name, version)
        with self._locked(name):
            self._check_second(name, alias, version)
            shadows = self.shadows(name)
            previous = shadows.get(alias)
            if previous != version:
                self._verify(name, version, verify)
                shadows[alias] = version
                self._write(name, SHADOWS_FILE, shadows)
                self._log(name, _canary.log_entry(alias, "shadow", version=version))
        return previous

    def clear_shadow(self, name: str, alias: str, reason: str) -> int | None:
        """Stop an alias's shadow; return its version (None: it had none)."""
        validate_alias(alias)
        with self._locked(name):
            return self._drop_shadow(name, alias, reason)

    def _check_second(self, name: str, alias: str, version: int) -> None:
        """A canary or a shadow needs an alias that exists and serves another version."""
        target = self.aliases(name).get(alias)
        if target is None:
            raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
        if target == version:
            raise BadRequest(f"alias {alias!r} already serves version {version}")

    def _drop_shadow(self, name: str, alias: str, reason: str) -> int | None:
        shadows = self.shadows(name)
        previous = shadows.pop(alias, None)
        if previous is not None:
            self._write(name, SHADOWS_FILE, shadows)
            self._log(name, _canary.log_entry(alias, "shadow_end", version=previous, reason=reason))
        return previous

    def append_to_card(self, name: str, version: int, key: str, entry: dict[str, object]) -> None:
        """Append entry to the list card[key] of a version (e.g. a promotion gate's verdict).

        The card is replaced atomically; model.onnx and the fields the registry wrote (name,
        version, sha256, created_at) never change, so the version stays what it was.
        """
        if key in ("name", "version", "sha256", "created_at"):
            raise BadRequest(f"card field {key!r} is written by the registry only")
        try:
            _files.dump(entry)
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"the card entry is not JSON-serializable: {exc}") from exc
        path = self._require_version(name, version) / CARD_FILE
        with self._locked(name):
            card = self.card(name, version)
            entries = card.setdefault(key, [])
            if not isinstance(entries, list):
                raise RegistryError(f"{self._shown(path)}: field {key!r} is not a list")
            entries.append(entry)
            _files.write_json_atomic(path, card, self._shown(path))

    def rollback(self, name: str, alias: str, verify: Verifier | None = None) -> tuple[int, int]:
        """Point an alias back at its latest earlier target that still exists: (from, to).

        Each call goes further back. The current target need not exist any more (that is when a
        rollback is needed most); earlier targets whose folders are gone are skipped; one that
        exists but fails verification stops the rollback (IntegrityError, nothing written).
        """
        validate_alias(alias)
        with self._locked(name):
            versions = self.versions(name)
            aliases = self.aliases(name)
            if alias not in aliases:
                raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
            previous = aliases[alias]
            history = self.alias_history(name)
            target = _step_back(history, alias, previous, versions)
            if target is None:
                raise NoAliasHistory(
                    f"alias {alias!r} of model {name!r} has no earlier target that still exists:"
                    " nothing to roll back to"
                )
            self._verify(name, target, verify)
            aliases[alias] = target
            # Alias first: a crash in between leaves the new target at the end of the history,
            # which the next rollback skips.
            self._write(name, ALIASES_FILE, aliases)
            self._write(name, HISTORY_FILE, history)
            self._log(name, _canary.log_entry(alias, "rollback", version=target, previous=previous))
        return previous, target

    # -- checking --------------------------------------------------------------------------------

    def verify_version(self, name: str, version: int) -> None:
        """Check that model.onnx still has the sha256 its card records; IntegrityError if not."""
        self.read_verified(name, version)

    def read_verified(self, name: str, version: int) -> bytes:
        """model.onnx's bytes, read once and checked against the card's sha256 (IntegrityError).

        Loading from these very bytes leaves no window between the check and the load.
        """
        self._require_version(name, version)
        try:
            card = self.card(name, version)
        except RegistryError as exc:
            raise IntegrityError(f"{name} version {version}: {exc}") from exc
        return self.verified_bytes(name, version, card)

    def verified_bytes(self, name: str, version: int, card: dict[str, Any]) -> bytes:
        """model.onnx's bytes checked against a card already read (IntegrityError on mismatch)."""
        directory = self._require_version(name, version)
        return _integrity.checked_bytes(name, version, card, directory / MODEL_FILE)

    def verify(self, name: str | None = None) -> list[str]:
        """Check every version of one model (or all) and their aliases; [] means all is well."""
        found = []
        for model in self.models() if name is None else [name]:
            versions = self.versions(model)
            for version in versions:
                try:
                    self.verify_version(model, version)
                except IntegrityError as exc:
                    found.append(str(exc))
            try:
                aliases = self.aliases(model)
                self.alias_history(model)
                self.alias_log(model)
                canaries = self.canaries(model)
                shadows = self.shadows(model)
            except RegistryError as exc:
                found.append(str(exc))
                continue
            found.extend(
                f"{model}: the canary of alias {alias!r} is version {canary['version']},"
                " which does not exist"
                for alias, canary in sorted(canaries.items())
                if canary["version"] not in versions
            )
            found.extend(
                f"{model}: the shadow of alias {alias!r} is version {shadow}, which does not exist"
                for alias, shadow in sorted(shadows.items())
                if shadow not in versions
            )
            found.extend(
                f"{model}: alias {alias!r} points at version {target}, which does not exist"
                for alias, target in sorted(aliases.items())
                if target not in versions
            )
        return found

    # -- internals -------------------------------------------------------------------------------

    def _model_dir(self, name: str) -> Path:
        return self.root / validate_name(name)

    def _shown(self, path: Path) -> str:
        """A path as error messages show it: relative to the root, never the server's layout."""
        return str(path.relative_to(self.root))

    def _verify(self, name: str, version: int, verify: Verifier | None) -> None:
        data = self.read_verified(name, version)
        if verify is not None:
            verify(data)

    def _write(self, name: str, file_name: str, data: object) -> None:
        path = self._model_dir(name) / file_name
        _files.write_json_atomic(path, data, self._shown(path))

    def _log(self, name: str, entry: dict[str, Any]) -> None:
        """Append one alias move to the log (the caller holds the lock), keeping the latest."""
        entries = [*self.alias_log(name), entry][-_canary.LOG_LIMIT :]
        self._write(name, LOG_FILE, entries)

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise RegistryError("the model registry folder does not exist")

    def _require_version(self, name: str, version: int) -> Path:
        directory = self.version_dir(name, version)
        if not directory.is_dir():
            self.versions(name)  # an unknown model (or a missing root) is the better message
            raise VersionNotFound(f"model {name!r} has no version {version}")
        return directory

    def _read_mapping(
        self, name: str, file_name: str, valid_value: Callable[[object], bool]
    ) -> dict[str, Any]:
        path = self._model_dir(name) / file_name
        shown = self._shown(path)
        data = _files.read_json(path, shown)
        if data is None:
            return {}
        # Keys are read as names (not the stricter alias rule): an older file stays readable.
        if not isinstance(data, dict) or not all(
            is_name(key) and valid_value(value) for key, value in data.items()
        ):
            raise RegistryError(f"{shown} does not map alias names to versions")
        return data

    def _locked(self, name: str) -> AbstractContextManager[None]:
        path = self._model_dir(name) / LOCK_FILE
        return _files.locked(path, self._shown(path))


def _step_back(
    history: dict[str, list[int]], alias: str, current: int, versions: list[int]
) -> int | None:
    """Take the latest earlier target that still exists and is not current (None if none).

    Targets passed over (gone, or equal to the current one) leave the history with it.
    """
    earlier = [v for v in history.get(alias, []) if v in versions]
    while earlier and earlier[-1] == current:
        earlier.pop()
    if not earlier:
        return None
    target = earlier.pop()
    if earlier:
        history[alias] = earlier
    else:
        history.pop(alias, None)
    return target
